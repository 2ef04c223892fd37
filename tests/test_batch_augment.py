"""core.batch_augment (torch, whole batches) against core.augment.apply_params (OpenCV, one image).

Both are given the same draws. Where no resampling happens (flips, integer crops, filters)
they agree to the grey level; bilinear resampling and colour rounding differ by a level or
two. OpenCV reflects borders with BORDER_REFLECT_101 and grid_sample with plain reflection,
so geometric comparisons ignore output pixels whose source lies outside the image.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from core import augment as aug
from core.batch_augment import apply_batch, augment_batch

Draw = aug.Draw


def smooth_rgb(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """An RGB image with structure everywhere but no one-pixel jumps (bilinear rounding stays small)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(float)
    image = np.stack([128 + 100 * np.sin(x / 7.0 + y / 11.0), 128 + 90 * np.cos(y / 6.0), (x * 3 + y * 2) % 200 + 20],
                     axis=2)
    image = cv2.GaussianBlur(image, (0, 0), 1.0) + rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


RGB = smooth_rgb()
GREY = cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)
IMAGES = pytest.mark.parametrize("image", [RGB, GREY], ids=["rgb", "grey"])


def to_batch(images: list[np.ndarray]) -> torch.Tensor:
    return torch.stack([torch.from_numpy(i if i.ndim == 3 else i[..., None]).permute(2, 0, 1) for i in images]).float()


def from_batch(batch: torch.Tensor, index: int, grey: bool) -> np.ndarray:
    image = batch[index].permute(1, 2, 0).numpy()
    return image[..., 0] if grey else image


def both(image: np.ndarray, draws: list[Draw]) -> tuple[np.ndarray, np.ndarray]:
    """(OpenCV result, torch result rounded to grey levels), as floats."""
    reference = aug.apply_params(image, draws).astype(np.float64)
    ours = np.rint(from_batch(apply_batch(to_batch([image]), aug.stack_draws([draws])), 0, image.ndim == 2))
    ours = ours.astype(np.float64)
    assert ours.shape == reference.shape
    return reference, ours


def inside_source(draws: list[Draw], in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                  margin: float = 1.5) -> np.ndarray:
    """Output pixels whose source point (through all geometric draws) is `margin` inside the input."""
    matrix, size = np.eye(3), in_shape[:2]
    for draw in draws:
        if draw.applied and aug.OPERATORS[draw.op].geometry is not None:
            step, size = aug.OPERATORS[draw.op].geometry((*size, 3), draw.values)
            matrix = step @ matrix
    ys, xs = np.mgrid[0:out_shape[0], 0:out_shape[1]]
    source = np.linalg.inv(matrix) @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    height, width = in_shape[:2]
    inside = ((source[0] >= margin) & (source[0] <= width - 1 - margin)
              & (source[1] >= margin) & (source[1] <= height - 1 - margin))
    return inside.reshape(out_shape[:2])


# --------------------------------------------------------------------------- exact


@IMAGES
def test_hflip_is_exact(image):
    reference, ours = both(image, [Draw("hflip", True, {})])
    np.testing.assert_array_equal(ours, reference)
    np.testing.assert_array_equal(reference, image[:, ::-1])


@IMAGES
def test_crop_without_resampling_is_exact(image):
    draws = [Draw("crop", True, {"mode": "center", "size": 32, "box": [10, 5, 32, 32]})]
    reference, ours = both(image, draws)
    assert ours.shape[:2] == (32, 32)
    np.testing.assert_array_equal(ours, reference)
    np.testing.assert_array_equal(reference, image[5:37, 10:42])


@IMAGES
def test_flip_then_crop_composed_is_exact(image):
    draws = [Draw("hflip", True, {}), Draw("crop", True, {"mode": "top_left", "size": 20, "box": [3, 7, 20, 20]})]
    reference, ours = both(image, draws)
    np.testing.assert_array_equal(ours, reference)


# --------------------------------------------------------------------------- filters and colour


@IMAGES
@pytest.mark.parametrize("draw", [
    Draw("motion_blur", True, {"length": 7, "angle": 33.0}),
    Draw("motion_blur", True, {"length": 4, "angle": 90.0}),
    Draw("gaussian_blur", True, {"hsize": 5, "sigma": 1.0}),
    Draw("gaussian_blur", True, {"hsize": 4, "sigma": 1.2}),  # even kernel: the anchor must match OpenCV's
    Draw("filter_preset", True, {"name": "F2"}),
    Draw("filter_preset", True, {"name": "F5"}),
], ids=["motion7", "motion4", "gauss5", "gauss4", "F2", "F5"])
def test_filters_within_one_grey_level(image, draw):
    reference, ours = both(image, [draw])
    assert np.abs(ours - reference).max() <= 1
    assert np.abs(reference - image).max() > 3  # the filter did something


