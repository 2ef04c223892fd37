"""Data augmentation as in the lecture, with pipelines that are data.

The lecture's operators are here once: MATLAB `fspecial` kernels, its `maketform('affine')`
presets, crops, noise, colour changes and normalization. Each pipeline operator is one
`Operator` record in `OPERATORS`: its parameters, how it draws them and what it does. A
pipeline is a `PipelineSpec` that serialises to JSON. Drawing random parameters (`sample_batch`,
for a whole batch at once, and `sample_params`) is kept apart from applying them (`apply_params`
here, `core.batch_augment` for training), so the preview page, the zip augmenter, training and
the tests all run the same rules and any draw can be reproduced from its parameters.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from core.errors import SpecError

EPS = np.finfo(float).eps
_POOL = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))

# --------------------------------------------------------------------------- fspecial

FSPECIAL_KINDS = ("average", "disk", "gaussian", "unsharp", "motion")


def _hsize(value: Any) -> tuple[int, int]:
    rows, cols = (value, value) if np.isscalar(value) else tuple(value)
    if int(rows) != rows or int(cols) != cols or rows < 1 or cols < 1:
        raise ValueError(f"hsize must be positive integers, got {value!r}")
    return int(rows), int(cols)


def _average(hsize: Any = 3) -> np.ndarray:
    rows, cols = _hsize(hsize)
    return np.full((rows, cols), 1.0 / (rows * cols))


def _disk(radius: float = 5) -> np.ndarray:
    """MATLAB's anti-aliased disk: each cell holds the area of the circle that covers it."""
    if radius <= 0:
        raise ValueError("disk radius must be positive")
    rad = float(radius)
    crad = int(math.ceil(rad - 0.5))
    x, y = np.meshgrid(np.arange(-crad, crad + 1), np.arange(-crad, crad + 1))
    maxxy = np.maximum(abs(x), abs(y)).astype(float)
    minxy = np.minimum(abs(x), abs(y)).astype(float)
    outer = rad**2 < (maxxy + 0.5) ** 2 + (minxy - 0.5) ** 2
    m1 = np.where(outer, minxy - 0.5, np.sqrt(np.maximum(rad**2 - (maxxy + 0.5) ** 2, 0)))
    inner = rad**2 > (maxxy - 0.5) ** 2 + (minxy + 0.5) ** 2
    m2 = np.where(inner, minxy + 0.5, np.sqrt(np.maximum(rad**2 - (maxxy - 0.5) ** 2, 0)))
    a1, a2 = np.arcsin(np.clip(m1 / rad, -1, 1)), np.arcsin(np.clip(m2 / rad, -1, 1))
    edge = ((rad**2 < (maxxy + 0.5) ** 2 + (minxy + 0.5) ** 2) & (rad**2 > (maxxy - 0.5) ** 2 + (minxy - 0.5) ** 2)) | (
        (minxy == 0) & (maxxy - 0.5 < rad) & (maxxy + 0.5 >= rad)
    )
    sgrid = (rad**2 * (0.5 * (a2 - a1) + 0.25 * (np.sin(2 * a2) - np.sin(2 * a1))) - (maxxy - 0.5) * (m2 - m1) + (m1 - minxy + 0.5)) * edge
    sgrid = sgrid + ((maxxy + 0.5) ** 2 + (minxy + 0.5) ** 2 < rad**2)
    sgrid[crad, crad] = min(math.pi * rad**2, math.pi / 2)
    if crad > 0 and rad > crad - 0.5 and rad**2 < (crad - 0.5) ** 2 + 0.25:
        m1s = math.sqrt(rad**2 - (crad - 0.5) ** 2)
        m1n = m1s / rad
        sg0 = 2 * (rad**2 * (0.5 * math.asin(m1n) + 0.25 * math.sin(2 * math.asin(m1n))) - m1s * (crad - 0.5))
        for r, c in ((2 * crad, crad), (crad, 2 * crad), (crad, 0), (0, crad)):
            sgrid[r, c] = sg0
        for r, c in ((2 * crad - 1, crad), (crad, 2 * crad - 1), (crad, 1), (1, crad)):
            sgrid[r, c] -= sg0
    sgrid[crad, crad] = min(sgrid[crad, crad], 1)
    return sgrid / sgrid.sum()


def _gaussian(hsize: Any = 3, sigma: float = 0.5) -> np.ndarray:
    rows, cols = _hsize(hsize)
    x, y = np.meshgrid(np.arange(cols) - (cols - 1) / 2, np.arange(rows) - (rows - 1) / 2)
    kernel = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    kernel[kernel < EPS * kernel.max()] = 0
    return kernel / kernel.sum() if kernel.sum() else kernel


def _unsharp(alpha: float = 0.2) -> np.ndarray:
    if not 0 <= alpha <= 1:
        raise ValueError("unsharp alpha must be in [0, 1]")
    return np.array([[-alpha, alpha - 1, -alpha], [alpha - 1, alpha + 5, alpha - 1], [-alpha, alpha - 1, -alpha]]) / (alpha + 1)


