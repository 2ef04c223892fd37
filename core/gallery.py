"""Example photos that ship with the app, for visitors without photos of their own: scikit-image's
public-domain and CC0 photos, and a group composed from one of them. Each photo's title and credit line
are the strings `gallery_<name>` and `gallery_credit_<name>`."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from core.images import sample_photo

GROUP_BACKGROUND = (214, 222, 230)
# (left, top, scale, mirrored) of each copy of the astronaut's head and shoulders on the group canvas
GROUP_LAYOUT = ((20, 60, 1.0, False), (270, 20, 1.25, True), (570, 90, 0.8, False), (780, 40, 1.1, True))
GROUP_SIZE = (400, 1020)  # height, width
HEAD = (slice(10, 270), slice(110, 340))  # rows, columns of the astronaut portrait around her head


@dataclass(frozen=True)
class ExamplePhoto:
    name: str
    faces: int  # faces the app's detector finds on it
    make: Callable[[], np.ndarray]  # RGB uint8


def _cameraman() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(np.repeat(data.camera()[..., None], 3, axis=2))


def _cat() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.chelsea())


def _group() -> np.ndarray:
    """Four copies of the astronaut's head, of several sizes, two mirrored, on a plain background."""
    head = sample_photo()[HEAD]
    canvas = np.empty((*GROUP_SIZE, 3), np.uint8)
    canvas[:] = GROUP_BACKGROUND
    for left, top, scale, mirrored in GROUP_LAYOUT:
        copy = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        copy = copy[:, ::-1] if mirrored else copy
        rows, cols = min(copy.shape[0], GROUP_SIZE[0] - top), min(copy.shape[1], GROUP_SIZE[1] - left)
        canvas[top:top + rows, left:left + cols] = copy[:rows, :cols]
    return canvas


GALLERY: tuple[ExamplePhoto, ...] = (
    ExamplePhoto("astronaut", 1, sample_photo),
    ExamplePhoto("cameraman", 1, _cameraman),
    ExamplePhoto("group", 4, _group),
    ExamplePhoto("cat", 0, _cat),
)
EXAMPLES = {photo.name: photo for photo in GALLERY}


def example_photo(name: str) -> np.ndarray:
    """The example photo called `name` (one of `GALLERY`), RGB uint8."""
    if name not in EXAMPLES:
        raise ValueError(f"no example photo {name!r}; expected one of {', '.join(EXAMPLES)}")
    return EXAMPLES[name].make()


def thumbnail(rgb: np.ndarray, width: int = 160, height: int = 120) -> np.ndarray:
    """The photo shrunk to fit `width` × `height` and centred on a white card of that size, so that a row
    of thumbnails lines up whatever the photos' shapes."""
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    cols, rows = max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))
    small = cv2.resize(rgb, (cols, rows), interpolation=cv2.INTER_AREA)
    card = np.full((height, width, 3), 255, np.uint8)
    top, left = (height - rows) // 2, (width - cols) // 2
    card[top:top + rows, left:left + cols] = small
    return card