@IMAGES
def test_color_within_one_grey_level(image):
    draw = Draw("color", True, {"brightness": 1.2, "contrast": 0.8, "saturation": 1.2, "hue": 0.03, "gamma": 1.3})
    reference, ours = both(image, [draw])
    difference = np.abs(ours - reference)
    assert difference.max() <= 1
    assert difference.mean() < 0.5
    assert np.abs(reference - image).mean() > 5


def test_filters_per_image_in_one_batch():
    """Every image gets its own kernel (of its own size); a draw that did not run leaves the image alone."""
    images = [RGB, smooth_rgb(seed=1), smooth_rgb(seed=2)]
    draws = [[Draw("motion_blur", True, {"length": 9, "angle": 10.0})],
             [Draw("motion_blur", False, {"length": 3, "angle": 80.0})],
             [Draw("motion_blur", True, {"length": 3, "angle": 80.0})]]
    out = apply_batch(to_batch(images), aug.stack_draws(draws))
    for index, (image, image_draws) in enumerate(zip(images, draws)):
        reference = aug.apply_params(image, image_draws).astype(float)
        assert np.abs(np.rint(from_batch(out, index, False)) - reference).max() <= 1, index
    np.testing.assert_array_equal(from_batch(out, 1, False), images[1])


# --------------------------------------------------------------------------- resampling


@IMAGES
def test_affine_interior_within_two_grey_levels(image):
    draws = [Draw("affine", True, {"rotation": 12.0, "translate_x": 0.05, "translate_y": -0.04, "scale": 1.05,
                                   "shear": 6.0})]
    reference, ours = both(image, draws)
    inside = inside_source(draws, image.shape, reference.shape)
    assert inside.mean() > 0.7
    assert np.abs(ours - reference)[inside].max() <= 2
    assert np.abs(reference - image).mean() > 5


@IMAGES
def test_crop_with_resize_within_one_grey_level(image):
    draws = [Draw("crop", True, {"mode": "center", "size": 24, "box": [10, 5, 40, 30]})]
    reference, ours = both(image, draws)
    assert ours.shape[:2] == (24, 24)
    assert np.abs(ours - reference).max() <= 1


@IMAGES
def test_four_operator_pipeline(image):
    spec = aug.PipelineSpec((
        aug.default_op("motion_blur", 1.0),
        aug.default_op("affine"),
        aug.default_op("color"),
        aug.OpSpec("crop", 1.0, {"mode": ["random_resized"], "scale": [0.6, 1.0], "ratio": [0.8, 1.25], "size": 40}),
    ))
    rng = np.random.default_rng(3)
    for _ in range(8):
        draws = aug.sample_params(spec, rng, image.shape)
        reference, ours = both(image, draws)
        assert ours.shape[:2] == (40, 40)
        inside = inside_source(draws, image.shape, reference.shape, margin=2.5)
        difference = np.abs(ours - reference)[inside]
        assert difference.max() <= 3, draws
        assert difference.mean() < 0.75, draws


def test_unapplied_crop_still_resizes_to_keep_one_batch_size():
    """A crop that did not run for an image resizes it (a 'resize' draw), so the batch has one size."""
    crop_values = {"mode": "center", "size": 40, "box": [8, 0, 48, 48]}
    draws = [[Draw("crop", True, crop_values)], [Draw("crop", False, crop_values)]]
    out = apply_batch(to_batch([RGB, RGB]), aug.stack_draws(draws))
    assert out.shape == (2, 3, 40, 40)
    resized = aug.apply_params(RGB, [Draw("resize", True, {"size": 40})]).astype(float)
    assert np.abs(np.rint(from_batch(out, 1, False)) - resized).max() <= 1
    cropped = aug.apply_params(RGB, draws[0]).astype(float)
    assert np.abs(np.rint(from_batch(out, 0, False)) - cropped).max() <= 1


def test_strong_shrink_matches_the_preview():
    """Both halve a strong shrink with the same Gaussian pyramid first, so neither aliases."""
    draws = [Draw("resize", True, {"size": 20})]  # 48x64 -> 20x20: scale 0.36
    reference, ours = both(RGB, draws)
    assert np.abs(ours - reference).max() <= 2


def test_augment_batch_output_follows_the_crop_size():
    spec = aug.PipelineSpec((aug.default_op("hflip", 0.5),
                             aug.OpSpec("crop", 0.5, {"mode": ["random_resized"], "scale": [0.5, 1.0],
                                                      "ratio": [0.75, 1.33], "size": 32})))
    batch = torch.from_numpy(np.stack([GREY[None]] * 6))
    assert batch.dtype == torch.uint8
    out = augment_batch(batch, spec, np.random.default_rng(0))
    assert out.shape == (6, 1, 32, 32) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 255


def test_augment_batch_with_no_ops_is_identity():
    batch = torch.from_numpy(np.stack([RGB.transpose(2, 0, 1)] * 2))
    out = augment_batch(batch, aug.PipelineSpec(()), np.random.default_rng(0))
    torch.testing.assert_close(out, batch.float())


