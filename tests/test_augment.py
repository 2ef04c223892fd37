"""Tests for core.augment: MATLAB kernels, affine presets, crops, noise, colour and pipelines."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core import augment as A
from core.augment import (
    FILTER_PRESETS,
    OPERATORS,
    Draw,
    OpSpec,
    PipelineSpec,
    add_noise,
    adjust_color,
    affine_presets,
    apply_kernel,
    apply_params,
    augment_many,
    default_op,
    default_pipeline,
    five_crops,
    fspecial,
    matlab_to_opencv,
    preset_kernel,
    random_resized_box,
    rotation_translation,
    sample_params,
    spec_from_dict,
    spec_from_json,
    spec_to_json,
    ten_crops,
)
from core.errors import SpecError, UserError

# --------------------------------------------------------------------------- fspecial golden values (MATLAB)


def test_disk_radius_1_matches_matlab():
    expected = np.array([[0.0251, 0.1453, 0.0251], [0.1453, 0.3183, 0.1453], [0.0251, 0.1453, 0.0251]])
    np.testing.assert_allclose(fspecial("disk", 1), expected, atol=1e-4)


def test_disk_default_is_radius_5():
    kernel = fspecial("disk")
    assert kernel.shape == (11, 11)
    assert kernel[5, 5] == pytest.approx(0.0127, abs=1e-4)
    # fully covered cells all hold 1/(pi r^2); the corners are outside the disk
    assert kernel[5, 5] == pytest.approx(1 / (math.pi * 25), rel=1e-9)
    assert kernel[0, 0] == 0 and kernel[-1, -1] == 0
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-12)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-12)


def test_unsharp_default_matches_matlab():
    kernel = fspecial("unsharp")
    expected = np.array([[-0.1667, -0.6667, -0.1667], [-0.6667, 4.3333, -0.6667], [-0.1667, -0.6667, -0.1667]])
    np.testing.assert_allclose(kernel, expected, atol=1e-4)


def test_unsharp_rejects_alpha_outside_unit_interval():
    with pytest.raises(ValueError):
        fspecial("unsharp", 1.5)


def test_motion_horizontal_is_row_of_fifths():
    kernel = fspecial("motion", 5, 0)
    assert kernel.shape == (1, 5)
    np.testing.assert_allclose(kernel, np.full((1, 5), 0.2), atol=1e-9)


def test_motion_vertical_is_column_of_fifths():
    kernel = fspecial("motion", 5, 90)
    assert kernel.shape == (5, 1)
    np.testing.assert_allclose(kernel, np.full((5, 1), 0.2), atol=1e-9)


def test_motion_45_degrees_runs_bottom_left_to_top_right():
    # MATLAB measures theta counter-clockwise with y pointing up, so 45 degrees is "/"
    kernel = fspecial("motion", 5, 45)
    assert kernel.shape[0] == kernel.shape[1]
    assert np.trace(np.fliplr(kernel)) > np.trace(kernel)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-12)


def test_average_default_and_size_4():
    np.testing.assert_allclose(fspecial("average"), np.full((3, 3), 1 / 9))
    np.testing.assert_allclose(fspecial("average", 4), np.full((4, 4), 1 / 16))
    assert fspecial("average", [2, 5]).shape == (2, 5)


def test_gaussian_default_matches_matlab():
    expected = np.array([[0.0113, 0.0838, 0.0113], [0.0838, 0.6193, 0.0838], [0.0113, 0.0838, 0.0113]])
    kernel = fspecial("gaussian")
    assert kernel.shape == (3, 3)
    np.testing.assert_allclose(kernel, expected, atol=1e-4)
    # default sigma is 0.5: the explicit call gives the same kernel
    np.testing.assert_allclose(kernel, fspecial("gaussian", 3, 0.5))


def test_gaussian_size_4_is_symmetric_and_normalised():
    kernel = fspecial("gaussian", 4)
    assert kernel.shape == (4, 4)
    assert kernel.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-15)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-15)
    assert kernel[1, 1] == kernel.max()


@pytest.mark.parametrize("args", [
    ("average",), ("average", 4), ("average", [2, 3]), ("disk",), ("disk", 1), ("disk", 2.5),
    ("gaussian",), ("gaussian", 4), ("gaussian", 7, 1.5), ("unsharp",), ("unsharp", 0.0), ("unsharp", 1.0),
    ("motion",), ("motion", 5, 0), ("motion", 5, 90), ("motion", 7, 30), ("motion", 9, -45), ("motion", 6, 135),
])
def test_every_kernel_sums_to_one(args):
    kernel = fspecial(*args)
    assert kernel.ndim == 2 and np.all(np.isfinite(kernel))
    assert kernel.sum() == pytest.approx(1.0, abs=1e-9)


def test_unknown_kind_raises_value_error():
    with pytest.raises(ValueError, match="unknown fspecial kind"):
        fspecial("laplacian")


@pytest.mark.parametrize("hsize", [0, -3, 2.5, [3, 0]])
def test_bad_hsize_raises(hsize):
    with pytest.raises(ValueError):
        fspecial("average", hsize)


def test_disk_rejects_non_positive_radius():
    with pytest.raises(ValueError):
        fspecial("disk", 0)


# --------------------------------------------------------------------------- the lecture's filter bank


def test_filter_presets_are_f1_to_f10():
    assert list(FILTER_PRESETS) == [f"F{i}" for i in range(1, 11)]


@pytest.mark.parametrize("name", list(FILTER_PRESETS))
def test_every_preset_produces_a_normalised_kernel(name, rgb_image):
    kernel = preset_kernel(name)
    assert kernel.ndim == 2 and kernel.size >= 1
    assert kernel.sum() == pytest.approx(1.0, abs=1e-9)
    out = apply_kernel(rgb_image, kernel)
    assert out.shape == rgb_image.shape and out.dtype == np.uint8


def test_f10_is_identity(rgb_image):
    np.testing.assert_array_equal(apply_kernel(rgb_image, preset_kernel("F10")), rgb_image)


def test_preset_kernel_returns_fresh_identity_copy():
    kernel = preset_kernel("F10")
    kernel[1, 1] = 5
    assert preset_kernel("F10")[1, 1] == 1


@pytest.mark.parametrize("name", ["F6", "F8", "F9"])
def test_radian_presets_blur_almost_horizontally(name):
    # the lecture passes radians where MATLAB reads degrees, so these are near-horizontal lines
    kind, length, theta = FILTER_PRESETS[name]
    assert kind == "motion" and theta < 3.2
    kernel = preset_kernel(name)
    assert kernel.shape[1] > kernel.shape[0]
    assert kernel.shape[1] >= length
    # the middle row carries almost all of the weight
    assert kernel[kernel.shape[0] // 2].sum() > 0.8


def test_f8_is_motion_5_at_1_57_degrees():
    kernel = preset_kernel("F8")
    np.testing.assert_allclose(kernel, fspecial("motion", 5, math.pi / 2))
    assert kernel.shape == (3, 5)
    # nearly all of the weight lies on the middle row
    assert kernel[1].sum() > 0.9


def test_f7_is_exact_horizontal_motion():
    np.testing.assert_allclose(preset_kernel("F7"), np.full((1, 5), 0.2), atol=1e-9)


def test_apply_kernel_correlates_without_flipping():
    # an impulse correlated with an asymmetric kernel gives the kernel rotated by 180 degrees
    image = np.zeros((7, 7), np.uint8)
    image[3, 3] = 200
    kernel = np.zeros((3, 3))
    kernel[0, 2] = 1.0  # picks the top-right neighbour
    out = apply_kernel(image, kernel)
    assert out[4, 2] == 200
    assert out.sum() == 200


def test_average_filter_keeps_flat_image():
    flat = np.full((10, 12, 3), 77, np.uint8)
    np.testing.assert_array_equal(apply_kernel(flat, fspecial("average", 4)), flat)


# --------------------------------------------------------------------------- affine


def test_matlab_to_opencv_converts_row_vector_convention():
    rng = np.random.default_rng(1)
    tform = np.array([[0.9, 0.3, 0], [-0.2, 1.1, 0], [5.0, -7.0, 1]])
    cv_matrix = matlab_to_opencv(tform)
    assert cv_matrix.shape == (2, 3)
    for x, y in rng.uniform(-50, 50, size=(10, 2)):
        row = np.array([x, y, 1.0]) @ tform
        np.testing.assert_allclose(cv_matrix @ np.array([x, y, 1.0]), row[:2])


@pytest.mark.parametrize("bad", [
    np.array([[1, 0, 1], [0, 1, 0], [0, 0, 1]]),
    np.array([[1, 0, 0], [0, 1, 0], [0, 0, 2]]),
    np.eye(2),
    np.ones((2, 3)),
])
def test_matlab_to_opencv_rejects_invalid_matrix(bad):
    with pytest.raises(ValueError):
        matlab_to_opencv(bad)


def test_affine_presets_are_valid_matlab_tforms():
    presets = affine_presets(40, 30)
    assert list(presets) == [f"t{i}" for i in range(1, 8)]
    for tform in presets.values():
        assert tform.shape == (3, 3)
        np.testing.assert_allclose(tform[:, 2], [0, 0, 1])
        assert abs(np.linalg.det(tform)) > 0.5


def _map(tform, x, y):
    return (np.array([x, y, 1.0]) @ tform)[:2]


def test_t3_mirrors_left_right():
    w, h = 40, 30
    t3 = affine_presets(w, h)["t3"]
    for y in (0, 7, h - 1):
        np.testing.assert_allclose(_map(t3, 0, y), [w - 1, y])
        np.testing.assert_allclose(_map(t3, w - 1, y), [0, y])


def test_t4_mirrors_top_bottom():
    w, h = 40, 30
    t4 = affine_presets(w, h)["t4"]
    np.testing.assert_allclose(_map(t4, 5, 0), [5, h - 1])


def test_t1_translates_by_twice_the_shift():
    t1 = affine_presets(40, 30, shift=3.0)["t1"]
    np.testing.assert_allclose(_map(t1, 10, 20), [16, 26])


@pytest.mark.parametrize("name", ["t2", "t5", "t6", "t7"])
def test_centred_presets_keep_the_centre_fixed(name):
    w, h = 41, 31
    tform = affine_presets(w, h)[name]
    np.testing.assert_allclose(_map(tform, (w - 1) / 2, (h - 1) / 2), [(w - 1) / 2, (h - 1) / 2], atol=1e-9)


def test_t2_rotates_by_angle():
    tform = affine_presets(41, 31, angle=30.0)["t2"]
    linear = tform[:2, :2]
    np.testing.assert_allclose(linear @ linear.T, np.eye(2), atol=1e-12)  # a pure rotation
    assert math.degrees(math.atan2(linear[0, 1], linear[0, 0])) == pytest.approx(30.0)


def test_apply_params_t3_equals_numpy_mirror(rgb_image):
    draw = Draw("affine_preset", True, {"name": "t3", "shift": 4.0, "angle": 10.0})
    out = apply_params(rgb_image, [draw])
    np.testing.assert_array_equal(out, rgb_image[:, ::-1])


def test_apply_params_t1_shifts_content(rgb_image):
    draw = Draw("affine_preset", True, {"name": "t1", "shift": 4.0, "angle": 10.0})
    out = apply_params(rgb_image, [draw])
    assert out.shape == rgb_image.shape
    np.testing.assert_array_equal(out[8:, 8:], rgb_image[:-8, :-8])


def test_hflip_twice_is_identity(rgb_image):
    flip = Draw("hflip", True, {})
    np.testing.assert_array_equal(apply_params(rgb_image, [flip]), rgb_image[:, ::-1])
    np.testing.assert_array_equal(apply_params(rgb_image, [flip, flip]), rgb_image)


@pytest.mark.parametrize("angle, tx, ty", [(0, 0, 0), (30, 5, -2), (-123.4, 10.5, 7.25), (270, -3, 3)])
def test_rotation_translation_inverse(angle, tx, ty):
    forward, inverse = rotation_translation(angle, tx, ty)
    np.testing.assert_allclose(forward @ inverse, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(inverse @ forward, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(forward[:, 2], [0, 0, 1])
    np.testing.assert_allclose(_map(forward, 0, 0), [tx, ty])


def test_affine_matrix_identity_and_centre():
    shape = (31, 41, 3)
    np.testing.assert_allclose(A.affine_matrix(shape), [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    matrix = A.affine_matrix(shape, rotation=25, scale=1.3, shear=5)
    np.testing.assert_allclose(matrix @ [20, 15, 1], [20, 15], atol=1e-9)
    shifted = A.affine_matrix(shape, translate=(0.1, -0.2))
    np.testing.assert_allclose(shifted[:, 2], [4.1, -6.2])


# --------------------------------------------------------------------------- crops


def test_five_crops(rgb_image):
    h, w = rgb_image.shape[:2]
    crops = five_crops(rgb_image, 20)
    assert set(crops) == {"center", "top_left", "top_right", "bottom_left", "bottom_right"}
    for crop in crops.values():
        assert crop.shape == (20, 20, 3)
    np.testing.assert_array_equal(crops["top_left"], rgb_image[:20, :20])
    np.testing.assert_array_equal(crops["top_right"], rgb_image[:20, w - 20:])
    np.testing.assert_array_equal(crops["bottom_left"], rgb_image[h - 20:, :20])
    np.testing.assert_array_equal(crops["bottom_right"], rgb_image[h - 20:, w - 20:])
    top, left = (h - 20) // 2, (w - 20) // 2
    np.testing.assert_array_equal(crops["center"], rgb_image[top:top + 20, left:left + 20])


def test_five_crops_clip_to_image(rgb_image):
    crops = five_crops(rgb_image, 1000)
    for crop in crops.values():
        np.testing.assert_array_equal(crop, rgb_image)


def test_ten_crops_add_mirrors(rgb_image):
    crops = ten_crops(rgb_image, 24)
    assert len(crops) == 10
    for name in ("center", "top_left", "top_right", "bottom_left", "bottom_right"):
        np.testing.assert_array_equal(crops[f"{name}_flip"], crops[name][:, ::-1])
        assert crops[f"{name}_flip"].flags["C_CONTIGUOUS"]


def test_random_resized_box_inside_and_scaled():
    rng = np.random.default_rng(0)
    shape = (120, 160, 3)
    area = shape[0] * shape[1]
    fractions = []
    for _ in range(300):
        left, top, w, h = random_resized_box(shape, rng, (0.3, 0.6), (3 / 4, 4 / 3))
        assert left >= 0 and top >= 0 and w > 0 and h > 0
        assert left + w <= shape[1] and top + h <= shape[0]
        assert 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1
        fractions.append(w * h / area)
    fractions = np.array(fractions)
    assert fractions.min() >= 0.3 * 0.95 and fractions.max() <= 0.6 * 1.05
    assert 0.38 < fractions.mean() < 0.52  # roughly uniform in the range


def test_random_resized_box_falls_back_to_centre_square():
    # no box of this area and aspect fits, so the centre square is returned
    rng = np.random.default_rng(0)
    box = random_resized_box((10, 100), rng, (0.9, 1.0), (1.0, 1.0))
    assert box == (45, 0, 10, 10)


def test_random_resized_box_is_reproducible():
    first = random_resized_box((50, 60), np.random.default_rng(7), (0.2, 1.0), (0.5, 2.0))
    second = random_resized_box((50, 60), np.random.default_rng(7), (0.2, 1.0), (0.5, 2.0))
    assert first == second


@pytest.mark.parametrize("box", [[0, 0, 20, 20], [5, 3, 30, 30], [64 - 17, 48 - 17, 17, 17]])
def test_apply_params_crop_equals_slice(rgb_image, box):
    left, top, w, h = box
    draw = Draw("crop", True, {"mode": "random_resized", "size": w, "box": box})
    out = apply_params(rgb_image, [draw])
    np.testing.assert_array_equal(out, rgb_image[top:top + h, left:left + w])


def test_apply_params_crop_resizes_to_size(rgb_image):
    draw = Draw("crop", True, {"mode": "random_resized", "size": 16, "box": [0, 0, 32, 32]})
    out = apply_params(rgb_image, [draw])
    assert out.shape == (16, 16, 3)
    # a 2x shrink of a smooth region stays close to the area average
    expected = rgb_image[:32, :32].astype(float).reshape(16, 2, 16, 2, 3).mean(axis=(1, 3))
    assert np.abs(out.astype(float) - expected)[2:-2, 2:-2].mean() < 10


def test_corner_crop_modes_draw_expected_boxes():
    spec = PipelineSpec((OpSpec("crop", 1.0, {"mode": ["top_left"], "scale": [0.25, 0.25], "size": 10}),))
    draws = sample_params(spec, np.random.default_rng(0), (40, 60, 3))
    assert draws[0].values["box"] == [0, 0, 20, 20]
    spec = PipelineSpec((OpSpec("crop", 1.0, {"mode": ["bottom_right"], "scale": [0.25, 0.25], "size": 10}),))
    draws = sample_params(spec, np.random.default_rng(0), (40, 60, 3))
    assert draws[0].values["box"] == [40, 20, 20, 20]


def test_unknown_crop_mode_is_spec_error():
    spec = PipelineSpec((OpSpec("crop", 1.0, {"mode": ["sideways"]}),))
    with pytest.raises(SpecError):
        sample_params(spec, np.random.default_rng(0), (40, 60, 3))


def test_resize_and_crop_shrink():
    image = np.full((200, 300, 3), 90, np.uint8)
    assert A.resize(image, 50).shape == (50, 50, 3)
    assert A.resize(image, (20, 30)).shape == (20, 30, 3)
    np.testing.assert_array_equal(A.crop_box(image, (10, 20, 5, 7)), image[20:27, 10:15])


def test_strong_shrink_does_not_alias():
    # a one-pixel checkerboard shrunk 8x must come out as mid grey, not as a pattern
    checker = ((np.indices((256, 256)).sum(axis=0) % 2) * 255).astype(np.uint8)
    image = np.repeat(checker[..., None], 3, axis=2)
    draw = Draw("resize", True, {"size": 32})
    out = apply_params(image, [draw])
    assert out.shape == (32, 32, 3)
    assert np.abs(out.astype(int) - 127.5).max() < 10


# --------------------------------------------------------------------------- noise


def test_noise_is_deterministic_per_seed(rgb_image):
    for kind in ("gaussian", "salt_pepper", "speckle"):
        a = add_noise(rgb_image, kind, 0.05, seed=3)
        b = add_noise(rgb_image, kind, 0.05, seed=3)
        c = add_noise(rgb_image, kind, 0.05, seed=4)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
        assert a.dtype == np.uint8 and a.shape == rgb_image.shape


def test_salt_pepper_density():
    image = np.full((200, 200, 3), 128, np.uint8)
    out = add_noise(image, "salt_pepper", 0.1, seed=0)
    changed = np.any(out != image, axis=2)
    assert 0.08 < changed.mean() < 0.12
    values = out[changed]
    assert set(np.unique(values)) <= {0, 255}
    # a changed pixel changes in all channels together, to pure black or pure white
    assert np.all((values == 0).all(axis=1) | (values == 255).all(axis=1))
    black = (out[changed] == 0).all(axis=1).mean()
    assert 0.4 < black < 0.6  # salt and pepper in equal measure


def test_gaussian_noise_with_zero_variance_is_identity(rgb_image):
    np.testing.assert_array_equal(add_noise(rgb_image, "gaussian", 0.0, seed=1), rgb_image)
    np.testing.assert_array_equal(add_noise(rgb_image, "speckle", 0.0, seed=1), rgb_image)
    np.testing.assert_array_equal(add_noise(rgb_image, "salt_pepper", 0.0, seed=1), rgb_image)


def test_gaussian_noise_has_requested_variance():
    image = np.full((100, 100), 128, np.uint8)
    out = add_noise(image, "gaussian", 0.01, seed=2).astype(float) / 255
    assert out.std() == pytest.approx(0.1, rel=0.05)
    assert out.mean() == pytest.approx(128 / 255, abs=0.01)


def test_speckle_leaves_black_black():
    image = np.zeros((20, 20, 3), np.uint8)
    np.testing.assert_array_equal(add_noise(image, "speckle", 0.1, seed=0), image)


def test_unknown_noise_kind_raises(rgb_image):
    with pytest.raises(ValueError):
        add_noise(rgb_image, "poisson", 0.1, seed=0)


# --------------------------------------------------------------------------- colour


def test_neutral_colour_is_identity(rgb_image):
    out = adjust_color(rgb_image)
    assert out.dtype == np.uint8 and out.shape == rgb_image.shape
    assert np.abs(out.astype(int) - rgb_image).max() <= 1


def test_brightness_zero_is_black(rgb_image):
    assert adjust_color(rgb_image, brightness=0.0).max() == 0


def test_brightness_scales_values():
    image = np.full((4, 4, 3), 100, np.uint8)
    assert abs(int(adjust_color(image, brightness=1.5)[0, 0, 0]) - 150) <= 1
    assert adjust_color(image, brightness=3.0).max() == 255  # saturates, no wrap-around


def test_saturation_zero_is_grey(rgb_image):
    out = adjust_color(rgb_image, saturation=0.0).astype(int)
    assert np.abs(out[..., 0] - out[..., 1]).max() <= 1
    assert np.abs(out[..., 1] - out[..., 2]).max() <= 1
    luma = rgb_image.astype(float) @ [0.299, 0.587, 0.114]
    assert np.abs(out[..., 0] - luma).max() <= 1.5


def test_contrast_zero_gives_flat_mean_grey(rgb_image):
    out = adjust_color(rgb_image, contrast=0.0).astype(int)
    assert out.max() - out.min() <= 1
    luma_mean = (rgb_image.reshape(-1, 3).astype(float) @ [0.299, 0.587, 0.114]).mean()
    assert abs(out.mean() - luma_mean) <= 1


def test_gamma_above_one_darkens_mid_grey():
    grey = np.full((4, 4, 3), 128, np.uint8)
    darker = adjust_color(grey, gamma=2.0)
    assert darker.max() < 128
    assert abs(int(darker[0, 0, 0]) - round(255 * (128 / 255) ** 2)) <= 1
    assert adjust_color(grey, gamma=0.5).min() > 128
    # black and white are fixed points of gamma
    extremes = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)
    np.testing.assert_array_equal(adjust_color(extremes, gamma=2.0), extremes)


def test_hue_rotation_keeps_grey_and_full_turn_is_identity(rgb_image):
    grey = np.full((4, 4, 3), 90, np.uint8)
    assert np.abs(adjust_color(grey, hue=0.3).astype(int) - 90).max() <= 1
    assert np.abs(adjust_color(rgb_image, hue=1.0).astype(int) - rgb_image).max() <= 1
    assert np.abs(adjust_color(rgb_image, hue=0.25).astype(int) - rgb_image).max() > 20


def test_adjust_color_keeps_grayscale_2d():
    grey = np.full((5, 6), 100, np.uint8)
    out = adjust_color(grey, brightness=0.5)
    assert out.shape == (5, 6)
    assert abs(int(out[0, 0]) - 50) <= 1


# --------------------------------------------------------------------------- normalization


def test_normalization_helpers(rgb_image):
    centred, mean = A.subtract_channel_mean(rgb_image)
    assert centred.dtype == np.float32 and mean.shape == (3,)
    np.testing.assert_allclose(centred.reshape(-1, 3).mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(A.subtract_mean_image(rgb_image, rgb_image), 0)
    assert A.scale_intensity(np.full((2, 2), 128, np.uint8)).max() == pytest.approx(0.5)


# --------------------------------------------------------------------------- pipelines


def _every_op_spec() -> PipelineSpec:
    return PipelineSpec(tuple(default_op(name, 0.75) for name in OPERATORS))


def test_default_op_copies_defaults():
    op = default_op("color")
    op.params["brightness"][0] = 123
    assert OPERATORS["color"].defaults["brightness"][0] == 0.8


@pytest.mark.parametrize("spec", [default_pipeline(), _every_op_spec(), PipelineSpec()])
def test_spec_json_round_trip(spec):
    text = spec_to_json(spec)
    assert json.loads(text)["version"] == 1
    assert spec_from_json(text) == spec
    assert spec_from_json(text.encode("utf-8")) == spec
    assert spec_to_json(spec_from_json(text)) == text


def test_every_operator_runs_in_one_pipeline():
    image = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    spec = PipelineSpec(tuple(default_op(name) for name in OPERATORS))
    (out, draws), = augment_many(image, spec, 1, seed=5)
    assert [d.op for d in draws] == list(OPERATORS)
    assert all(d.applied for d in draws)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8


def test_augment_many_is_reproducible(rgb_image):
    spec = PipelineSpec((default_op("motion_blur", 0.5), default_op("affine"), default_op("color"),
                         default_op("noise"), OpSpec("crop", 1.0, {"size": 32})))
    first = augment_many(rgb_image, spec, 4, seed=11)
    second = augment_many(rgb_image, spec, 4, seed=11)
    other = augment_many(rgb_image, spec, 4, seed=12)
    assert len(first) == 4
    for (a, da), (b, db) in zip(first, second):
        np.testing.assert_array_equal(a, b)
        assert da == db
        assert a.shape == (32, 32, 3)
    assert any(not np.array_equal(a, c) for (a, _), (c, _) in zip(first, other))
    # the four draws of one call are different from each other
    assert not np.array_equal(first[0][0], first[1][0])


def test_draws_replay_exactly(rgb_image):
    spec = _every_op_spec()
    (image, draws), = augment_many(rgb_image, spec, 1, seed=3)
    np.testing.assert_array_equal(apply_params(rgb_image, draws), image)
    # draws are plain JSON data, so a draw can be stored and replayed
    assert json.loads(json.dumps([d.values for d in draws])) == [d.values for d in draws]


def test_default_pipeline_output_shape():
    image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    (out, draws), = augment_many(image, default_pipeline(), 1, seed=0)
    assert out.shape == (224, 224, 3)
    assert out.dtype == np.uint8
    assert [d.op for d in draws] == ["motion_blur", "affine", "color", "crop"]


def test_zero_probability_returns_input(rgb_image):
    spec = PipelineSpec(tuple(default_op(name, 0.0) for name in OPERATORS if not OPERATORS[name].resizes))
    for out, draws in augment_many(rgb_image, spec, 3, seed=1):
        assert not any(d.applied for d in draws)
        np.testing.assert_array_equal(out, rgb_image)


def test_a_crop_that_did_not_run_still_resizes(rgb_image):
    """Every draw of a pipeline has one size (as a training batch must)."""
    spec = PipelineSpec((OpSpec("crop", 0.0, {"size": 32}), default_op("hflip", 0.0)))
    (out, draws), = augment_many(rgb_image, spec, 1, seed=1)
    assert not draws[0].applied and out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out, apply_params(rgb_image, [Draw("resize", True, {"size": 32})]))


def test_sampled_values_respect_ranges():
    spec = default_pipeline()
    rng = np.random.default_rng(0)
    for _ in range(50):
        draws = {d.op: d.values for d in sample_params(spec, rng, (300, 400, 3))}
        assert 3 <= draws["motion_blur"]["length"] <= 9 and isinstance(draws["motion_blur"]["length"], int)
        assert -15 <= draws["affine"]["rotation"] <= 15
        assert -0.1 <= draws["affine"]["translate_x"] <= 0.1
        assert 0.8 <= draws["color"]["gamma"] <= 1.25
        left, top, w, h = draws["crop"]["box"]
        assert 0 <= left and 0 <= top and left + w <= 400 and top + h <= 300
        assert draws["crop"]["size"] == 224


def test_fixed_and_choice_params():
    text = _ops_json({"op": "gaussian_blur", "params": {"hsize": [3, 5], "sigma": 1.0}},
                     {"op": "filter_preset", "params": {"name": ["F2", "F7"]}})
    spec = spec_from_json(text)
    rng = np.random.default_rng(0)
    sizes, names = set(), set()
    for _ in range(40):
        blur, preset = sample_params(spec, rng, (10, 10, 3))
        # an integer parameter drawn from a range takes every integer of it, ends included
        assert isinstance(blur.values["hsize"], int) and blur.values["sigma"] == 1.0
        sizes.add(blur.values["hsize"])
        names.add(preset.values["name"])
    assert sizes == {3, 4, 5}
    assert names == {"F2", "F7"}


def _ops_json(*ops, version=None) -> str:
    data = {"ops": list(ops)}
    if version is not None:
        data["version"] = version
    return json.dumps(data)


@pytest.mark.parametrize("text, key", [
    ("this is not json {", "err_spec_not_json"),
    (b"\xff\xfe\x00garbage", "err_spec_not_json"),
    ("[" * 100_000 + "]" * 100_000, "err_spec_too_deep"),
    ('{"ops": [{"op": "affine", "params": {"rotation": ' + "[" * 100_000 + "]" * 100_000 + "}}]}", "err_spec_too_deep"),
    ('{"ops": [{"op": "affine", "params": {"rotation": ' + "[" * 500 + "]" * 500 + "}}]}", "err_spec_bad_value"),
    ("[1, 2, 3]", "err_spec_not_pipeline"),
    ('{"version": 1}', "err_spec_not_pipeline"),
    ('{"ops": {"op": "hflip"}}', "err_spec_not_pipeline"),
    ('{"ops": ["hflip"]}', "err_spec_not_pipeline"),
    ('{"ops": [{"p": 1}]}', "err_spec_not_pipeline"),
    (_ops_json({"op": "hflip", "params": [1]}), "err_spec_not_pipeline"),
    (_ops_json({"op": "hflip", "p": "often"}), "err_spec_not_pipeline"),
    (_ops_json({"op": "sharpen"}), "err_spec_unknown_op"),
    (_ops_json({"op": "color", "params": {"vibrance": 1.0}}), "err_spec_unknown_param"),
    (_ops_json({"op": "hflip", "p": 1.5}), "err_spec_bad_value"),
    (_ops_json({"op": "hflip", "p": -0.1}), "err_spec_bad_value"),
    (_ops_json({"op": "motion_blur", "params": {"length": [5, 1]}}), "err_spec_bad_value"),
    (_ops_json({"op": "color", "params": {"gamma": []}}), "err_spec_bad_value"),
    (_ops_json({"op": "color", "params": {"gamma": True}}), "err_spec_bad_value"),
    (_ops_json({"op": "color", "params": {"gamma": {"a": 1}}}), "err_spec_bad_value"),
    (_ops_json({"op": "noise", "params": {"kind": ["gaussian", 3]}}), "err_spec_bad_value"),
    (_ops_json({"op": "noise", "params": {"kind": "poisson"}}), "err_spec_bad_value"),
    (_ops_json({"op": "filter_preset", "params": {"name": "F99"}}), "err_spec_bad_value"),
    (_ops_json({"op": "color", "params": {"gamma": 50.0}}), "err_spec_bad_value"),
    (_ops_json({"op": "motion_blur", "params": {"length": "long"}}), "err_spec_bad_value"),
    (_ops_json({"op": "hflip"}, version=2), "err_spec_version"),
])
def test_bad_specs_raise_spec_error(text, key):
    with pytest.raises(SpecError) as info:
        spec_from_json(text)
    assert info.value.key == key
    assert isinstance(info.value, UserError)
    assert str(info.value) and str(info.value) != key  # a real catalog message


def test_spec_from_dict_defaults():
    spec = spec_from_dict({"ops": [{"op": "hflip"}]})
    assert spec == PipelineSpec((OpSpec("hflip", 1.0, {}),))


def test_spec_error_message_in_chinese():
    with pytest.raises(SpecError) as info:
        spec_from_json(_ops_json({"op": "sharpen"}))
    error = info.value
    english, chinese = str(error), error.message("zh")
    assert chinese != english
    assert "sharpen" in english and "sharpen" in chinese
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese)
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in english)
    assert error.message("en") == english
    assert error.message("fr") == english  # unknown language falls back to English


def test_even_kernels_use_matlab_anchor():
    """imfilter anchors a 4x4 kernel at its second row and column: an impulse at 10 spreads to 8..11."""
    impulse = np.zeros((20, 20), np.uint8)
    impulse[10, 10] = 160
    rows, cols = np.nonzero(apply_kernel(impulse, fspecial("average", 4)))
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (8, 11, 8, 11)


@pytest.mark.parametrize("name", list(OPERATORS))
def test_every_operator_record_is_whole(name):
    """A record's defaults pass its own checks, each parameter has limits or choices, and it does one thing."""
    operator = OPERATORS[name]
    assert spec_from_dict({"ops": [{"op": name, "params": operator.defaults}]}).ops[0].params == operator.defaults
    for param in operator.params.values():
        assert bool(param.choices) != (param.limits is not None)
    assert sum(f is not None for f in (operator.geometry, operator.kernel, operator.color, operator.noise)) == 1


def test_random_resized_boxes_for_a_whole_batch():
    boxes = A.random_resized_boxes((300, 400, 3), np.random.default_rng(0), (0.2, 0.6), (0.5, 2.0), 500)
    left, top, w, h = boxes.T
    assert boxes.shape == (500, 4) and boxes.dtype.kind == "i"
    assert (left >= 0).all() and (top >= 0).all() and (left + w <= 400).all() and (top + h <= 300).all()
    area = w * h / (300 * 400)
    assert 0.19 <= area.min() and area.max() <= 0.61
    assert len({tuple(b) for b in boxes.tolist()}) > 450
