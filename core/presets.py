"""What the network is fed: the default training augmentation, and any batch as the network's input.

Training, evaluation, prediction and the attention page all prepare images here, so they cannot drift apart.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from core import augment as aug
from models.registry import ARCHITECTURES


def default_augmentation(input_size: int) -> aug.PipelineSpec:
    """Mild augmentation that keeps an expression's label: flips, small moves, light changes."""
    return aug.PipelineSpec((
        aug.default_op("hflip", 0.5),
        aug.OpSpec("affine", 1.0, {"rotation": [-10.0, 10.0], "translate": [-0.08, 0.08], "scale": [0.9, 1.1],
                                   "shear": [-5.0, 5.0]}),
        aug.OpSpec("crop", 0.5, {"mode": ["random_resized"], "scale": [0.75, 1.0], "ratio": [0.9, 1.1],
                                 "size": input_size}),
        aug.OpSpec("color", 0.8, {"brightness": [0.75, 1.25], "contrast": [0.75, 1.25], "saturation": [1.0, 1.0],
                                  "hue": [0.0, 0.0], "gamma": [0.8, 1.25]}),
    ))


def to_network_input(batch: torch.Tensor, arch: str) -> torch.Tensor:
    """Float 0..255 images of any stored size and channels as the network's normalised input."""
    architecture = ARCHITECTURES[arch]
    if batch.shape[1] != architecture.channels:
        luma = torch.tensor(aug.LUMA, device=batch.device, dtype=batch.dtype)[None, :, None, None]
        batch = (batch * luma).sum(dim=1, keepdim=True) if architecture.channels == 1 else batch.expand(-1, 3, -1, -1)
    if batch.shape[-1] != architecture.input_size or batch.shape[-2] != architecture.input_size:
        batch = F.interpolate(batch, size=(architecture.input_size,) * 2, mode="bilinear", antialias=True,
                              align_corners=False)
    mean = torch.tensor(architecture.mean, device=batch.device, dtype=batch.dtype)[None, :, None, None]
    std = torch.tensor(architecture.std, device=batch.device, dtype=batch.dtype)[None, :, None, None]
    return (batch / 255.0 - mean) / std
