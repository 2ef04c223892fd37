"""Shared fixtures: small in-memory test images, fresh settings, and the string-catalog check.
(pyproject.toml puts the repo root on sys.path for pytest.)"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def gradient_image(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A deterministic RGB uint8 image with structure in every channel (no flat areas)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([(x * 255) // max(width - 1, 1), (y * 255) // max(height - 1, 1), (x * y) % 256], axis=2)
    noise = rng.integers(0, 16, size=image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def encode(image, fmt: str, **save_kwargs) -> bytes:
    """Bytes of a Pillow image (or an RGB uint8 array) saved in `fmt`, in memory."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_kwargs)
    return buffer.getvalue()


@pytest.fixture
def make_image():
    """`make_image(height, width, seed)`: see `gradient_image`."""
    return gradient_image


@pytest.fixture
def encode_as():
    """`encode_as(image, fmt, **save_kwargs)`: see `encode`."""
    return encode


@pytest.fixture
def rgb_image() -> np.ndarray:
    return gradient_image()


@pytest.fixture
def png_bytes() -> bytes:
    return encode(gradient_image(16, 20), "PNG")


@pytest.fixture(autouse=True)
def fresh_settings():
    """Settings are read once per process; a test that changes the environment sees its change."""
    from core.settings import settings

    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture(autouse=True)
def every_string_exists(caplog):
    """A key that the code builds at run time and that no catalog holds fails the test that built it."""
    yield
    missing = [record.getMessage() for record in caplog.get_records("call") if record.name == "core.i18n"]
    assert not missing, missing


@pytest.fixture(scope="session")
def app_url():
    """One app server for the browser tests; each test opens its own browser, so its own session."""
    from tests.browser import require_browser, running_app

    require_browser()
    with running_app() as url:
        yield url


def pytest_collection_modifyitems(items):
    """Every test in a tests/test_browser_*.py file drives Chromium: it is `browser`, and `slow`."""
    for item in items:
        if item.path.name.startswith("test_browser_"):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
