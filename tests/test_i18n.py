"""The string catalogs in locales/: same keys and placeholders in every language, and every key the
code names exists."""
import ast
import re
import string
from pathlib import Path

import pytest

from core.i18n import FALLBACK, LANGUAGES, strings, translate

ROOT = Path(__file__).resolve().parent.parent
CODE = [*ROOT.glob("core/*.py"), *ROOT.glob("app_pages/*.py"), ROOT / "streamlit_app.py", ROOT / "api.py"]


def forms(entry: str | dict[str, str]) -> list[str]:
    return list(entry.values()) if isinstance(entry, dict) else [entry]


def placeholders(entry: str | dict[str, str]) -> set[str]:
    return {field for text in forms(entry) for _, field, _, _ in string.Formatter().parse(text) if field}


def keys_named_in_code() -> tuple[set[str], set[str]]:
    """Keys passed as the first argument to tr/translate or to an error class, and the patterns of
    keys built from f-strings (`f"ft_start_{s}"` gives `ft_start_.+`)."""
    literal, patterns = set(), set()
    for path in CODE:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in ("tr", "translate") and not name.endswith("Error"):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and re.fullmatch(r"[a-z0-9_]+", first.value):
                literal.add(first.value)
            elif isinstance(first, ast.JoinedStr) and all(
                    re.fullmatch(r"[a-z0-9_]*", part.value) for part in first.values if isinstance(part, ast.Constant)):
                patterns.add("".join(re.escape(part.value) if isinstance(part, ast.Constant) else ".+"
                                     for part in first.values))
    return literal, patterns


def test_every_language_has_the_same_keys_and_placeholders():
    reference = strings(FALLBACK)
    for code in LANGUAGES:
        catalog = strings(code)
        assert set(catalog) == set(reference), (code, set(catalog) ^ set(reference))
        for key, entry in catalog.items():
            assert placeholders(entry) == placeholders(reference[key]), (code, key)
            if isinstance(entry, dict):
                assert "other" in entry and set(entry) <= {"one", "other"}, (code, key)


def test_every_key_the_code_names_exists():
    literal, patterns = keys_named_in_code()
    assert len(literal) > 200  # the scan found the code's calls
    assert not literal - set(strings(FALLBACK))
    for pattern in patterns:
        assert any(re.fullmatch(pattern, key) for key in strings(FALLBACK)), pattern


def test_every_chinese_string_is_translated():
    english, chinese = strings("en"), strings("zh")
    cjk = re.compile("[\u4e00-\u9fff]")
    untranslated = [key for key, entry in chinese.items()
                    if entry == english[key] and any(re.search("[A-Za-z]{4}", text) for text in forms(entry))
                    and not any(cjk.search(text) for text in forms(entry))]
    assert len(untranslated) < 25, untranslated  # names such as "Grad-CAM" or "ImageNet" stay as they are


@pytest.mark.parametrize("count, english, chinese", [(1, "1 face found.", "找到 1 张人脸，按从大到小编号。"),
                                                     (3, "3 faces found, numbered from the largest.",
                                                      "找到 3 张人脸，按从大到小编号。")])
def test_plurals_follow_the_count(count, english, chinese):
    assert translate("att_found", "en", count=count) == english
    assert translate("att_found", "zh", count=count) == chinese


def test_a_missing_key_falls_back_to_english_then_to_itself(caplog):
    assert translate("pred_title", "xx") == translate("pred_title", "en")
    assert translate("no_such_key", "zh") == "no_such_key"
    assert "no_such_key" in caplog.text
    caplog.clear()  # the catalog check in conftest.py would fail this test otherwise


def test_class_names_come_from_the_catalog():
    from core.classes import EXPRESSION_KEYS, display_name

    assert [display_name(key, "zh") for key in EXPRESSION_KEYS[:2]] == ["愤怒", "轻蔑"]
    assert display_name("my_own_class", "zh") == "my_own_class"


def test_no_string_tells_a_web_visitor_to_run_a_command():
    commands = [key for key, entry in strings(FALLBACK).items() if any("python " in text for text in forms(entry))]
    assert not commands
