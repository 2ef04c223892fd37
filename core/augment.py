"""Data augmentation as in the lecture, with pipelines that are data.

The lecture's operators are here once: MATLAB `fspecial` kernels, its `maketform('affine')`
presets, crops, noise, colour changes and normalization. A pipeline is a `PipelineSpec`
that serialises to JSON. Drawing random parameters (`sample_params`) is kept apart from
applying them (`apply_params`), so the preview page, the zip augmenter, training and the
tests all run the same code and any draw can be reproduced from its parameters.
"""
from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

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


def affine_matrix(shape: tuple[int, ...], rotation: float = 0.0, translate: tuple[float, float] = (0.0, 0.0),
                  scale: float = 1.0, shear: float = 0.0) -> np.ndarray:
    """2x3 matrix: rotate/scale/shear about the image centre, then shift by a fraction of the size."""
    height, width = shape[:2]
    cx, cy = (width - 1) / 2, (height - 1) / 2
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    linear = scale * np.array([[c, -s], [s, c]]) @ np.array([[1, math.tan(math.radians(shear))], [0, 1]])
    offset = np.array([cx, cy]) - linear @ np.array([cx, cy]) + np.array([translate[0] * width, translate[1] * height])
    return np.hstack([linear, offset[:, None]])


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


def random_resized_box(shape: tuple[int, ...], rng: np.random.Generator, scale: tuple[float, float],
                       ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """A box covering `scale` of the area with aspect `ratio` (w/h), as in Inception training."""
    height, width = shape[:2]
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side, side


# --------------------------------------------------------------------------- noise (imnoise)


def add_noise(image: np.ndarray, kind: str, amount: float, seed: int) -> np.ndarray:
    """MATLAB `imnoise` on [0, 1] intensities: 'gaussian' variance, 'salt_pepper' density,
    'speckle' variance (J = I + n*I, n uniform with mean 0)."""
    rng = np.random.default_rng(seed)
    values = image.astype(np.float32) / 255.0
    if kind == "gaussian":
        values = values + rng.standard_normal(values.shape, dtype=np.float32) * math.sqrt(amount)
    elif kind == "speckle":
        values = values + values * ((rng.random(values.shape, dtype=np.float32) - 0.5) * math.sqrt(12 * amount))
    elif kind == "salt_pepper":
        draw = rng.random(values.shape[:2], dtype=np.float32)
        values = values.copy()
        values[draw < amount / 2] = 0.0
        values[(draw >= amount / 2) & (draw < amount)] = 1.0
    else:
        raise ValueError(f"unknown noise kind {kind!r}")
    return np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- colour

LUMA = np.array([0.299, 0.587, 0.114])
_HUE_LUMA = np.array([0.213, 0.715, 0.072])


def _hue_rotation(turns: float) -> np.ndarray:
    """Rotation of RGB about the grey axis by `turns` of a full circle (SVG's feHueRotate)."""
    angle = 2 * math.pi * turns
    c, s = math.cos(angle), math.sin(angle)
    w = _HUE_LUMA
    return (
        np.outer(np.ones(3), w)
        + c * (np.eye(3) - np.outer(np.ones(3), w))
        + s * np.array([[-w[0], -w[1], 1 - w[2]], [0.143, 0.140, -0.283], [-(1 - w[0]), w[1], w[2]]])
    )


def color_matrix(mean_rgb: np.ndarray, brightness: float = 1.0, contrast: float = 1.0,
                 saturation: float = 1.0, hue: float = 0.0) -> np.ndarray:
    """One 3x4 affine colour map: brightness, then contrast about the mean grey, then
    saturation towards grey, then hue rotation (in turns)."""
    linear = brightness * np.eye(3)
    offset = np.zeros(3)
    mean_grey = float(LUMA @ (linear @ np.asarray(mean_rgb, dtype=float)))
    linear, offset = contrast * linear, contrast * offset + (1 - contrast) * mean_grey
    to_grey = saturation * np.eye(3) + (1 - saturation) * np.outer(np.ones(3), LUMA)
    linear, offset = to_grey @ linear, to_grey @ offset
    rotate = _hue_rotation(hue)
    linear, offset = rotate @ linear, rotate @ offset
    return np.hstack([linear, offset[:, None]])


def adjust_color(image: np.ndarray, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0,
                 hue: float = 0.0, gamma: float = 1.0) -> np.ndarray:
    """Colour jitter in one pass over the pixels, plus a gamma lookup table."""
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    mean_rgb = np.array(cv2.mean(rgb)[:3])
    out = cv2.transform(rgb, color_matrix(mean_rgb, brightness, contrast, saturation, hue))
    if image.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    if gamma != 1.0:
        table = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
        out = cv2.LUT(out, table)
    return out


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
    """What one operator drew for one image: whether it ran and with which values."""

    op: str
    applied: bool
    values: dict[str, Any]


Geometry = Callable[[tuple[int, ...], dict[str, Any]], tuple[np.ndarray, tuple[int, int]]]


@dataclass(frozen=True)
class OperatorDef:
    """An operator either changes pixels (`apply`) or moves them (`geometry`: a 3x3 matrix
    from input to output pixel coordinates, and the output (height, width)). Consecutive
    geometric operators are composed and resampled once."""

    defaults: dict[str, Any]
    integer: tuple[str, ...] = ()
    apply: Callable[[np.ndarray, dict[str, Any]], np.ndarray] | None = None
    geometry: Geometry | None = None
    extra_draw: Callable[[dict[str, Any], tuple[int, ...], np.random.Generator], dict[str, Any]] | None = None


def _as3x3(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([matrix[:2], [0.0, 0.0, 1.0]])


def _box_to_size(box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Pixel-centre-exact map of a (left, top, width, height) box onto a (height, width) grid."""
    left, top, width, height = box
    sx, sy = size[1] / width, size[0] / height
    return np.array([[sx, 0, (0.5 - left) * sx - 0.5], [0, sy, (0.5 - top) * sy - 0.5], [0, 0, 1]])


def _crop_geometry(shape: tuple[int, ...], values: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int]]:
    size = (int(values["size"]), int(values["size"]))
    return _box_to_size(tuple(values["box"]), size), size


def _resize_geometry(shape: tuple[int, ...], values: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int]]:
    size = (int(values["size"]), int(values["size"]))
    return _box_to_size((0, 0, shape[1], shape[0]), size), size


def _affine_geometry(shape: tuple[int, ...], values: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int]]:
    matrix = affine_matrix(shape, values["rotation"], (values["translate_x"], values["translate_y"]),
                           values["scale"], values["shear"])
    return _as3x3(matrix), shape[:2]


def _preset_geometry(shape: tuple[int, ...], values: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int]]:
    tform = affine_presets(shape[1], shape[0], values["shift"], values["angle"])[values["name"]]
    return _as3x3(matlab_to_opencv(tform)), shape[:2]


def _hflip_geometry(shape: tuple[int, ...], values: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int]]:
    return np.array([[-1.0, 0, shape[1] - 1], [0, 1, 0], [0, 0, 1]]), shape[:2]


def warp(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample once through a 3x3 affine `matrix` into a (height, width) grid.

    A strong shrink is first halved with Gaussian pyramids, so the result does not alias."""
    while math.sqrt(abs(np.linalg.det(matrix[:2, :2]))) < 0.5 and min(image.shape[:2]) >= 2:
        height, width = image.shape[:2]
        image = cv2.pyrDown(image)
        matrix = matrix @ np.linalg.inv(_box_to_size((0, 0, width, height), image.shape[:2]))
    return cv2.warpAffine(image, matrix[:2], (size[1], size[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def _draw_crop(values: dict[str, Any], shape: tuple[int, ...], rng: np.random.Generator) -> dict[str, Any]:
    height, width = shape[:2]
    if values["mode"] == "random_resized":
        box = random_resized_box(shape, rng, tuple(values.pop("scale")), tuple(values.pop("ratio")))
    else:
        area = rng.uniform(*values.pop("scale"))
        values.pop("ratio")
        side = max(1, int(round(min(height, width) * math.sqrt(area))))
        box = _corner_box(values["mode"], width, height, side)
    return values | {"box": list(box)}


def _corner_box(mode: str, width: int, height: int, side: int) -> tuple[int, int, int, int]:
    lefts = {"center": (width - side) // 2, "top_left": 0, "top_right": width - side,
             "bottom_left": 0, "bottom_right": width - side}
    tops = {"center": (height - side) // 2, "top_left": 0, "top_right": 0,
            "bottom_left": height - side, "bottom_right": height - side}
    if mode not in lefts:
        raise SpecError("err_spec_bad_value", op="crop", param="mode", value=mode)
    return lefts[mode], tops[mode], side, side


def _draw_affine(values: dict[str, Any], shape: tuple[int, ...], rng: np.random.Generator) -> dict[str, Any]:
    low, high = values.pop("translate")
    return values | {"translate_x": float(rng.uniform(low, high)), "translate_y": float(rng.uniform(low, high))}


def _draw_seed(values: dict[str, Any], shape: tuple[int, ...], rng: np.random.Generator) -> dict[str, Any]:
    return values | {"seed": int(rng.integers(0, 2**31 - 1))}


OPERATORS: dict[str, OperatorDef] = {
    "filter_preset": OperatorDef(
        {"name": list(FILTER_PRESETS)},
        apply=lambda img, v: apply_kernel(img, preset_kernel(v["name"]))),
    "motion_blur": OperatorDef(
        {"length": [3, 9], "angle": [0.0, 180.0]}, ("length",),
        apply=lambda img, v: apply_kernel(img, fspecial("motion", v["length"], v["angle"]))),
    "gaussian_blur": OperatorDef(
        {"hsize": [3, 7], "sigma": [0.5, 1.5]}, ("hsize",),
        apply=lambda img, v: apply_kernel(img, fspecial("gaussian", v["hsize"], v["sigma"]))),
    "affine": OperatorDef(
        {"rotation": [-15.0, 15.0], "translate": [-0.1, 0.1], "scale": [0.9, 1.1], "shear": [-10.0, 10.0]},
        geometry=_affine_geometry, extra_draw=_draw_affine),
    "affine_preset": OperatorDef(
        {"name": ["t1", "t2", "t3", "t4", "t5", "t6", "t7"], "shift": 4.0, "angle": 10.0},
        geometry=_preset_geometry),
    "hflip": OperatorDef({}, geometry=_hflip_geometry),
    "crop": OperatorDef(
        {"mode": ["random_resized"], "scale": [0.5, 1.0], "ratio": [0.75, 1.3333], "size": 224}, ("size",),
        geometry=_crop_geometry, extra_draw=_draw_crop),
    "noise": OperatorDef(
        {"kind": ["gaussian", "salt_pepper", "speckle"], "amount": [0.0, 0.02]},
        apply=lambda img, v: add_noise(img, v["kind"], v["amount"], v["seed"]), extra_draw=_draw_seed),
    "color": OperatorDef(
        {"brightness": [0.8, 1.2], "contrast": [0.8, 1.2], "saturation": [0.8, 1.2], "hue": [-0.05, 0.05],
         "gamma": [0.8, 1.25]},
        apply=lambda img, v: adjust_color(img, v["brightness"], v["contrast"], v["saturation"], v["hue"], v["gamma"])),
    "resize": OperatorDef({"size": 224}, ("size",), geometry=_resize_geometry),
}

# The widest values each numeric parameter may take: (minimum, maximum, step). Specs are
# checked against these, and the page builds its sliders from them.
PARAM_LIMITS: dict[tuple[str, str], tuple[float, float, float]] = {
    ("motion_blur", "length"): (1, 31, 1),
    ("motion_blur", "angle"): (0.0, 180.0, 1.0),
    ("gaussian_blur", "hsize"): (1, 31, 1),
    ("gaussian_blur", "sigma"): (0.1, 10.0, 0.1),
    ("affine", "rotation"): (-180.0, 180.0, 1.0),
    ("affine", "translate"): (-0.5, 0.5, 0.01),
    ("affine", "scale"): (0.25, 4.0, 0.05),
    ("affine", "shear"): (-45.0, 45.0, 1.0),
    ("affine_preset", "shift"): (0.0, 100.0, 1.0),
    ("affine_preset", "angle"): (-180.0, 180.0, 1.0),
    ("crop", "scale"): (0.05, 1.0, 0.05),
    ("crop", "ratio"): (0.25, 4.0, 0.05),
    ("crop", "size"): (8, 1024, 8),
    ("noise", "amount"): (0.0, 0.5, 0.005),
    ("color", "brightness"): (0.0, 3.0, 0.05),
    ("color", "contrast"): (0.0, 3.0, 0.05),
    ("color", "saturation"): (0.0, 3.0, 0.05),
    ("color", "hue"): (-0.5, 0.5, 0.01),
    ("color", "gamma"): (0.2, 5.0, 0.05),
    ("resize", "size"): (8, 1024, 8),
}

# Choices a categorical parameter may take.
PARAM_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("filter_preset", "name"): tuple(FILTER_PRESETS),
    ("affine_preset", "name"): ("t1", "t2", "t3", "t4", "t5", "t6", "t7"),
    ("crop", "mode"): ("random_resized", "center", "top_left", "top_right", "bottom_left", "bottom_right"),
    ("noise", "kind"): ("gaussian", "salt_pepper", "speckle"),
}

# Parameters that an operator draws by itself from the whole range (not a uniform value).
_RANGE_PARAMS = {"crop": ("scale", "ratio"), "affine": ("translate",)}


def default_op(op: str, p: float = 1.0) -> OpSpec:
    return OpSpec(op, p, json.loads(json.dumps(OPERATORS[op].defaults)))


def _validate(spec: PipelineSpec) -> None:
    for op in spec.ops:
        if op.op not in OPERATORS:
            raise SpecError("err_spec_unknown_op", op=op.op, known=", ".join(OPERATORS))
        if not 0 <= op.p <= 1:
            raise SpecError("err_spec_bad_value", op=op.op, param="p", value=op.p)
        expected = set(OPERATORS[op.op].defaults)
        unknown = set(op.params) - expected
        if unknown:
            raise SpecError("err_spec_unknown_param", op=op.op, params=", ".join(sorted(unknown)))
        for name, value in op.params.items():
            _validate_value(op.op, name, value)


def _validate_value(op: str, name: str, value: Any) -> None:
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(v, bool) for v in values):
        raise SpecError("err_spec_bad_value", op=op, param=name, value=value)
    if (op, name) in PARAM_CHOICES:
        if not all(v in PARAM_CHOICES[op, name] for v in values):
            raise SpecError("err_spec_bad_value", op=op, param=name, value=value)
        return
    low, high, _ = PARAM_LIMITS[op, name]
    if name == "size" and isinstance(value, list):  # one output size, so a training batch keeps one shape
        raise SpecError("err_spec_bad_value", op=op, param=name, value=value)
    if (isinstance(value, list) and len(value) != 2) or (name in _RANGE_PARAMS.get(op, ()) and not isinstance(value, list)):
        raise SpecError("err_spec_bad_value", op=op, param=name, value=value)
    if not all(isinstance(v, (int, float)) and low <= v <= high for v in values):
        raise SpecError("err_spec_bad_value", op=op, param=name, value=value)
    if len(values) == 2 and isinstance(value, list) and values[0] > values[1]:
        raise SpecError("err_spec_bad_value", op=op, param=name, value=value)


def _draw_value(value: Any, integer: bool, rng: np.random.Generator) -> Any:
    """A list of strings is a choice; two numbers are a uniform range; a scalar is fixed."""
    if isinstance(value, list) and isinstance(value[0], str):
        return value[int(rng.integers(0, len(value)))]
    if isinstance(value, list):
        low, high = value
        return int(rng.integers(int(low), int(high) + 1)) if integer else float(rng.uniform(low, high))
    return int(value) if integer else value


def sample_params(spec: PipelineSpec, rng: np.random.Generator, shape: tuple[int, ...]) -> list[Draw]:
    """Draw every operator's parameters for one image of `shape`; nothing is applied."""
    draws = []
    for op in spec.ops:
        definition = OPERATORS[op.op]
        params = definition.defaults | op.params
        applied = bool(rng.random() < op.p)
        keep_whole = _RANGE_PARAMS.get(op.op, ())
        values = {name: (list(value) if name in keep_whole else _draw_value(value, name in definition.integer, rng))
                  for name, value in params.items()}
        if definition.extra_draw is not None:
            values = definition.extra_draw(values, shape, rng)
        draws.append(Draw(op.op, applied, values))
        if applied and op.op in ("crop", "resize"):
            size = int(values["size"])
            shape = (size, size, *shape[2:])
    return draws


def apply_params(image: np.ndarray, draws: list[Draw]) -> np.ndarray:
    """Apply drawn parameters in order; deterministic. Runs of geometric operators are
    composed into one matrix and resampled once."""
    matrix, size = np.eye(3), image.shape[:2]
    for draw in draws:
        if not draw.applied:
            continue
        definition = OPERATORS[draw.op]
        if definition.geometry is not None:
            step, size = definition.geometry((*size, *image.shape[2:]), draw.values)
            matrix = step @ matrix
            continue
        if not np.array_equal(matrix, np.eye(3)) or size != image.shape[:2]:
            image, matrix = warp(image, matrix, size), np.eye(3)
        image = definition.apply(image, draw.values)
    if not np.array_equal(matrix, np.eye(3)) or size != image.shape[:2]:
        image = warp(image, matrix, size)
    return image


def augment(image: np.ndarray, spec: PipelineSpec, rng: np.random.Generator) -> tuple[np.ndarray, list[Draw]]:
    draws = sample_params(spec, rng, image.shape)
    return apply_params(image, draws), draws


def augment_many(image: np.ndarray, spec: PipelineSpec, count: int, seed: int) -> list[tuple[np.ndarray, list[Draw]]]:
    """`count` independent draws, reproducible from `seed`. Parameters are drawn in order,
    then applied in parallel (OpenCV releases the GIL)."""
    rng = np.random.default_rng(seed)
    draws = [sample_params(spec, rng, image.shape) for _ in range(count)]
    images = list(_POOL.map(lambda d: apply_params(image, d), draws))
    return list(zip(images, draws))


def spec_to_dict(spec: PipelineSpec) -> dict[str, Any]:
    return {"version": spec.version, "ops": [{"op": o.op, "p": o.p, "params": o.params} for o in spec.ops]}


def spec_to_json(spec: PipelineSpec) -> str:
    return json.dumps(spec_to_dict(spec), indent=2, ensure_ascii=False)


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
