"""Helpers for real-browser tests: start the app on a free localhost port, drive Debian's Chromium."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from core.i18n import translate

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Screenshots for people to look at; set FACELAB_SCREENSHOTS to keep them somewhere else.
SHOTS = Path(os.environ.get("FACELAB_SCREENSHOTS", tempfile.gettempdir())) / "facelab-screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(timeout: float = 90.0):
    """(base URL, process) of `streamlit run app.py` (the app and its REST routes) on 127.0.0.1."""
    port = free_port()
    env = os.environ | {"STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{url}/healthz", timeout=2).status == 200:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("`streamlit run app.py` did not answer /healthz")
        yield url, process
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()


@contextlib.contextmanager
def running_app(timeout: float = 90.0):
    """Yield the base URL of the app served on 127.0.0.1."""
    with running_server(timeout) as (url, _):
        yield url


@contextlib.contextmanager
def browser_page(extra_args: tuple[str, ...] = ()):
    """A page of a fresh headless Chromium; `extra_args` go on its command line (a fake camera, say)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args],
            viewport={"width": 1400, "height": 1000})
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def go(page, lang: str, nav: str) -> None:
    page.locator("[data-testid='stSidebarNav']").get_by_text(translate(nav, lang), exact=True).click()


# The radio group of each option the browser tests pick, by string key.
RADIOS = {"ft_source_zip": "ft_source", "ft_start_bundled": "ft_start", "balance_weighted_loss": "ft_balance",
          "ft_augment_none": "ft_augment", "pred_model_upload": "pred_model", "pred_model_bundled": "pred_model"}


def _radio_group(page, lang: str, option: str):
    return page.get_by_role("radiogroup", name=translate(RADIOS[option], lang), exact=True)


def idle(page) -> None:
    """Wait until the app has finished its run (Streamlit shows its status widget while it runs)."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="detached", timeout=120_000)


def pick(page, lang: str, option: str) -> None:
    _radio_group(page, lang, option).get_by_text(translate(option, lang), exact=True).click()
    idle(page)


def checked(page, lang: str, option: str) -> None:
    radio = _radio_group(page, lang, option).get_by_role("radio", name=translate(option, lang), exact=True)
    radio.wait_for(state="attached", timeout=30_000)
    assert radio.is_checked(), f"{option} ({lang}) is not shown as selected"
