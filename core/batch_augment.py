"""The augmentation spec applied to whole batches with tensor operations, on any device.

Parameters are drawn by `core.augment.sample_batch` for the whole batch at once, and every
operator's kernel, matrix, colour map and noise field comes from its record in
`core.augment.OPERATORS`; only the pixel work is done here, in torch, so training and the
preview page run one definition of every operator (tests/test_batch_augment.py checks that they
agree, operator by operator).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core import augment as aug

_PYRAMID = np.outer(*[np.array([1.0, 4, 6, 4, 1])] * 2) / 256  # cv2.pyrDown's kernel


def _filter(x: torch.Tensor, operator: aug.Operator, draw: aug.DrawBatch) -> torch.Tensor:
    """Correlate each image with its own kernel (identity where the op did not run)."""
    kernels = [operator.kernel(draw.values_at(i)) if applied else np.ones((1, 1))
               for i, applied in enumerate(draw.applied)]
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


def _color(x: torch.Tensor, operator: aug.Operator, draw: aug.DrawBatch) -> torch.Tensor:
    """The colour map and gamma table of each image; rounded to grey levels where the preview's
    uint8 steps round, so that both give the same pixels."""
    grey_input = x.shape[1] == 1
    rgb = x.expand(-1, 3, -1, -1) if grey_input else x
    matrices, tables = operator.color(draw.values, rgb.mean(dim=(2, 3)).cpu().double().numpy())
    applied = draw.applied[:, None, None]
    matrices = np.where(applied, matrices, np.eye(3, 4))
    tables = np.where(applied[:, 0], tables, np.arange(256))
    matrix = torch.tensor(matrices, dtype=x.dtype, device=x.device)
    out = torch.einsum("bij,bjhw->bihw", matrix[:, :, :3], rgb) + matrix[:, :, 3, None, None]
    out = out.clamp(0, 255).round()
    if grey_input:
        luma = torch.tensor(aug.LUMA, dtype=x.dtype, device=x.device)
        out = torch.einsum("c,bchw->bhw", luma, out).unsqueeze(1).round()
    table = torch.tensor(tables, dtype=x.dtype, device=x.device)
    levels = out.long().flatten(1)
    return torch.gather(table, 1, levels).reshape(out.shape)


def _channels_first(field: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(field)).to(device)
    return tensor.permute(2, 0, 1) if tensor.ndim == 3 else tensor.unsqueeze(0) if tensor.ndim == 2 else tensor


def _noise(x: torch.Tensor, operator: aug.Operator, draw: aug.DrawBatch) -> torch.Tensor:
    """Each image's noise field, drawn by numpy from its seed exactly as the preview draws it."""
    height, width = x.shape[2:]
    shape = (height, width) if x.shape[1] == 1 else (height, width, x.shape[1])
    out = x.clone()
    for index in np.flatnonzero(draw.applied):
        gain, bias = (_channels_first(np.asarray(f), x.device) for f in operator.noise(draw.values_at(index), shape))
        out[index] = torch.floor((x[index] / 255.0 * gain + bias) * 255.0 + 0.5).clamp(0, 255)
    return out


def _pixels(x: torch.Tensor, operator: aug.Operator, draw: aug.DrawBatch) -> torch.Tensor:
    if operator.kernel is not None:
        return _filter(x, operator, draw)
    return (_color if operator.color is not None else _noise)(x, operator, draw)


def _to_theta(matrices: np.ndarray, in_size: tuple[int, int], out_size: tuple[int, int]) -> np.ndarray:
    """Pixel-coordinate forward maps as affine_grid's normalised output-to-input maps."""
    def normaliser(height: int, width: int) -> np.ndarray:
        return np.array([[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]])

    inverse = np.linalg.inv(matrices)
    theta = normaliser(*in_size) @ inverse @ np.linalg.inv(normaliser(*out_size))
    return theta[:, :2]


def _pyr_down(x: torch.Tensor) -> torch.Tensor:
    """cv2.pyrDown: the 5x5 Gaussian with mirrored borders (BORDER_REFLECT_101), every other pixel."""
    weight = torch.tensor(_PYRAMID, dtype=x.dtype, device=x.device).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), weight, stride=2, groups=x.shape[1])


def _warp(x: torch.Tensor, matrices: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Resample each image through its matrix, halving strong shrinks first as `augment.warp` does."""
    plans = [aug.shrink_plan(matrix, tuple(x.shape[2:])) for matrix in matrices]
    levels = np.array([level for level, _ in plans])
    out = x.new_empty((x.shape[0], x.shape[1], *size))
    for level in np.unique(levels):
        index = np.flatnonzero(levels == level)
        part = x[torch.from_numpy(index).to(x.device)]
        for _ in range(level):
            part = _pyr_down(part)
        theta = torch.tensor(_to_theta(np.stack([plans[i][1] for i in index]), tuple(part.shape[2:]), size),
                             dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta, [len(index), x.shape[1], *size], align_corners=False)
        out[torch.from_numpy(index).to(x.device)] = F.grid_sample(part, grid, mode="bilinear",
                                                                  padding_mode="reflection", align_corners=False)
    return out


def apply_batch(x: torch.Tensor, draws: Sequence[aug.DrawBatch]) -> torch.Tensor:
    """Apply drawn parameters (one `DrawBatch` an operator) to a float batch (B, C, H, W) of 0..255
    values. Runs of geometric operators are composed and resampled once, as in `apply_params`; a pixel
    operator ends a run whether or not its draw ran, so every image of a batch is resampled alike."""
    identity = np.tile(np.eye(3), (x.shape[0], 1, 1))
    matrices, size = identity, tuple(x.shape[2:])

    def resampled(x: torch.Tensor) -> torch.Tensor:
        moved = not np.allclose(matrices, identity) or size != tuple(x.shape[2:])
        return _warp(x, matrices, size) if moved else x

    for draw in draws:
        operator = aug.OPERATORS[draw.op]
        if operator.geometry is not None:
            step, size = aug.geometry_of(draw, (*size, x.shape[1]))
            matrices = step @ matrices
        else:
            x, matrices = resampled(x), identity
            if draw.applied.any():
                x = _pixels(x, operator, draw)
    return resampled(x)


def augment_batch(x: torch.Tensor, spec: aug.PipelineSpec, rng: np.random.Generator) -> torch.Tensor:
    """Draw parameters for every image of a uint8 or float batch and apply them; returns float 0..255.
    The draws are those `augment.augment_many` makes for as many images from the same generator."""
    draws = aug.sample_batch(spec, rng, (*x.shape[2:], x.shape[1]), x.shape[0])
    return apply_batch(x.float(), draws)
