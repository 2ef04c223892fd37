"""User-facing strings: one TOML file a language in `locales/`, read here.

Pages call `translate(key, lang, **params)`; core errors carry a key, so the page shows them in the
visitor's language and the command line in English. A third language is one more file: its `[language]`
table names it, and its `[strings]` table has the same keys as `en.toml`. A string can be a plural, a
table `{ one = "...", other = "..." }` chosen by the `count` parameter (a language without a singular
form, such as Chinese, gives only `other`).
"""
from __future__ import annotations

import logging
import tomllib
from functools import cache
from pathlib import Path

LOCALES = Path(__file__).resolve().parent.parent / "locales"
FALLBACK = "en"

logger = logging.getLogger(__name__)


@cache
def _locale(code: str) -> dict:
    with open(LOCALES / f"{code}.toml", "rb") as file:
        return tomllib.load(file)


def _codes() -> list[str]:
    others = sorted(path.stem for path in LOCALES.glob("*.toml") if path.stem != FALLBACK)
    return [FALLBACK, *others]


LANGUAGES: dict[str, str] = {code: _locale(code)["language"]["name"] for code in _codes()}


def strings(code: str) -> dict[str, str | dict[str, str]]:
    return _locale(code)["strings"]


def _plural_form(entry: dict[str, str], count: object) -> str:
    """English-style plurals: `one` for a count of 1 where the language has such a form, else `other`."""
    return entry["one"] if count == 1 and "one" in entry else entry["other"]


def translate(key: str, lang: str = FALLBACK, **params: object) -> str:
    """The text for `key` in `lang` (English where that language lacks it), formatted with `params`.
    An unknown key is logged and shown as itself."""
    code = lang if lang in LANGUAGES and key in strings(lang) else FALLBACK
    entry = strings(code).get(key)
    if entry is None:
        logger.warning("no string for key %r", key)
        return key
    text = _plural_form(entry, params.get("count")) if isinstance(entry, dict) else entry
    return text.format(**params) if params else text
