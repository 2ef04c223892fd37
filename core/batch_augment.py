"""The augmentation spec applied to whole batches with tensor operations, on any device.

Parameters are drawn by `core.augment.sample_params`, and kernels, matrices and colour maps
come from the same functions the preview uses; only the pixel work is done here, in torch,
so training and the preview page run one implementation of every rule.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core import augment as aug

_PIXEL_OPS = {"filter_preset", "motion_blur", "gaussian_blur", "noise", "color"}


def _kernel(draw: aug.Draw) -> np.ndarray:
    values = draw.values
    if draw.op == "filter_preset":
        return aug.preset_kernel(values["name"])
    if draw.op == "motion_blur":
        return aug.fspecial("motion", values["length"], values["angle"])
    return aug.fspecial("gaussian", values["hsize"], values["sigma"])


def _filter(x: torch.Tensor, draws: list[aug.Draw]) -> torch.Tensor:
    """Correlate each image with its own kernel (identity where the op did not run)."""
    kernels = [_kernel(d) if d.applied else np.ones((1, 1)) for d in draws]
    kh = max(k.shape[0] for k in kernels) | 1
    kw = max(k.shape[1] for k in kernels) | 1
    stacked = np.zeros((len(kernels), kh, kw), dtype=np.float32)
    for index, kernel in enumerate(kernels):
        # the kernel's anchor (MATLAB's, as in augment.apply_kernel) goes to the centre of the padded grid
        top, left = kh // 2 - (kernel.shape[0] - 1) // 2, kw // 2 - (kernel.shape[1] - 1) // 2
        stacked[index, top:top + kernel.shape[0], left:left + kernel.shape[1]] = kernel
    batch, channels, height, width = x.shape
    weight = torch.from_numpy(stacked).to(x.device, x.dtype).repeat_interleave(channels, 0).unsqueeze(1)
    padded = F.pad(x.reshape(1, batch * channels, height, width), (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    out = F.conv2d(padded, weight, groups=batch * channels).reshape(batch, channels, height, width)
    return out.clamp(0, 255)


def _color(x: torch.Tensor, draws: list[aug.Draw]) -> torch.Tensor:
    grey_input = x.shape[1] == 1
    rgb = x.expand(-1, 3, -1, -1) if grey_input else x
    means = rgb.mean(dim=(2, 3)).cpu().numpy()
    matrices, gammas = [], []
    for draw, mean in zip(draws, means):
        values = draw.values if draw.applied else {}
        matrices.append(aug.color_matrix(mean, values.get("brightness", 1.0), values.get("contrast", 1.0),
                                         values.get("saturation", 1.0), values.get("hue", 0.0)))
        gammas.append(values.get("gamma", 1.0))
    matrix = torch.tensor(np.stack(matrices), dtype=x.dtype, device=x.device)
    out = torch.einsum("bij,bjhw->bihw", matrix[:, :, :3], rgb) + matrix[:, :, 3, None, None]
    out = out.clamp(0, 255)
    if grey_input:
        luma = torch.tensor(aug.LUMA, dtype=x.dtype, device=x.device)
        out = torch.einsum("c,bchw->bhw", luma, out).unsqueeze(1)
    gamma = torch.tensor(gammas, dtype=x.dtype, device=x.device)[:, None, None, None]
    return 255.0 * (out / 255.0).pow(gamma)


def _noise(x: torch.Tensor, draws: list[aug.Draw]) -> torch.Tensor:
    out = x / 255.0
    for index, draw in enumerate(draws):
        if not draw.applied:
            continue
        generator = torch.Generator(device=x.device).manual_seed(draw.values["seed"])
        image, amount, kind = out[index], draw.values["amount"], draw.values["kind"]
        if kind == "gaussian":
            image = image + torch.randn(image.shape, generator=generator, device=x.device) * amount**0.5
        elif kind == "speckle":
            image = image + image * (torch.rand(image.shape, generator=generator, device=x.device) - 0.5) * (12 * amount) ** 0.5
        else:
            draw_map = torch.rand(image.shape[1:], generator=generator, device=x.device)
            image = torch.where(draw_map < amount / 2, 0.0, torch.where(draw_map < amount, 1.0, image))
        out[index] = image
    return (out * 255.0).clamp(0, 255)


_APPLY = {"filter_preset": _filter, "motion_blur": _filter, "gaussian_blur": _filter, "color": _color, "noise": _noise}


def _to_theta(matrices: np.ndarray, in_size: tuple[int, int], out_size: tuple[int, int]) -> np.ndarray:
    """Pixel-coordinate forward maps as affine_grid's normalised output-to-input maps."""
    def normaliser(height: int, width: int) -> np.ndarray:
        return np.array([[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]])

    inverse = np.linalg.inv(matrices)
    theta = normaliser(*in_size) @ inverse @ np.linalg.inv(normaliser(*out_size))
    return theta[:, :2]


def _warp(x: torch.Tensor, matrices: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    theta = torch.tensor(_to_theta(matrices, tuple(x.shape[2:]), size), dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta, [x.shape[0], x.shape[1], *size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def apply_batch(x: torch.Tensor, draws: list[list[aug.Draw]]) -> torch.Tensor:
    """Apply per-image draws to a float batch (B, C, H, W) of 0..255 values.

    Runs of geometric operators are composed and resampled once, as in `apply_params`. A
    size-changing operator that did not run for an image still resizes it, so that the
    batch keeps one size.
    """
    batch = x.shape[0]
    matrices, size = np.tile(np.eye(3), (batch, 1, 1)), tuple(x.shape[2:])
    for step in zip(*draws):
        op = step[0].op
        definition = aug.OPERATORS[op]
        if definition.geometry is not None:
            shape = (*size, x.shape[1])
            steps = []
            for draw in step:
                values = draw.values if draw.applied else None
                if values is None and op in ("crop", "resize"):
                    matrix, new_size = aug.OPERATORS["resize"].geometry(shape, {"size": draw.values["size"]})
                elif values is None:
                    matrix, new_size = np.eye(3), size
                else:
                    matrix, new_size = definition.geometry(shape, values)
                steps.append(matrix)
            matrices, size = np.stack(steps) @ matrices, tuple(new_size)
            continue
        if not np.allclose(matrices, np.eye(3)) or size != tuple(x.shape[2:]):
            x, matrices = _warp(x, matrices, size), np.tile(np.eye(3), (batch, 1, 1))
        if any(d.applied for d in step):
            x = _APPLY[op](x, list(step))
    if not np.allclose(matrices, np.eye(3)) or size != tuple(x.shape[2:]):
        x = _warp(x, matrices, size)
    return x


def augment_batch(x: torch.Tensor, spec: aug.PipelineSpec, rng: np.random.Generator) -> torch.Tensor:
    """Draw parameters for every image of a uint8 or float batch and apply them; returns float 0..255."""
    shape = (*x.shape[2:], x.shape[1])
    draws = [aug.sample_params(spec, rng, shape) for _ in range(x.shape[0])]
    return apply_batch(x.float(), draws)
