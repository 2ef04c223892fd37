"""AppTest: every page renders without an exception, and the sidebar switches the language."""
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
    assert any("公有领域" in c.value for c in app.caption)  # the example photo's credit line