def _motion(length: float = 9, theta: float = 0) -> np.ndarray:
    """A line of `length` pixels at `theta` degrees, anti-aliased as in MATLAB."""
    length = max(1.0, float(length))
    half = (length - 1) / 2
    phi = math.radians(math.fmod(theta, 180) + (180 if math.fmod(theta, 180) < 0 else 0))
    cosphi, sinphi = math.cos(phi), math.sin(phi)
    xsign = 1 if cosphi > 0 else (-1 if cosphi < 0 else 0)
    linewdt = 1
    sx = math.trunc(half * cosphi + linewdt * xsign - length * EPS)
    sy = math.trunc(half * sinphi + linewdt - length * EPS)
    xs = np.arange(0, sx + xsign, xsign) if xsign else np.array([0])
    x, y = np.meshgrid(xs.astype(float), np.arange(0, sy + 1, dtype=float))
    dist2line = y * cosphi - x * sinphi
    rad = np.sqrt(x**2 + y**2)
    last = (rad >= half) & (np.abs(dist2line) <= linewdt)
    with np.errstate(divide="ignore", invalid="ignore"):
        x2last = half - np.abs((x[last] + dist2line[last] * sinphi) / cosphi)
    dist2line[last] = np.sqrt(dist2line[last] ** 2 + x2last**2)
    dist2line = linewdt + EPS - np.abs(dist2line)
    dist2line[dist2line < 0] = 0
    rows, cols = dist2line.shape
    kernel = np.zeros((2 * rows - 1, 2 * cols - 1))
    kernel[:rows, :cols] = np.rot90(dist2line, 2)
    kernel[rows - 1 :, cols - 1 :] = dist2line
    kernel = kernel / (kernel.sum() + EPS * length * length)
    return np.flipud(kernel) if cosphi > 0 else kernel


_FSPECIAL: dict[str, Callable[..., np.ndarray]] = {
    "average": _average,
    "disk": _disk,
    "gaussian": _gaussian,
    "unsharp": _unsharp,
    "motion": _motion,
}


def fspecial(kind: str, *args: Any) -> np.ndarray:
    """MATLAB's `fspecial(kind, ...)` with MATLAB's defaults; theta of 'motion' is in degrees."""
    if kind not in _FSPECIAL:
        raise ValueError(f"unknown fspecial kind {kind!r}; expected one of {FSPECIAL_KINDS}")
    return _FSPECIAL[kind](*args)


IDENTITY_KERNEL = np.array([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]])

# The lecture's filter bank. F6, F8 and F9 pass radians where fspecial reads degrees;
# we reproduce MATLAB, so those three blur almost horizontally.
FILTER_PRESETS: dict[str, tuple[Any, ...]] = {
    "F1": ("disk", 1),
    "F2": ("average", 4),
    "F3": ("gaussian", 3),
    "F4": ("gaussian", 4),
    "F5": ("unsharp",),
    "F6": ("motion", 7, 0.75 * math.pi),
    "F7": ("motion", 5, 0),
    "F8": ("motion", 5, math.pi / 2),
    "F9": ("motion", 6, math.pi),
    "F10": ("identity",),
}


def preset_kernel(name: str) -> np.ndarray:
    kind, *args = FILTER_PRESETS[name]
    return IDENTITY_KERNEL.copy() if kind == "identity" else fspecial(kind, *args)


def apply_kernel(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate like MATLAB's imfilter (no kernel flip, and for even sizes the same anchor,
    floor((size + 1) / 2) counted from 1), with replicated borders."""
    anchor = ((kernel.shape[1] - 1) // 2, (kernel.shape[0] - 1) // 2)
    return cv2.filter2D(image, -1, kernel.astype(np.float32), anchor=anchor, borderType=cv2.BORDER_REPLICATE)


# --------------------------------------------------------------------------- affine


def matlab_to_opencv(tform: np.ndarray) -> np.ndarray:
    """MATLAB's row-vector `[u v 1] = [x y 1] * T` as the 2x3 column-vector matrix OpenCV uses."""
    tform = np.asarray(tform, dtype=float)
    if tform.shape != (3, 3) or not np.allclose(tform[:, 2], [0, 0, 1]):
        raise ValueError("a MATLAB affine T must be 3x3 with last column [0 0 1]")
    return tform.T[:2]


def affine_presets(width: int, height: int, shift: float = 4.0, angle: float = 10.0) -> dict[str, np.ndarray]:
    """The lecture's `maketform('affine', T)` presets t1..t7 in MATLAB's row convention.

    Coordinates are 0-based pixel centres. `shift` is the lecture's f: t1 as written in the
    lecture is not an affine matrix, and is read as the translation by 2f it clearly means.
    """
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    cx, cy = (width - 1) / 2, (height - 1) / 2
    to_centre = np.array([[1, 0, 0], [0, 1, 0], [-cx, -cy, 1]])
    from_centre = np.array([[1, 0, 0], [0, 1, 0], [cx, cy, 1]])
    return {
        "t1": np.array([[1, 0, 0], [0, 1, 0], [2 * shift, 2 * shift, 1]]),
        "t2": to_centre @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]]) @ from_centre,
        "t3": np.array([[-1, 0, 0], [0, 1, 0], [width - 1, 0, 1]]),
        "t4": np.array([[1, 0, 0], [0, -1, 0], [0, height - 1, 1]]),
        "t5": to_centre @ np.diag([1.2, 1.2, 1.0]) @ from_centre,
        "t6": to_centre @ np.array([[1, 0, 0], [0.2, 1, 0], [0, 0, 1]]) @ from_centre,
        "t7": to_centre @ np.array([[1, 0.2, 0], [0, 1, 0], [0, 0, 1]]) @ from_centre,
    }


