"""AppTest: every page renders without an exception, and the augmentation page reacts."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
PAGES = ["app_pages/augmentation.py", "app_pages/attention.py", "app_pages/finetuning.py", "app_pages/prediction.py"]


@pytest.fixture()
def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(app: AppTest, page: str) -> None:
    app.switch_page(page)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.title, "each page has a title"


def test_sidebar_shows_device_and_switches_language(app: AppTest) -> None:
    captions = " ".join(c.value for c in app.sidebar.caption)
    assert "CPU" in captions or "GPU" in captions
    assert app.title[0].value == "Data augmentation"
    app.sidebar.radio(key="lang").set_value("zh").run()
    assert app.title[0].value == "数据增强"
    assert any("示例" in c.value for c in app.caption)


def test_fspecial_widgets_change_the_kernel(app: AppTest) -> None:
    assert any("fspecial('average', 3)" in c.value for c in app.code)
    app.selectbox(key="fs_kind").set_value("motion").run()
    assert any("fspecial('motion', 9, 0)" in c.value for c in app.code)
    app.slider(key="fs_m_len").set_value(5).run()
    app.slider(key="fs_m_theta").set_value(90.0).run()
    assert not app.exception
    assert any("fspecial('motion', 5, 90)" in c.value for c in app.code)


def test_affine_preset_and_rotation_matrices_follow_widgets(app: AppTest) -> None:
    app.radio(key="aff_preset_en").set_value("t1").run()
    app.slider(key="aff_f").set_value(10.0).run()
    latex = " ".join(el.value for el in app.latex)
    assert "20" in latex  # t1 translates by 2f
    assert any("not a valid affine matrix" in i.value for i in app.info)
    app.slider(key="rot_angle").set_value(90.0).run()
    latex = " ".join(el.value for el in app.latex)
    assert "90^\\circ" in latex


def test_noise_and_colour_widgets_run(app: AppTest) -> None:
    app.radio(key="noise_kind_en").set_value("salt_pepper").run()
    app.slider(key="col_s").set_value(0.0).run()
    app.radio(key="norm_mode_en").set_value("mean_image").run()
    assert not app.exception


def test_language_switch_keeps_the_chosen_preset(app: AppTest) -> None:
    app.radio(key="aff_preset_en").set_value("t3").run()
    app.session_state["lang"] = "zh"
    app.run()
    assert app.radio(key="aff_preset_zh").value == "t3"
