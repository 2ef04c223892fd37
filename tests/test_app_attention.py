"""AppTest: the attention page with the sample, with a photo without a face and with two faces.

Other photos come in as the page's "sample", which keeps these tests short; the upload path is the
shared `image_input`, and tests/test_browser_attention.py uploads a real file through it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import app_pages._shared as shared
from core.gallery import GALLERY
from core.images import sample_photo

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def open_page(photo: np.ndarray | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> AppTest:
    if photo is not None:
        monkeypatch.setattr(shared, "cached_example_photo", lambda name: photo)
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("app_pages/attention.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def latex(at: AppTest) -> str:
    return " ".join(element.value for element in at.latex)


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


@pytest.fixture()
def page() -> AppTest:
    return open_page()


def test_sample_shows_one_face_its_maps_and_the_enhancing_view(page: AppTest):
    assert page.title[0].value == "Attention maps (EAC-Net)"
    assert "att_face_en" not in page.session_state, "one face needs no picker"
    assert r"1 - 0.095\,d" in latex(page)
    # the bundled expression model (48x48 input): conv3 has two convs and 12x12 maps
    assert r"\mathrm{conv3\_all} = \mathrm{conv3\_2} + \mathrm{conv3\_1} \odot A_{12}" in latex(page)
    assert any("bundled expression model" in info.value for info in page.info)
    face, *enet = charts(page)
    assert len(enet) == 3
    names = [trace.get("name", "") for trace in face["data"]]
    assert "68 landmarks" in names and "6 · AU12 Lip Corner Puller, AU14 Dimpler, AU15 Lip Corner Depressor" in names
    landmarks = face["data"][names.index("68 landmarks")]
    assert landmarks["hovertemplate"].startswith("Landmark %{customdata}")
    assert [d.label for d in page.get("download_button")] == ["Download overlay (PNG)", "Download map (.npy)",
                                                             "Download centres (JSON)"]


def test_presets_and_custom_fall_off_change_the_formula(page: AppTest):
    page.radio(key="att_preset_en").set_value("training_code").run()
    assert r"1 - 0.07\,d" in latex(page) and r"\le 7" in latex(page)
    page.radio(key="att_preset_en").set_value("custom").run()
    page.slider(key="att_slope").set_value(0.2).run()
    page.slider(key="att_window").set_value(4).run()
    assert not page.exception
    assert r"1 - 0.2\,d" in latex(page) and r"\le 4" in latex(page)


def test_only_au12_shows_where_the_network_looks_for_a_smile(page: AppTest):
    page.button(key="att_smile").click().run()
    assert page.multiselect(key="att_aus_en").value == ["AU12"]
    face = charts(page)[0]
    centres = [trace for trace in face["data"] if trace.get("name", "").startswith("6 · ")]
    assert len(centres) == 1 and len(centres[0]["x"]) == 2
    assert len([trace for trace in face["data"] if trace["type"] == "scatter"]) == 2  # landmarks + row 6
    page.multiselect(key="att_aus_en").set_value([]).run()
    assert any("No action unit is chosen" in info.value for info in page.info)
    page.button(key="att_all").click().run()
    assert len(page.multiselect(key="att_aus_en").value) == 12


def test_layers_and_enhancing_controls(page: AppTest):
    page.checkbox(key="att_show_numbers").check().run()
    page.checkbox(key="att_show_heatmap").uncheck().run()
    page.checkbox(key="att_show_centres").uncheck().run()
    assert not page.exception
    landmarks = charts(page)[0]["data"][1]
    assert landmarks["mode"] == "markers+text" and landmarks["text"][48] == "48"
    page.radio(key="att_group").set_value(4).run()
    assert r"\mathrm{conv4\_2} + \mathrm{conv4\_1} \odot A_{6}" in latex(page)
    page.slider(key="att_channel_4").set_value(7).run()
    assert not page.exception
    assert "channel 7" in charts(page)[1]["layout"]["title"]["text"]


def test_language_switch_keeps_the_choices(page: AppTest):
    page.radio(key="att_preset_en").set_value("training_code").run()
    page.button(key="att_smile").click().run()
    page.session_state["lang"] = "zh"  # the sidebar's language radio; AppTest runs the page without the frame
    page.run()
    assert not page.exception
    assert page.title[0].value == "注意力图（EAC-Net）"
    assert page.radio(key="att_preset_zh").value == "training_code"
    assert page.multiselect(key="att_aus_zh").value == ["AU12"]
    assert r"1 - 0.07\,d" in latex(page)
    assert any("内置表情模型" in info.value for info in page.info)


def test_photo_without_a_face_gets_a_message_and_the_photo(monkeypatch):
    at = open_page(np.full((240, 320, 3), 90, np.uint8), monkeypatch)
    assert any("No face was found" in info.value for info in at.info)
    assert len(at.get("image")) == len(GALLERY) + 1  # the example photos' thumbnails, then the photo
    assert not at.get("plotly_chart") and not at.get("download_button")


def test_several_faces_get_a_picker_and_an_overview(monkeypatch):
    photo = sample_photo()
    at = open_page(np.hstack([photo, photo[:, ::-1]]), monkeypatch)
    picker = at.selectbox(key="att_face_en")
    assert len(picker.options) == 2
    for number, option in enumerate(picker.options, start=1):
        assert re.fullmatch(rf"Face {number}: \d+×\d+ px, found by HOG, score \d\.\d\d", option), option
    assert any(caption.value == "2 faces found, numbered from the largest." for caption in at.caption)
    overview = charts(at)[0]
    assert len(overview["layout"]["shapes"]) == 2
    first_box = charts(at)[1]["layout"]["shapes"][0]
    picker.set_value(1).run()
    assert not at.exception
    assert charts(at)[1]["layout"]["shapes"][0]["x0"] != first_box["x0"]