def rotation_translation(angle_deg: float, tx: float, ty: float) -> tuple[np.ndarray, np.ndarray]:
    """The lecture's rotation-plus-translation T (row convention) and its inverse."""
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    forward = np.array([[c, s, 0], [-s, c, 0], [tx, ty, 1]])
    inverse = np.array([[c, -s, 0], [s, c, 0], [-tx * c - ty * s, tx * s - ty * c, 1]])
    return forward, inverse


def affine_matrix(shape: tuple[int, ...], rotation: Any = 0.0, translate: tuple[Any, Any] = (0.0, 0.0),
                  scale: Any = 1.0, shear: Any = 0.0) -> np.ndarray:
    """2x3 matrix: rotate/scale/shear about the image centre, then shift by a fraction of the size.
    Each value may be an array over a batch; the result then has shape (batch, 2, 3)."""
    height, width = shape[:2]
    rotation, tx, ty, scale, shear = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in
                                                           (rotation, *translate, scale, shear)))
    c, s, t = np.cos(np.radians(rotation)), np.sin(np.radians(rotation)), np.tan(np.radians(shear))
    # scale * rotation @ [[1, t], [0, 1]]
    a, b, d, e = scale * c, scale * (c * t - s), scale * s, scale * (s * t + c)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    row0 = np.stack([a, b, cx - a * cx - b * cy + tx * width], axis=-1)
    row1 = np.stack([d, e, cy - d * cx - e * cy + ty * height], axis=-1)
    return np.stack([row0, row1], axis=-2)



# --------------------------------------------------------------------------- crops


