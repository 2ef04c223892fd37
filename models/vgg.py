"""A VGG-style network for small grayscale faces (FER2013's 48x48), sized to train on a CPU."""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int, convs: int) -> nn.Sequential:
    """`convs` 3x3 conv-BN-ReLU layers, then 2x2 max pooling, as in VGG."""
    layers: list[nn.Module] = []
    for index in range(convs):
        layers += [nn.Conv2d(in_channels if index == 0 else out_channels, out_channels, 3, padding=1, bias=False),
                   nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class FaceVGG(nn.Module):
    """conv1..convN blocks with doubling width, then fc6 and the class layer fc8.

    `width` is the channels of conv1 (capped at 8x), `depth` the conv layers per block.
    """

    def __init__(self, num_classes: int = 7, in_channels: int = 1, input_size: int = 48, width: int = 32,
                 blocks: int = 4, depth: int = 2, hidden: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        stages, channels = OrderedDict(), in_channels
        for index in range(blocks):
            out = width * min(2**index, 8)
            stages[f"conv{index + 1}"] = conv_block(channels, out, depth)
            channels = out
        self.features = nn.Sequential(stages)
        side = input_size // 2**blocks
        self.classifier = nn.Sequential(OrderedDict(
            flatten=nn.Flatten(),
            drop6=nn.Dropout(dropout),
            fc6=nn.Linear(channels * side * side, hidden),
            relu6=nn.ReLU(inplace=True),
            drop7=nn.Dropout(dropout),
            fc8=nn.Linear(hidden, num_classes),
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
