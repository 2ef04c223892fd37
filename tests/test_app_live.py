"""AppTest for the live camera page: AppTest runs no browser, so the page renders without the WebRTC
component and says why, in English and in Chinese; its settings survive leaving the page."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.i18n import translate
from core.live import DEFAULT_WINDOW
from tests.test_app import APP


@pytest.fixture()
def page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/live.py")  # straight there: the default page costs seconds
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_page_renders_without_the_webrtc_component_and_says_why(page, lang):
    page.sidebar.radio(key="lang").set_value(lang).run()
    assert not page.exception, [e.value for e in page.exception]
    assert page.title[0].value == translate("live_title", lang)
    assert [info.value for info in page.info] == [translate("live_needs_browser", lang)]
    assert page.slider(key="live_window").label == translate("live_window", lang)
    assert page.slider(key="live_window").value == DEFAULT_WINDOW
    assert page.toggle(key="live_explain").value


def test_the_window_and_the_attention_switch_survive_leaving_the_page(page):
    page.slider(key="live_window").set_value(9).run()
    page.toggle(key="live_explain").set_value(False).run()
    page.switch_page("app_pages/prediction.py")
    page.run()
    page.switch_page("app_pages/live.py")
    page.run()
    assert page.slider(key="live_window").value == 9
    assert not page.toggle(key="live_explain").value


def test_a_hosted_server_says_how_many_of_its_live_streams_are_in_use(monkeypatch):
    monkeypatch.setenv("FACELAB_HOSTED", "1")
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/live.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert translate("live_slots", "en", used=0, limit=2) in [caption.value for caption in at.caption]