def crop_box(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop (left, top, width, height) in pixels."""
    left, top, width, height = box
    return image[top : top + height, left : left + width]


def resize(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize to `size` (square) or (height, width); area filter when shrinking."""
    height, width = (size, size) if isinstance(size, (int, np.integer)) else size
    shrinking = height * width < image.shape[0] * image.shape[1]
    return cv2.resize(image, (int(width), int(height)), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def five_crops(image: np.ndarray, crop: int) -> dict[str, np.ndarray]:
    """Centre and four corner crops of side `crop` (clipped to the image)."""
    height, width = image.shape[:2]
    ch, cw = min(crop, height), min(crop, width)
    return {
        "center": crop_box(image, ((width - cw) // 2, (height - ch) // 2, cw, ch)),
        "top_left": crop_box(image, (0, 0, cw, ch)),
        "top_right": crop_box(image, (width - cw, 0, cw, ch)),
        "bottom_left": crop_box(image, (0, height - ch, cw, ch)),
        "bottom_right": crop_box(image, (width - cw, height - ch, cw, ch)),
    }


def ten_crops(image: np.ndarray, crop: int) -> dict[str, np.ndarray]:
    """The five crops and their horizontal mirrors (AlexNet's test-time 10-crop)."""
    crops = five_crops(image, crop)
    return crops | {f"{name}_flip": np.ascontiguousarray(view[:, ::-1]) for name, view in crops.items()}


def random_resized_boxes(shape: tuple[int, ...], rng: np.random.Generator, scale: tuple[float, float],
                         ratio: tuple[float, float], count: int) -> np.ndarray:
    """`count` boxes (left, top, width, height), each covering `scale` of the area with aspect `ratio`
    (w/h), as in Inception training: ten tries each, else the centre square."""
    height, width = shape[:2]
    target = height * width * rng.uniform(scale[0], scale[1], (count, 10))
    aspect = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), (count, 10)))
    ws, hs = np.rint(np.sqrt(target * aspect)).astype(int), np.rint(np.sqrt(target / aspect)).astype(int)
    fits = (ws > 0) & (ws <= width) & (hs > 0) & (hs <= height)
    first, found, rows = fits.argmax(axis=1), fits.any(axis=1), np.arange(count)
    side = min(height, width)
    w, h = np.where(found, ws[rows, first], side), np.where(found, hs[rows, first], side)
    left = np.where(found, rng.integers(0, width - w + 1), (width - side) // 2)
    top = np.where(found, rng.integers(0, height - h + 1), (height - side) // 2)
    return np.stack([left, top, w, h], axis=1)


def random_resized_box(shape: tuple[int, ...], rng: np.random.Generator, scale: tuple[float, float],
                       ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """One box of `random_resized_boxes`."""
    left, top, w, h = random_resized_boxes(shape, rng, scale, ratio, 1)[0].tolist()
    return left, top, w, h


# --------------------------------------------------------------------------- noise (imnoise)


def noise_field(kind: str, amount: float, seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB `imnoise` on [0, 1] intensities as a per-pixel map J = I * gain + bias: 'gaussian'
    variance, 'salt_pepper' density, 'speckle' variance (J = I + n*I, n uniform with mean 0).
    The preview and training both apply this map, so a seed gives the same noise in both."""
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return np.float32(1.0), rng.standard_normal(shape, dtype=np.float32) * np.float32(math.sqrt(amount))
    if kind == "speckle":
        return 1 + (rng.random(shape, dtype=np.float32) - 0.5) * np.float32(math.sqrt(12 * amount)), np.float32(0.0)
    if kind == "salt_pepper":
        draw = rng.random(shape[:2], dtype=np.float32)
        draw = draw[..., None] if len(shape) == 3 else draw
        return (draw >= amount).astype(np.float32), ((draw >= amount / 2) & (draw < amount)).astype(np.float32)
    raise ValueError(f"unknown noise kind {kind!r}")


def add_noise(image: np.ndarray, kind: str, amount: float, seed: int) -> np.ndarray:
    gain, bias = noise_field(kind, amount, seed, image.shape)
    values = image.astype(np.float32) / 255.0 * gain + bias
    return np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- colour

LUMA = np.array([0.299, 0.587, 0.114])
_HUE_LUMA = np.array([0.213, 0.715, 0.072])


def _hue_rotation(turns: Any) -> np.ndarray:
    """Rotation of RGB about the grey axis by `turns` of a full circle (SVG's feHueRotate)."""
    angle = 2 * np.pi * np.asarray(turns, dtype=float)[..., None, None]
    w = _HUE_LUMA
    grey = np.outer(np.ones(3), w)
    turn = np.array([[-w[0], -w[1], 1 - w[2]], [0.143, 0.140, -0.283], [-(1 - w[0]), w[1], w[2]]])
    return grey + np.cos(angle) * (np.eye(3) - grey) + np.sin(angle) * turn


def color_matrix(mean_rgb: np.ndarray, brightness: Any = 1.0, contrast: Any = 1.0,
                 saturation: Any = 1.0, hue: Any = 0.0) -> np.ndarray:
    """One 3x4 affine colour map: brightness, then contrast about the mean grey, then
    saturation towards grey, then hue rotation (in turns). Values and `mean_rgb` (..., 3) may
    be arrays over a batch; the result then has shape (batch, 3, 4)."""
    brightness, contrast, saturation = (np.asarray(v, dtype=float)[..., None, None]
                                        for v in (brightness, contrast, saturation))
    linear = brightness * np.eye(3)
    mean_grey = brightness[..., 0] * (np.asarray(mean_rgb, dtype=float) @ LUMA)[..., None]
    linear, offset = contrast * linear, (1 - contrast[..., 0]) * mean_grey * np.ones(3)
    to_grey = saturation * np.eye(3) + (1 - saturation) * np.outer(np.ones(3), LUMA)
    rotate = _hue_rotation(hue) @ to_grey
    linear, offset = rotate @ linear, rotate @ offset[..., None]
    batch = np.broadcast_shapes(linear.shape[:-2], offset.shape[:-2])
    return np.concatenate([np.broadcast_to(linear, (*batch, 3, 3)), np.broadcast_to(offset, (*batch, 3, 1))], axis=-1)


def gamma_table(gamma: Any) -> np.ndarray:
    """The uint8 lookup table of `gamma` (an array of gammas gives one table each)."""
    levels = np.arange(256) / 255.0
    return np.clip(255.0 * levels ** np.asarray(gamma, dtype=float)[..., None] + 0.5, 0, 255).astype(np.uint8)


def apply_color_map(image: np.ndarray, matrix: np.ndarray, table: np.ndarray) -> np.ndarray:
    """A 3x4 colour map in one pass over the pixels (grey images go through RGB), then a lookup table.
    The map runs in float32 and rounds half to even, as `core.batch_augment` does (cv2.transform's
    fixed-point uint8 path would be off by a level at one pixel in twelve)."""
    def to_uint8(values: np.ndarray) -> np.ndarray:
        return cv2.add(values, 0.0, dtype=cv2.CV_8U)  # saturates and rounds half to even, in one pass

    rgb = (image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)).astype(np.float32)
    out = to_uint8(cv2.transform(rgb, matrix))
    if image.ndim == 2:
        out = to_uint8(cv2.transform(out.astype(np.float32), LUMA[None]))
    return cv2.LUT(out, table)


def adjust_color(image: np.ndarray, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0,
                 hue: float = 0.0, gamma: float = 1.0) -> np.ndarray:
    """Colour jitter: one colour matrix and a gamma lookup table."""
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    matrix = color_matrix(np.array(cv2.mean(rgb)[:3]), brightness, contrast, saturation, hue)
    return apply_color_map(image, matrix, gamma_table(gamma))



# --------------------------------------------------------------------------- normalization


def subtract_channel_mean(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float image minus its per-channel mean, and that mean."""
    values = image.astype(np.float32)
    mean = values.reshape(-1, values.shape[-1] if values.ndim == 3 else 1).mean(axis=0)
    return values - mean, mean


def subtract_mean_image(image: np.ndarray, mean_image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) - mean_image.astype(np.float32)


def scale_intensity(image: np.ndarray, factor: float = 1 / 256) -> np.ndarray:
    return image.astype(np.float32) * factor


# --------------------------------------------------------------------------- pipelines


@dataclass(frozen=True)
class OpSpec:
    """One operator of a pipeline: `params` maps a name to a fixed value, a [low, high]
    range drawn uniformly, or a list of choices drawn with equal chance."""

    op: str
    p: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineSpec:
    ops: tuple[OpSpec, ...] = ()
    version: int = 1


@dataclass(frozen=True)
class Draw:
    """What one operator drew for one image: whether it ran and with which values (plain JSON data)."""

    op: str
    applied: bool
    values: dict[str, Any]


@dataclass(frozen=True)
class DrawBatch:
    """What one operator drew for a batch of images: `applied` and each value are arrays over the
    batch, except values the spec fixed, which stay one scalar."""

    op: str
    applied: np.ndarray
    values: dict[str, Any]

    def __len__(self) -> int:
        return len(self.applied)

    def values_at(self, index: int) -> dict[str, Any]:
        return {name: value[index].tolist() if isinstance(value, np.ndarray) else value
                for name, value in self.values.items()}

    def draw(self, index: int) -> Draw:
        return Draw(self.op, bool(self.applied[index]), self.values_at(index))

    @classmethod
    def of(cls, draws: Sequence[Draw]) -> DrawBatch:
        """Per-image draws of one operator as one batch (a scalar value all of them share stays one)."""
        def stacked(name: str) -> Any:
            first, values = draws[0].values[name], [d.values[name] for d in draws]
            return first if not isinstance(first, list) and all(v == first for v in values) else np.array(values)

        return cls(draws[0].op, np.array([d.applied for d in draws]), {name: stacked(name) for name in draws[0].values})


def stack_draws(draws: Sequence[Sequence[Draw]]) -> list[DrawBatch]:
    """Each image's list of draws (all from one spec) as one `DrawBatch` an operator."""
    return [DrawBatch.of(step) for step in zip(*draws)]


@dataclass(frozen=True)
class Param:
    """One parameter of an operator. `limits` (minimum, maximum, slider step) bound a numeric one;
    `choices` list what a categorical one may take. `whole_range`: the operator's own sampler reads
    the [low, high] range (so it must be one). `fixed`: a single value (an output size, so that a
    training batch keeps one shape)."""

    default: Any
    limits: tuple[float, float, float] | None = None
    choices: tuple[str, ...] = ()
    integer: bool = False
    whole_range: bool = False
    fixed: bool = False

    def check(self, op: str, name: str, value: Any) -> None:
        values = value if isinstance(value, list) else [value]
        if not self._valid(value, values):
            raise SpecError("err_spec_bad_value", op=op, param=name, value=value)

    def _valid(self, value: Any, values: list) -> bool:
        if not values or any(isinstance(v, bool) for v in values):
            return False
        if self.choices:
            return all(isinstance(v, str) and v in self.choices for v in values)
        if isinstance(value, list) and (self.fixed or len(value) != 2 or value[0] > value[1]):
            return False
        if self.whole_range and not isinstance(value, list):
            return False
        low, high, _ = self.limits
        return all(isinstance(v, (int, float)) and low <= v <= high for v in values)

    def sample(self, value: Any, count: int, rng: np.random.Generator) -> Any:
        """`count` values at once: a list of strings is a choice, two numbers a uniform range (ends
        included for an integer), a scalar fixed."""
        if isinstance(value, list) and isinstance(value[0], str):
            return np.asarray(value)[rng.integers(0, len(value), count)]
        if isinstance(value, list):
            low, high = value
            return rng.integers(int(low), int(high) + 1, count) if self.integer else rng.uniform(low, high, count)
        return int(value) if self.integer else value


Shape = tuple[int, ...]
# (input shape, values) -> (3x3 matrices from input to output pixel coordinates, output (height, width))
Geometry = Callable[[Shape, dict[str, Any]], tuple[np.ndarray, tuple[int, int]]]
# (ranges of the whole_range params, values drawn so far, shape, count, rng) -> more values
Sampler = Callable[[dict[str, Any], dict[str, Any], Shape, int, np.random.Generator], dict[str, Any]]


@dataclass(frozen=True)
class Operator:
    """One operator, whole: its parameters, what it draws beyond them (`sample`, for a batch at once),
    and what it does. It moves pixels (`geometry`), or changes them by a `kernel` (correlation, as
    `apply_kernel`), a `color` map ((values, mean RGB) -> 3x4 matrix and gamma table) or a `noise`
    field ((values, image shape) -> gain and bias). Values may be arrays over a batch for `geometry`
    and `color`. The preview (`apply_params`) and training (`core.batch_augment`) read only these.

    `resizes`: its output has the `size` parameter's shape even where it did not run, so that every
    draw of a pipeline, and a training batch, has one size."""

    params: dict[str, Param]
    sample: Sampler | None = None
    geometry: Geometry | None = None
    kernel: Callable[[dict[str, Any]], np.ndarray] | None = None
    color: Callable[[dict[str, Any], np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    noise: Callable[[dict[str, Any], Shape], tuple[np.ndarray, np.ndarray]] | None = None
    resizes: bool = False

    @property
    def defaults(self) -> dict[str, Any]:
        return {name: param.default for name, param in self.params.items()}


def _as3x3(matrix: np.ndarray) -> np.ndarray:
    bottom = np.broadcast_to([0.0, 0.0, 1.0], (*matrix.shape[:-2], 1, 3))
    return np.concatenate([matrix[..., :2, :], bottom], axis=-2)


def _box_to_size(box: Any, size: tuple[int, int]) -> np.ndarray:
    """Pixel-centre-exact map of (left, top, width, height) boxes (..., 4) onto a (height, width) grid."""
    left, top, width, height = np.moveaxis(np.asarray(box, dtype=float), -1, 0)
    sx, sy = size[1] / width, size[0] / height
    zero, one = np.zeros_like(sx), np.ones_like(sx)
    return np.stack([np.stack([sx, zero, (0.5 - left) * sx - 0.5], -1), np.stack([zero, sy, (0.5 - top) * sy - 0.5], -1),
                     np.stack([zero, zero, one], -1)], -2)


def _crop_geometry(shape: Shape, values: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int]]:
    size = (int(values["size"]), int(values["size"]))
    return _box_to_size(values["box"], size), size


def _resize_geometry(shape: Shape, values: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int]]:
    size = (int(values["size"]), int(values["size"]))
    return _box_to_size((0, 0, shape[1], shape[0]), size), size


def _affine_geometry(shape: Shape, values: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int]]:
    matrix = affine_matrix(shape, values["rotation"], (values["translate_x"], values["translate_y"]),
                           values["scale"], values["shear"])
    return _as3x3(matrix), shape[:2]


def _preset_geometry(shape: Shape, values: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int]]:
    names, shifts, angles = np.broadcast_arrays(np.asarray(values["name"]), values["shift"], values["angle"])
    matrices = [_as3x3(matlab_to_opencv(affine_presets(shape[1], shape[0], float(shift), float(angle))[str(name)]))
                for name, shift, angle in zip(names.ravel(), shifts.ravel(), angles.ravel())]
    return np.stack(matrices).reshape(*names.shape, 3, 3), shape[:2]


def _hflip_geometry(shape: Shape, values: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int]]:
    return np.array([[-1.0, 0, shape[1] - 1], [0, 1, 0], [0, 0, 1]]), shape[:2]


def geometry_of(draw: DrawBatch, shape: Shape) -> tuple[np.ndarray, tuple[int, int]]:
    """A geometric operator's (batch, 3, 3) matrices and output size: the identity where it did not
    run, or the plain resize if it `resizes`."""
    operator = OPERATORS[draw.op]
    matrices, size = operator.geometry(shape, draw.values)
    matrices = np.array(np.broadcast_to(matrices, (len(draw), 3, 3)))
    if not draw.applied.all():
        matrices[~draw.applied] = _box_to_size((0, 0, shape[1], shape[0]), size) if operator.resizes else np.eye(3)
    return matrices, size


def shrink_plan(matrix: np.ndarray, shape: Shape) -> tuple[int, np.ndarray]:
    """How often to halve an image with a Gaussian pyramid (cv2.pyrDown) before resampling it through
    `matrix`, so that a strong shrink does not alias; and the matrix from the halved image."""
    levels, (height, width) = 0, shape[:2]
    while math.sqrt(abs(np.linalg.det(matrix[:2, :2]))) < 0.5 and min(height, width) >= 2:
        half = ((height + 1) // 2, (width + 1) // 2)
        matrix = matrix @ np.linalg.inv(_box_to_size((0, 0, width, height), half))
        levels, (height, width) = levels + 1, half
    return levels, matrix


def warp(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample once through a 3x3 affine `matrix` into a (height, width) grid (see `shrink_plan`)."""
    levels, matrix = shrink_plan(matrix, image.shape)
    for _ in range(levels):
        image = cv2.pyrDown(image)
    return cv2.warpAffine(image, matrix[:2], (size[1], size[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


CROP_MODES = ("random_resized", "center", "top_left", "top_right", "bottom_left", "bottom_right")


def _sample_crop(ranges: dict[str, Any], values: dict[str, Any], shape: Shape, count: int,
                 rng: np.random.Generator) -> dict[str, Any]:
    height, width = shape[:2]
    modes = np.broadcast_to(np.asarray(values["mode"]), (count,))
    if not np.isin(modes, CROP_MODES).all():
        raise SpecError("err_spec_bad_value", op="crop", param="mode", value=values["mode"])
    random_boxes = random_resized_boxes(shape, rng, tuple(ranges["scale"]), tuple(ranges["ratio"]), count)
    side = np.maximum(1, np.rint(min(height, width) * np.sqrt(rng.uniform(*ranges["scale"], count)))).astype(int)
    left = np.select([np.isin(modes, ("top_right", "bottom_right")), modes == "center"],
                     [width - side, (width - side) // 2], 0)
    top = np.select([np.isin(modes, ("bottom_left", "bottom_right")), modes == "center"],
                    [height - side, (height - side) // 2], 0)
    corner_boxes = np.stack([left, top, side, side], axis=1)
    return {"box": np.where((modes == "random_resized")[:, None], random_boxes, corner_boxes)}


def _sample_translation(ranges: dict[str, Any], values: dict[str, Any], shape: Shape, count: int,
                        rng: np.random.Generator) -> dict[str, Any]:
    tx, ty = rng.uniform(*ranges["translate"], (2, count))
    return {"translate_x": tx, "translate_y": ty}


def _sample_seed(ranges: dict[str, Any], values: dict[str, Any], shape: Shape, count: int,
                 rng: np.random.Generator) -> dict[str, Any]:
    return {"seed": rng.integers(0, 2**31 - 1, count)}


def _color(values: dict[str, Any], mean_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (color_matrix(mean_rgb, values["brightness"], values["contrast"], values["saturation"], values["hue"]),
            gamma_table(values["gamma"]))


AFFINE_PRESETS = ("t1", "t2", "t3", "t4", "t5", "t6", "t7")
NOISE_KINDS = ("gaussian", "salt_pepper", "speckle")
_JITTER = (0.0, 3.0, 0.05)

OPERATORS: dict[str, Operator] = {
    "filter_preset": Operator(
        {"name": Param(list(FILTER_PRESETS), choices=tuple(FILTER_PRESETS))},
        kernel=lambda v: preset_kernel(v["name"])),
    "motion_blur": Operator(
        {"length": Param([3, 9], (1, 31, 1), integer=True), "angle": Param([0.0, 180.0], (0.0, 180.0, 1.0))},
        kernel=lambda v: fspecial("motion", v["length"], v["angle"])),
    "gaussian_blur": Operator(
        {"hsize": Param([3, 7], (1, 31, 1), integer=True), "sigma": Param([0.5, 1.5], (0.1, 10.0, 0.1))},
        kernel=lambda v: fspecial("gaussian", v["hsize"], v["sigma"])),
    "affine": Operator(
        {"rotation": Param([-15.0, 15.0], (-180.0, 180.0, 1.0)),
         "translate": Param([-0.1, 0.1], (-0.5, 0.5, 0.01), whole_range=True),
         "scale": Param([0.9, 1.1], (0.25, 4.0, 0.05)), "shear": Param([-10.0, 10.0], (-45.0, 45.0, 1.0))},
        sample=_sample_translation, geometry=_affine_geometry),
    "affine_preset": Operator(
        {"name": Param(list(AFFINE_PRESETS), choices=AFFINE_PRESETS), "shift": Param(4.0, (0.0, 100.0, 1.0)),
         "angle": Param(10.0, (-180.0, 180.0, 1.0))},
        geometry=_preset_geometry),
    "hflip": Operator({}, geometry=_hflip_geometry),
    "crop": Operator(
        {"mode": Param(["random_resized"], choices=CROP_MODES),
         "scale": Param([0.5, 1.0], (0.05, 1.0, 0.05), whole_range=True),
         "ratio": Param([0.75, 1.3333], (0.25, 4.0, 0.05), whole_range=True),
         "size": Param(224, (8, 1024, 8), integer=True, fixed=True)},
        sample=_sample_crop, geometry=_crop_geometry, resizes=True),
    "noise": Operator(
        {"kind": Param(list(NOISE_KINDS), choices=NOISE_KINDS), "amount": Param([0.0, 0.02], (0.0, 0.5, 0.005))},
        sample=_sample_seed, noise=lambda v, shape: noise_field(v["kind"], v["amount"], v["seed"], shape)),
    "color": Operator(
        {"brightness": Param([0.8, 1.2], _JITTER), "contrast": Param([0.8, 1.2], _JITTER),
         "saturation": Param([0.8, 1.2], _JITTER), "hue": Param([-0.05, 0.05], (-0.5, 0.5, 0.01)),
         "gamma": Param([0.8, 1.25], (0.2, 5.0, 0.05))},
        color=_color),
    "resize": Operator({"size": Param(224, (8, 1024, 8), integer=True, fixed=True)}, geometry=_resize_geometry,
                       resizes=True),
}


def default_op(op: str, p: float = 1.0) -> OpSpec:
    return OpSpec(op, p, json.loads(json.dumps(OPERATORS[op].defaults)))


def _validate(spec: PipelineSpec) -> None:
    for op in spec.ops:
        if op.op not in OPERATORS:
            raise SpecError("err_spec_unknown_op", op=op.op, known=", ".join(OPERATORS))
        if not 0 <= op.p <= 1:
            raise SpecError("err_spec_bad_value", op=op.op, param="p", value=op.p)
        params = OPERATORS[op.op].params
        unknown = set(op.params) - set(params)
        if unknown:
            raise SpecError("err_spec_unknown_param", op=op.op, params=", ".join(sorted(unknown)))
        for name, value in op.params.items():
            params[name].check(op.op, name, value)


def sample_batch(spec: PipelineSpec, rng: np.random.Generator, shape: Shape, count: int) -> list[DrawBatch]:
    """Draw every operator's parameters for `count` images of `shape` at once; nothing is applied."""
    batches = []
    for op in spec.ops:
        operator = OPERATORS[op.op]
        params = operator.defaults | op.params
        applied = rng.random(count) < op.p
        values = {name: operator.params[name].sample(value, count, rng) for name, value in params.items()
                  if not operator.params[name].whole_range}
        if operator.sample is not None:
            ranges = {name: value for name, value in params.items() if operator.params[name].whole_range}
            values |= operator.sample(ranges, values, shape, count, rng)
        batches.append(DrawBatch(op.op, applied, values))
        if operator.resizes:
            shape = (int(values["size"]), int(values["size"]), *shape[2:])
    return batches


def sample_params(spec: PipelineSpec, rng: np.random.Generator, shape: Shape) -> list[Draw]:
    """Draw every operator's parameters for one image of `shape`; nothing is applied."""
    return [batch.draw(0) for batch in sample_batch(spec, rng, shape, 1)]


def _apply_pixels(image: np.ndarray, operator: Operator, values: dict[str, Any]) -> np.ndarray:
    if operator.kernel is not None:
        return apply_kernel(image, operator.kernel(values))
    if operator.color is not None:
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        return apply_color_map(image, *operator.color(values, np.array(cv2.mean(rgb)[:3])))
    gain, bias = operator.noise(values, image.shape)
    return np.clip((image.astype(np.float32) / 255.0 * gain + bias) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def apply_params(image: np.ndarray, draws: list[Draw]) -> np.ndarray:
    """Apply drawn parameters in order; deterministic. Runs of geometric operators are
    composed into one matrix and resampled once; a pixel operator ends a run whether or not its
    draw ran (as in training, where other images of the batch may have run it)."""
    matrix, size = np.eye(3), image.shape[:2]

    def resampled(image: np.ndarray) -> np.ndarray:
        moved = not np.array_equal(matrix, np.eye(3)) or size != image.shape[:2]
        return warp(image, matrix, size) if moved else image

    for draw in draws:
        operator = OPERATORS[draw.op]
        if operator.geometry is not None:
            step, size = geometry_of(DrawBatch.of([draw]), (*size, *image.shape[2:]))
            matrix = step[0] @ matrix
        else:
            image, matrix = resampled(image), np.eye(3)
            if draw.applied:
                image = _apply_pixels(image, operator, draw.values)
    return resampled(image)



def augment(image: np.ndarray, spec: PipelineSpec, rng: np.random.Generator) -> tuple[np.ndarray, list[Draw]]:
    draws = sample_params(spec, rng, image.shape)
    return apply_params(image, draws), draws


def augment_many(image: np.ndarray, spec: PipelineSpec, count: int, seed: int) -> list[tuple[np.ndarray, list[Draw]]]:
    """`count` independent draws, reproducible from `seed`: the parameters `augment_batch` draws
    for a batch of `count` from the same seed, applied in parallel (OpenCV releases the GIL)."""
    batches = sample_batch(spec, np.random.default_rng(seed), image.shape, count)
    draws = [[batch.draw(index) for batch in batches] for index in range(count)]
    images = list(_POOL.map(lambda d: apply_params(image, d), draws))
    return list(zip(images, draws))


def spec_to_dict(spec: PipelineSpec) -> dict[str, Any]:
    return {"version": spec.version, "ops": [{"op": o.op, "p": o.p, "params": o.params} for o in spec.ops]}


def spec_to_json(spec: PipelineSpec) -> str:
    return json.dumps(spec_to_dict(spec), indent=2, ensure_ascii=False)


def _op_code(op: dict[str, Any], width: int = 88) -> str:
    """One `OpSpec(...)` line of `spec_to_python`, or one line per parameter where that would be too long."""
    line = f"    aug.OpSpec({op['op']!r}, p={op['p']!r}, params={op['params']!r}),\n"
    if len(line) <= width + 1:
        return line
    params = "".join(f"        {name!r}: {value!r},\n" for name, value in op["params"].items())
    return f"    aug.OpSpec({op['op']!r}, p={op['p']!r}, params={{\n{params}    }}),\n"


def spec_to_python(spec: PipelineSpec, count: int = 8, seed: int = 0, max_side: int = 512) -> str:
    """The pipeline as a Python script that calls this module: `SPEC`, and `augmented(image)`, which gives
    the `count` draws from `seed` that the preview shows. Run as a script, it writes the draws of a photo
    as PNG files. Values are written from the spec's JSON, so the code and the JSON always agree."""
    ops = "".join(_op_code(op) for op in json.loads(spec_to_json(spec))["ops"])
    return f'''"""An augmentation pipeline from the Augmentation page. Save this file in the app's folder and run
python augmentation.py photo.jpg"""
import sys
from pathlib import Path

from core import augment as aug
from core.images import decode_image, encode_png

SPEC = aug.PipelineSpec((
{ops}))


def augmented(image, count={count}, seed={seed}):
    """(augmented image, what each operator drew) for `count` draws from `seed`, as the page shows them."""
    return aug.augment_many(image, SPEC, count, seed)


if __name__ == "__main__":
    photo = decode_image(Path(sys.argv[1]).read_bytes(), max_side={max_side})
    for number, (image, draws) in enumerate(augmented(photo), start=1):
        Path(f"draw_{{number}}.png").write_bytes(encode_png(image))
        print(f"draw_{{number}}.png", [{{"op": d.op, "applied": d.applied, **d.values}} for d in draws])
'''


def spec_from_dict(data: Any) -> PipelineSpec:
    if not isinstance(data, dict) or not isinstance(data.get("ops"), list):
        raise SpecError("err_spec_not_pipeline")
    if data.get("version", 1) != 1:
        raise SpecError("err_spec_version", version=data.get("version"))
    ops = []
    for item in data["ops"]:
        if not isinstance(item, dict) or "op" not in item:
            raise SpecError("err_spec_not_pipeline")
        params = item.get("params", {})
        p = item.get("p", 1.0)
        if not isinstance(params, dict) or not isinstance(p, (int, float)) or isinstance(p, bool):
            raise SpecError("err_spec_not_pipeline")
        ops.append(OpSpec(str(item["op"]), float(p), params))
    spec = PipelineSpec(tuple(ops))
    _validate(spec)
    return spec


def spec_from_json(text: str | bytes) -> PipelineSpec:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise SpecError("err_spec_not_json") from None
    except RecursionError:
        raise SpecError("err_spec_too_deep") from None
    return spec_from_dict(data)


def default_pipeline() -> PipelineSpec:
    """The bench pipeline and the page's starting point: motion blur, affine, colour, crop to 224."""
    return PipelineSpec((
        default_op("motion_blur", 0.5),
        default_op("affine"),
        default_op("color"),
        default_op("crop"),
    ))