@IMAGES
@pytest.mark.parametrize("kind,amount", [("gaussian", 0.01), ("salt_pepper", 0.1), ("speckle", 0.02)])
def test_noise_is_the_previews_noise(image, kind, amount):
    """One numpy generator a seed draws the noise field for both, so the pixels are the same."""
    draw = Draw("noise", True, {"kind": kind, "amount": amount, "seed": 7})
    reference, ours = both(image, [draw])
    np.testing.assert_array_equal(ours, reference)
    assert np.abs(reference - image).mean() > 2


TOLERANCE = {  # grey levels, and why
    "kernel": 1,  # cv2.filter2D rounds to uint8, the torch convolution does not
    "color": 0,  # both run the colour map in float32 and round where the preview's uint8 steps round; a hue
    # rotation can still differ by one level (test_color_within_one_grey_level)
    "noise": 0,  # one numpy noise field
    "geometry": 2,  # cv2.warpAffine quantises coordinates to 1/32 pixel; grid_sample does not
}


def family(op: str) -> str:
    operator = aug.OPERATORS[op]
    return next(name for name in TOLERANCE if getattr(operator, name) is not None)


@IMAGES
@pytest.mark.parametrize("op", list(aug.OPERATORS))
def test_every_operator_draws_the_previews_pixels(image, op):
    """Each operator record, drawn from its defaults, gives the preview's pixels in a batch too
    (geometric ones inside the image: the two reflect borders differently)."""
    spec = aug.PipelineSpec((aug.default_op(op),))
    rng = np.random.default_rng(5)
    for _ in range(4):
        draws = aug.sample_params(spec, rng, image.shape)
        reference, ours = both(image, draws)
        inside = inside_source(draws, image.shape, reference.shape)
        assert inside.mean() > 0.3, draws
        assert np.abs(ours - reference)[inside].max() <= TOLERANCE[family(op)], draws


def test_the_same_seed_draws_the_same_pixels_as_the_preview():
    """augment_many (the preview) and augment_batch (training) from one seed: the same draws, the same pixels."""
    spec = aug.PipelineSpec((aug.default_op("motion_blur", 0.5), aug.default_op("noise", 0.5),
                             aug.default_op("affine"), aug.default_op("color", 0.8),
                             aug.OpSpec("crop", 0.7, {"mode": ["random_resized", "center"], "scale": [0.6, 1.0],
                                                      "ratio": [0.8, 1.25], "size": 40})))
    preview = aug.augment_many(RGB, spec, 6, seed=21)
    batch = augment_batch(torch.from_numpy(np.stack([RGB.transpose(2, 0, 1)] * 6)), spec, np.random.default_rng(21))
    assert batch.shape == (6, 3, 40, 40)
    for index, (reference, draws) in enumerate(preview):
        ours = np.rint(from_batch(batch, index, False))
        inside = inside_source(draws, RGB.shape, reference.shape, margin=2.5)
        difference = np.abs(ours - reference.astype(float))[inside]
        assert difference.max() <= 3 and difference.mean() < 0.75, draws


def test_batch_sampling_is_one_array_an_operator():
    spec = aug.PipelineSpec((aug.default_op("affine", 0.5), aug.default_op("crop"), aug.default_op("noise")))
    batches = aug.sample_batch(spec, np.random.default_rng(0), (48, 64, 3), 32)
    affine, crop, noise = batches
    assert affine.applied.shape == (32,) and 0 < affine.applied.sum() < 32
    assert affine.values["rotation"].shape == (32,) and crop.values["box"].shape == (32, 4)
    assert crop.values["size"] == 224 and noise.values["seed"].shape == (32,)
    assert len(np.unique(affine.values["translate_x"])) == 32
    # a batch draw is a list of plain per-image draws, and back
    draws = [[b.draw(i) for b in batches] for i in range(32)]
    restacked = aug.stack_draws(draws)
    np.testing.assert_array_equal(restacked[1].values["box"], crop.values["box"])


def test_an_image_whose_pixel_draw_did_not_run_is_resampled_as_in_the_preview():
    """affine -> colour -> crop with colour run for one image of two: a pixel operator ends the geometric
    run in both executors, whether or not its own draw ran."""
    textured = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    ran = [Draw("affine", True, {"rotation": 12.0, "translate_x": 0.05, "translate_y": -0.04, "scale": 1.1, "shear": 4.0}),
           Draw("color", True, {"brightness": 1.2, "contrast": 0.9, "saturation": 1.0, "hue": 0.0, "gamma": 1.1})]
    skipped = [ran[0], Draw("color", False, ran[1].values)]
    crop = Draw("crop", True, {"box": [4, 4, 40, 36], "size": 32})
    draws = [ran + [crop], skipped + [crop]]
    batch = apply_batch(to_batch([textured, textured]), aug.stack_draws(draws))
    for index, image_draws in enumerate(draws):
        reference = aug.apply_params(textured, image_draws).astype(np.float64)
        ours = np.rint(from_batch(batch, index, False))
        inside = inside_source(image_draws, textured.shape, reference.shape, margin=2.5)
        assert np.abs(ours - reference)[inside].max() <= TOLERANCE["geometry"] + 1, index
