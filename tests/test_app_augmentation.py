"""AppTest: the augmentation page's state (what survives a rerun, a language switch, a page change).

What only a browser shows (an uploaded pipeline replacing the widgets on screen, the open tab after a
language switch) is in tests/test_browser_augmentation.py.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from core import augment as aug
from core.gallery import example_photo
from core.i18n import translate
from core.images import decode_image, limit_size
from tests.conftest import encode, gradient_image

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
PAGE = "app_pages/augmentation.py"


def readme_spec() -> dict:
    """The example pipeline of README.md (its first JSON block)."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    return json.loads(text.split("```json", 1)[1].split("```", 1)[0])


README_SPEC = readme_spec()


@pytest.fixture()
def page() -> AppTest:
    """The augmentation page, opened from the app's frame (sidebar, language switch)."""
    app = AppTest.from_file(APP, default_timeout=180)
    app.run()  # the augmentation page is the app's default page
    assert not app.exception and app.title[0].value == "Data augmentation", [e.value for e in app.exception]
    return app


def open_tab(at: AppTest, name: str) -> None:
    """Only the open tab runs; in a browser a click opens one, here its name in the session does."""
    at.session_state["aug_tab"] = name
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def by_label(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def uploader(at: AppTest, key: str):
    return next(u for u in at.get("file_uploader") if u.key == key)


def test_pipeline_editor_round_trips_through_session(page: AppTest) -> None:
    open_tab(page, "pipeline")
    page.multiselect(key="pipe_ops_en").set_value(["hflip", "noise"]).run()
    assert not page.exception
    assert [op["op"] for op in page.session_state["pipeline_spec"]["ops"]] == ["hflip", "noise"]
    page.slider(key="pipe_count").set_value(3).run()
    assert not page.exception


def test_an_uploaded_pipeline_replaces_the_one_in_state(page: AppTest) -> None:
    open_tab(page, "pipeline")
    uploader(page, "pipe_upload").set_value(("spec.json", json.dumps(README_SPEC).encode(), "application/json")).run()
    assert not page.exception, [e.value for e in page.exception]
    operators = by_label(page.multiselect, "Operators, in order")
    assert operators.value == ["motion_blur", "affine", "crop"]
    by_label(page.slider, "Number of draws").set_value(2).run()
    assert aug.spec_from_dict(page.session_state["pipeline_spec"]) == aug.spec_from_dict(README_SPEC)


def test_operator_and_choice_names_are_translated(page: AppTest) -> None:
    open_tab(page, "pipeline")
    page.multiselect(key="pipe_ops_en").set_value(["noise", "crop"]).run()
    page.sidebar.radio(key="lang").set_value("zh").run()
    assert not page.exception
    operators = by_label(page.multiselect, "操作（按顺序）")
    assert operators.value == ["noise", "crop"], "the choice survives the switch"
    assert "运动模糊" in operators.options and "Motion blur" not in operators.options
    kinds = page.multiselect(key="pipe_noise_kind_zh")
    assert "高斯" in kinds.options or any("\u4e00" <= ch <= "\u9fff" for ch in "".join(kinds.options))


def test_sliders_take_their_ranges_from_the_operator_records(page: AppTest) -> None:
    limits = aug.OPERATORS["color"].params["brightness"].limits
    open_tab(page, "color")
    brightness = page.slider(key="col_b")
    assert (brightness.min, brightness.max, brightness.step) == limits
    open_tab(page, "noise")
    amount = page.slider(key="noise_amount_gaussian")
    assert amount.max == aug.OPERATORS["noise"].params["amount"].limits[1]
    open_tab(page, "pipeline")
    page.multiselect(key="pipe_ops_en").set_value(["gaussian_blur"]).run()
    sigma = page.slider(key="pipe_gaussian_blur_sigma")
    assert (sigma.min, sigma.max) == aug.OPERATORS["gaussian_blur"].params["sigma"].limits[:2]


def test_normalization_histograms_each_have_their_own_axis(page: AppTest) -> None:
    """After centring and scaling, the values span about 2 of the 0..255 axis: drawn there, they vanish."""
    open_tab(page, "normalize")
    charts = [json.loads(chart.proto.spec) for chart in page.get("plotly_chart")]
    histograms = [[trace for trace in chart["data"] if trace["type"] == "histogram"] for chart in charts]
    histograms = [traces for traces in histograms if traces]
    assert [len(traces) for traces in histograms] == [1, 1]


def test_widgets_keep_their_values_when_the_page_is_left(page: AppTest) -> None:
    for tab, set_value in (("color", lambda: page.slider(key="col_s").set_value(0.0)),
                           ("affine", lambda: page.radio(key="aff_preset_en").set_value("t3")),
                           ("pipeline", lambda: page.slider(key="pipe_count").set_value(4))):
        open_tab(page, tab)
        set_value().run()
    page.switch_page("app_pages/attention.py").run()
    page.switch_page(PAGE).run()
    assert not page.exception
    assert page.slider(key="pipe_count").value == 4, "the pipeline tab is still the open one"
    open_tab(page, "color")
    assert page.slider(key="col_s").value == 0.0
    open_tab(page, "affine")
    assert page.radio(key="aff_preset_en").value == "t3"


def _class_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("happy", "sad"):
            for index in range(2):
                archive.writestr(f"{label}/{index}.png", encode(gradient_image(24, 32, seed=index), "PNG"))
    return buffer.getvalue()


def test_the_augmented_zip_stays_downloadable(page: AppTest) -> None:
    open_tab(page, "dataset")
    uploader(page, "ds_zip").set_value(("faces.zip", _class_zip(), "application/zip")).run()
    page.button(key="ds_run").click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert [d.label for d in page.get("download_button") if d.key == "ds_download"] == ["Download augmented zip"]
    next(d for d in page.get("download_button") if d.key == "ds_download").click().run()
    page.slider(key="ds_copies").set_value(3).run()  # any other rerun
    assert [d.key for d in page.get("download_button")].count("ds_download") == 1
    counts = page.dataframe[-1].value  # the per-class counts, a table, not raw JSON
    assert list(counts.columns) == ["class", "images", "in the new archive"]
    assert list(counts["images"]) == [2, 2] and list(counts["in the new archive"]) == [6, 6]  # the run made 2 copies


def test_fspecial_widgets_change_the_kernel(page: AppTest) -> None:
    assert any("fspecial('average', 3)" in c.value for c in page.code)
    page.selectbox(key="fs_kind").set_value("motion").run()
    assert any("fspecial('motion', 9, 0)" in c.value for c in page.code)
    page.slider(key="fs_m_len").set_value(5).run()
    page.slider(key="fs_m_theta").set_value(90.0).run()
    assert not page.exception
    assert any("fspecial('motion', 5, 90)" in c.value for c in page.code)


def test_affine_preset_and_rotation_matrices_follow_widgets(page: AppTest) -> None:
    open_tab(page, "affine")
    page.radio(key="aff_preset_en").set_value("t1").run()
    page.slider(key="aff_f").set_value(10.0).run()
    latex = " ".join(el.value for el in page.latex)
    assert "20" in latex  # t1 translates by 2f
    assert any("not a valid affine matrix" in i.value for i in page.info)
    page.slider(key="rot_angle").set_value(90.0).run()
    latex = " ".join(el.value for el in page.latex)
    assert "90^\\circ" in latex


def test_noise_and_colour_widgets_run(page: AppTest) -> None:
    open_tab(page, "noise")
    page.radio(key="noise_kind_en").set_value("salt_pepper").run()
    open_tab(page, "color")
    page.slider(key="col_s").set_value(0.0).run()
    open_tab(page, "normalize")
    page.radio(key="norm_mode_en").set_value("mean_image").run()
    assert not page.exception


def test_language_switch_keeps_the_chosen_preset(page: AppTest) -> None:
    open_tab(page, "affine")
    page.radio(key="aff_preset_en").set_value("t3").run()
    page.session_state["lang"] = "zh"
    page.run()
    assert page.radio(key="aff_preset_zh").value == "t3"


def test_the_pipeline_as_python_gives_exactly_the_draws_the_preview_shows(page: AppTest, monkeypatch) -> None:
    """The page's Python code, run here on the same photo, gives the very pixels the preview sent to the browser."""
    sent: dict[str, bytes] = {}
    keep = MemoryMediaFileStorage.load_and_get_id

    def remembered(self, data, mimetype, kind, filename=None):
        file_id = keep(self, data, mimetype, kind, filename)
        sent[file_id] = data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", remembered)
    open_tab(page, "pipeline")
    page.multiselect(key="pipe_ops_en").set_value(["motion_blur", "affine", "noise", "color", "crop"]).run()
    page.slider(key="pipe_count").set_value(3).run()
    page.number_input(key="pipe_seed").set_value(7).run()
    assert not page.exception, [e.value for e in page.exception]
    code = next(block.value for block in page.code if "aug.PipelineSpec" in block.value)
    assert any(json.loads(block.value) == page.session_state["pipeline_spec"] for block in page.code
               if block.language == "json"), "the JSON beside it is the same pipeline"

    namespace = {"__name__": "pipeline"}
    exec(code, namespace)
    drawn = namespace["augmented"](limit_size(example_photo("astronaut"), 512))
    previews = {image.captions[0]: image.value[0] for image in page.get("image")}  # the grid runs down its columns
    assert len(drawn) == 3
    for number, (expected, _) in enumerate(drawn, start=1):
        url = previews[translate("draw_n", "en", n=number)]
        shown = decode_image(sent[url.rsplit("/", 1)[1].removesuffix(".png")])
        assert np.array_equal(shown[:, -expected.shape[1]:], expected)  # the draw, right of the photo
