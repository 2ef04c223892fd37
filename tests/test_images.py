"""Tests for core.images.decode_image: formats, EXIF, modes, and hostile or broken input.

Every input is built in memory with Pillow; nothing touches the disk.
"""
from __future__ import annotations

import io
import re
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from core.errors import ImageError, UserError
from core.images import MAX_PIXELS, decode_image, encode_jpeg, encode_png

# Python exception or class names must never reach the user.
_CLASS_NAME = re.compile(r"\b\w*(Error|Exception|Warning)\b|Traceback|PIL|Pillow|<|>|__")


def assert_readable(error: ImageError) -> None:
    text = str(error)
    assert text and text != error.key, "the message must come from the catalog"
    assert not _CLASS_NAME.search(text), text
    chinese = error.message("zh")
    assert chinese != text and any("\u4e00" <= ch <= "\u9fff" for ch in chinese)
    assert not _CLASS_NAME.search(chinese), chinese


def noise_image(height: int = 32, width: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _check_rgb(array: np.ndarray, height: int, width: int) -> None:
    assert isinstance(array, np.ndarray)
    assert array.shape == (height, width, 3)
    assert array.dtype == np.uint8
    assert array.flags["C_CONTIGUOUS"]


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt, kwargs, lossless", [
    ("PNG", {}, True),
    ("BMP", {}, True),
    ("TIFF", {}, True),
    ("WEBP", {"lossless": True}, True),
    ("WEBP", {"quality": 90}, False),
    ("JPEG", {"quality": 95}, False),
    ("GIF", {}, False),
])
def test_formats_decode_to_rgb(fmt, kwargs, lossless, make_image, encode_as):
    image = make_image(24, 40)
    array = decode_image(encode_as(image, fmt, **kwargs))
    _check_rgb(array, 24, 40)
    if lossless:
        np.testing.assert_array_equal(array, image)
    else:
        assert np.abs(array.astype(int) - image).mean() < 25


def test_encode_png_and_jpeg_round_trip(make_image):
    image = make_image(20, 30)
    np.testing.assert_array_equal(decode_image(encode_png(image)), image)
    jpeg = encode_jpeg(image, quality=95)
    assert jpeg[:2] == b"\xff\xd8"
    assert np.abs(decode_image(jpeg).astype(int) - image).mean() < 10
    grey = np.full((5, 7), 42, np.uint8)
    np.testing.assert_array_equal(decode_image(encode_png(grey)), np.full((5, 7, 3), 42, np.uint8))


# --------------------------------------------------------------------------- EXIF orientation


def _jpeg_with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def test_exif_orientation_6_rotates_clockwise():
    # stored 40 wide x 20 high, with a red block at the top-left
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:8, :8] = (255, 0, 0)
    data = _jpeg_with_orientation(Image.fromarray(stored), 6)
    array = decode_image(data)
    _check_rgb(array, 40, 20)  # width and height swapped
    # orientation 6 is shown rotated 90 degrees clockwise: top-left goes to top-right
    assert array[2:6, -6:-2, 0].mean() > 200 and array[2:6, -6:-2, 1:].mean() < 60
    assert array[-6:-2, 2:6].mean() < 40


def test_exif_orientation_1_is_left_alone():
    data = _jpeg_with_orientation(Image.fromarray(np.zeros((20, 40, 3), np.uint8)), 1)
    _check_rgb(decode_image(data), 20, 40)


# --------------------------------------------------------------------------- colour modes


def test_grayscale_becomes_rgb(encode_as):
    grey = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    array = decode_image(encode_as(Image.fromarray(grey, "L"), "PNG"))
    _check_rgb(array, 12, 10)
    for channel in range(3):
        np.testing.assert_array_equal(array[..., channel], grey)


def test_rgba_transparent_becomes_white(encode_as):
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red everywhere
    rgba[:, :4, 3] = 0  # left half fully transparent
    rgba[:, 4:6, 3] = 255  # opaque red
    rgba[:, 6:, :3] = 0
    rgba[:, 6:, 3] = 128  # half-transparent black
    array = decode_image(encode_as(Image.fromarray(rgba, "RGBA"), "PNG"))
    _check_rgb(array, 6, 8)
    assert np.all(array[:, :4] == 255)
    assert np.all(array[:, 4:6] == (255, 0, 0))
    assert np.all(np.abs(array[:, 6:].astype(int) - 127) <= 2)


def test_la_transparent_becomes_white(encode_as):
    la = np.zeros((4, 4, 2), np.uint8)  # black, fully transparent
    array = decode_image(encode_as(Image.fromarray(la, "LA"), "PNG"))
    assert np.all(array == 255)


