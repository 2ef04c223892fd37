"""Grad-CAM (Selvaraju et al. 2017): where in the image the network found evidence for a class.

The `grad-cam` package would pull in the non-headless OpenCV beside ours, so the few lines
it takes are here: the last convolutional feature maps, weighted by the mean gradient of the
class score over each map, summed, passed through ReLU and scaled to [0, 1].
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from models.registry import layer_groups


def cam_layer(arch: str, model: nn.Module) -> nn.Module:
    """The last convolutional block's output before its pooling."""
    conv_groups = [module for name, module in layer_groups(arch, model).items() if name not in ("fc", "head")]
    last = conv_groups[-1]
    if isinstance(last, nn.Sequential) and isinstance(last[-1], nn.MaxPool2d):
        return last[-2]
    return last


def grad_cam(model: nn.Module, arch: str, x: torch.Tensor, class_index: int) -> np.ndarray:
    """A float32 map in [0, 1] at the input's height and width, for one normalised input (1, C, H, W).
    The model must be in eval mode; only the feature maps' gradient is computed, never the weights'."""
    captured: list[torch.Tensor] = []
    hook = cam_layer(arch, model).register_forward_hook(lambda _m, _i, output: captured.append(output))
    try:
        with torch.enable_grad():
            score = model(x.detach().requires_grad_(True))[0, class_index]
            maps = captured[0]
            (grads,) = torch.autograd.grad(score, maps)
    finally:
        hook.remove()
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * maps).sum(dim=1))[0].detach().numpy()
    cam = cv2.resize(cam, (x.shape[-1], x.shape[-2]), interpolation=cv2.INTER_CUBIC)
    cam = np.clip(cam, 0, None)
    return (cam / cam.max() if cam.max() > 0 else cam).astype(np.float32)
