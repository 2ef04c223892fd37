"""Decode uploaded bytes into RGB uint8 arrays, safely and in memory only."""
from __future__ import annotations

import functools
import hashlib
import io
import warnings

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from core.errors import ImageError

MAX_BYTES = 25 * 1024 * 1024
MAX_PIXELS = 50_000_000  # about 8000 x 6000: larger than any phone photo, far below a bomb

ImageFile.LOAD_TRUNCATED_IMAGES = False


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError("err_image_too_many_pixels", width=width, height=height,
                         limit_mp=max_pixels / 1e6)


def _to_uint8(image: Image.Image) -> Image.Image:
    """Map 16-bit, 32-bit integer and float images onto 0..255."""
    if image.mode not in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return image
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16") or (image.mode == "I" and values.max(initial=0) > 255):
        values = values / 257.0
    elif image.mode == "F" and values.max(initial=0) <= 1.0:
        values = values * 255.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite transparent images over white, as a viewer would show them."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES,
                 max_side: int | None = None) -> np.ndarray:
    """Turn uploaded bytes into an H x W x 3 uint8 RGB array, upright per EXIF, its longer side
    shrunk to `max_side` if given (JPEGs are decoded at a reduced scale directly).

    Raises ImageError for empty, oversized, unreadable or truncated input. The pixel
    limit is checked from the header, before any pixel is decoded.
    """
    if not data:
        raise ImageError("err_image_empty")
    if len(data) > max_bytes:
        raise ImageError("err_image_too_many_bytes", size_mb=len(data) / 2**20, limit_mb=max_bytes / 2**20)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("err_image_too_many_pixels_unknown", limit_mp=max_pixels / 1e6) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageError("err_image_not_image") from None
    width, height = image.size
    _check_size(width, height, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if max_side is not None and max(width, height) > max_side:
                image.draft("RGB", (max_side, max_side))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
            image.load()
            image = ImageOps.exif_transpose(image)
    except Exception:  # Pillow raises many types for broken streams
        raise ImageError("err_image_truncated") from None
    rgb = _flatten_alpha(_to_uint8(image))
    if max_side is not None:
        rgb.thumbnail((max_side, max_side), Image.Resampling.BOX)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


@functools.lru_cache(maxsize=32)
def digest(data: bytes) -> str:
    """A name for uploaded or trained bytes (a photo, a checkpoint), to key caches on what they hold.
    Remembered, so a page that asks again on every rerun does not hash a large checkpoint again."""
    return hashlib.sha256(data).hexdigest()


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB or grayscale uint8 array, for downloads."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def sample_photo() -> np.ndarray:
    """The built-in sample: scikit-image's public-domain astronaut portrait (Eileen Collins)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def limit_size(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so the longer side is at most `max_side` (area filter); smaller images unchanged."""
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def upscaled(chw: np.ndarray, side: int = 96) -> np.ndarray:
    """A data set's image (uint8, channels × height × width, grey or RGB) as an RGB picture `side` pixels
    high, with sharp pixels, for showing a 48-pixel face at a size people can see."""
    image = chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0)
    scale = max(1, side // image.shape[0])
    image = cv2.resize(image, (image.shape[1] * scale, image.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image)


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4) -> np.ndarray:
    """Two RGB images in one, the left one resized to the right one's height, with a white gap."""
    height = right.shape[0]
    scaled = cv2.resize(left, (max(1, round(left.shape[1] * height / left.shape[0])), height),
                        interpolation=cv2.INTER_AREA)
    return np.hstack([scaled, np.full((height, gap, 3), 255, np.uint8), right])