def test_palette_with_transparency(encode_as):
    palette_image = Image.new("P", (6, 4))
    palette_image.putpalette([0, 0, 0, 0, 0, 255] + [0] * (254 * 3))
    pixels = np.zeros((4, 6), np.uint8)
    pixels[:, 3:] = 1  # right half uses the blue entry, left half the transparent black one
    palette_image.putdata(pixels.ravel().tolist())
    data = encode_as(palette_image, "PNG", transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    array = decode_image(data)
    _check_rgb(array, 4, 6)
    assert np.all(array[:, :3] == 255)
    assert np.all(array[:, 3:] == (0, 0, 255))


def test_palette_without_transparency(encode_as):
    palette_image = Image.new("P", (3, 2))
    palette_image.putpalette([10, 20, 30] + [0] * 765)
    array = decode_image(encode_as(palette_image, "PNG"))
    assert np.all(array == (10, 20, 30))


def test_16_bit_png_scales_to_8_bit(encode_as):
    values = np.array([[0, 257 * 100, 65535], [65535, 257, 0]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    data = encode_as(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    array = decode_image(data)
    _check_rgb(array, 2, 3)
    np.testing.assert_array_equal(array[..., 0], [[0, 100, 255], [255, 1, 0]])
    np.testing.assert_array_equal(array[..., 0], array[..., 2])


def test_float_tiff_in_unit_range_scales_to_8_bit(encode_as):
    values = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    array = decode_image(encode_as(Image.fromarray(values, "F"), "TIFF"))
    np.testing.assert_array_equal(array[0, :, 1], [0, 128, 255])


def test_cmyk_jpeg_becomes_rgb(encode_as):
    cmyk = Image.new("CMYK", (8, 6), (0, 255, 255, 0))  # pure red in CMYK
    array = decode_image(encode_as(cmyk, "JPEG", quality=95))
    _check_rgb(array, 6, 8)
    assert array[..., 0].mean() > 200 and array[..., 1:].mean() < 50


# --------------------------------------------------------------------------- bad input


def _decode_error(data: bytes, **kwargs) -> ImageError:
    with pytest.raises(ImageError) as info:
        decode_image(data, **kwargs)
    assert isinstance(info.value, UserError)
    assert_readable(info.value)
    return info.value


def test_empty_bytes():
    assert _decode_error(b"").key == "err_image_empty"


def test_random_bytes():
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert _decode_error(data).key == "err_image_not_image"


def test_text_is_not_an_image():
    assert _decode_error(b"hello, this is a text file\n" * 10).key == "err_image_not_image"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(fmt, encode_as):
    data = encode_as(noise_image(64, 64), fmt)
    error = _decode_error(data[: len(data) // 2])
    assert error.key in ("err_image_truncated", "err_image_not_image")


def test_truncated_png_header_only_is_truncated_error(encode_as):
    data = encode_as(noise_image(64, 64), "PNG")
    assert _decode_error(data[: len(data) // 2]).key == "err_image_truncated"


def test_corrupt_png_data_raises(encode_as):
    data = bytearray(encode_as(noise_image(64, 64), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start + 10:start + 200] = bytes(190)  # garble the compressed stream
    _decode_error(bytes(data))


def _png_with_size(png: bytes, width: int, height: int) -> bytes:
    """Patch the IHDR width/height of a PNG and fix its CRC, keeping the tiny pixel data."""
    assert png[12:16] == b"IHDR"
    ihdr = png[12:16] + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF) + png[33:]


def test_patched_png_header_is_readable_by_pillow(png_bytes):
    # sanity check of the helper: Pillow sees the claimed size without complaining about the CRC
    patched = _png_with_size(png_bytes, 123, 45)
    assert Image.open(io.BytesIO(patched)).size == (123, 45)


@pytest.mark.parametrize("width, height", [(30000, 30000), (8000, 7000), (200000, 300)])
def test_pixel_bomb_is_rejected_from_the_header(width, height, png_bytes):
    data = _png_with_size(png_bytes, width, height)
    assert len(data) < 2000
    start = time.perf_counter()
    error = _decode_error(data)
    assert time.perf_counter() - start < 1.0
    assert error.key in ("err_image_too_many_pixels", "err_image_too_many_pixels_unknown")


def test_pixel_limit_message_names_the_size(png_bytes):
    error = _decode_error(_png_with_size(png_bytes, 8000, 7000))
    assert error.key == "err_image_too_many_pixels"
    assert "8000" in str(error) and "7000" in str(error)
    assert f"{MAX_PIXELS / 1e6:.0f}" in str(error)


def test_custom_pixel_limit(encode_as):
    data = encode_as(noise_image(100, 100), "PNG")
    assert _decode_error(data, max_pixels=5000).key == "err_image_too_many_pixels"
    _check_rgb(decode_image(data, max_pixels=10000), 100, 100)


def test_byte_limit(png_bytes):
    error = _decode_error(png_bytes, max_bytes=len(png_bytes) - 1)
    assert error.key == "err_image_too_many_bytes"
    assert "MB" in str(error)
    _check_rgb(decode_image(png_bytes, max_bytes=len(png_bytes)), 16, 20)


def test_side_by_side_matches_heights():
    from core.images import side_by_side

    left = np.zeros((100, 50, 3), np.uint8)
    right = np.full((40, 30, 3), 7, np.uint8)
    joined = side_by_side(left, right, gap=2)
    assert joined.shape == (40, 20 + 2 + 30, 3)
    assert (joined[:, -30:] == 7).all() and (joined[:, 20:22] == 255).all()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_max_side_shrinks_while_decoding(fmt, make_image, encode_as):
    image = make_image(1200, 1600)
    rgb = decode_image(encode_as(image, fmt), max_side=400)
    assert rgb.shape == (300, 400, 3) and rgb.dtype == np.uint8
    assert abs(float(rgb.mean()) - float(image.mean())) < 3  # an area filter keeps the mean
    assert decode_image(encode_as(image, fmt), max_side=5000).shape == (1200, 1600, 3)


def test_max_side_works_for_16_bit_and_transparent_images(encode_as):
    wide = np.zeros((600, 1000), np.uint16)
    assert decode_image(encode_as(Image.fromarray(wide), "PNG"), max_side=100).shape == (60, 100, 3)
    rgba = Image.new("RGBA", (1000, 600), (0, 0, 0, 0))
    shrunk = decode_image(encode_as(rgba, "PNG"), max_side=100)
    assert shrunk.shape == (60, 100, 3) and shrunk.min() == 255
