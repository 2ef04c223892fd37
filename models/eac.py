"""EAC-Net's enhancing layers (E-Net): landmark attention maps reweight a VGG's conv3 and conv4 features.

Li, Abtahi, Zhu, Yin, "EAC-Net: A Region-based Deep Enhancing and Cropping Approach for Facial Action Unit
Detection" (arXiv 1702.02925). The paper's VGG19 gives conv3_all = conv3_4 + conv3_1 ⊙ A56 and
conv4_all = conv4_4 + conv4_1 ⊙ A28; on VGG16 the groups end with conv3_3 and conv4_3.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.registry import build_model

STAND_IN_ARCH = "vgg16"  # the registry's architecture the page shows when no trained model is installed


class Enhance(nn.Module):
    """enhanced = F + F_first ⊙ A, with A max-pooled to F's size and broadcast over the channels.

    `first` defaults to F itself (F + F ⊙ A); EAC-Net passes the group's first conv output.
    """

    def forward(self, features: torch.Tensor, attention: torch.Tensor, first: torch.Tensor | None = None
                ) -> torch.Tensor:
        pooled = F.adaptive_max_pool2d(attention, features.shape[-2:])
        return features + (features if first is None else first) * pooled


@dataclass(frozen=True)
class GroupFeatures:
    first: torch.Tensor  # the group's first conv after ReLU (conv3_1)
    last: torch.Tensor  # its last conv after ReLU (conv3_3 in VGG16): the features before enhancing
    attention: torch.Tensor  # A pooled to the group's size (A56 for conv3 on a 224 input)
    enhanced: torch.Tensor  # last + first ⊙ A (conv3_all), what the next pooling layer gets


class EACFeatures(nn.Module):
    """A VGG `features` stack (conv, ReLU and max-pool layers) with E-Net enhancing on some conv groups."""

    def __init__(self, features: nn.Sequential, groups: tuple[int, ...] = (3, 4)) -> None:
        super().__init__()
        self.features = features
        self.groups = groups
        self.enhance = Enhance()

    def conv_names(self, group: int) -> tuple[str, str]:
        """Names of the group's first and last conv layers, e.g. ("conv3_1", "conv3_3")."""
        index, convs = 1, 0
        for layer in self.features:
            if isinstance(layer, nn.MaxPool2d):
                if index == group:
                    break
                index, convs = index + 1, 0
            elif isinstance(layer, nn.Conv2d):
                convs += 1
        return f"conv{group}_1", f"conv{group}_{convs}"

    def forward(self, image: torch.Tensor, attention: torch.Tensor, until: int = 5) -> dict[int, GroupFeatures]:
        """Run conv groups 1..`until` on `image` (N, 3, H, W) with `attention` (N, 1, H', W') in [0, 1];
        return the enhanced groups' feature maps."""
        out: dict[int, GroupFeatures] = {}
        group, first, x = 1, None, image
        for layer in self.features:
            if isinstance(layer, nn.MaxPool2d):
                if group in self.groups:
                    enhanced = self.enhance(x, attention, first)
                    pooled = F.adaptive_max_pool2d(attention, x.shape[-2:])
                    out[group] = GroupFeatures(first, x, pooled, enhanced)
                    x = enhanced
                if group == until:
                    break
                group, first = group + 1, None
            x = layer(x)
            if isinstance(layer, nn.ReLU) and first is None:
                first = x  # the next conv makes a new tensor, so an in-place ReLU later cannot change this
        return out


def flat_features(model: nn.Module) -> nn.Sequential:
    """A network's convolutional part as one flat stack of conv, batch-norm, ReLU and max-pool layers
    (our face VGG nests them in conv1..convN blocks; torchvision's VGG already is flat)."""
    return nn.Sequential(*[m for m in model.features.modules() if not list(m.children())]).eval()


def random_vgg16_features(seed: int = 0) -> nn.Sequential:
    """The conv layers of the registry's VGG16 with random weights, the same on every run: a stand-in when
    no trained expression model is installed."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build_model(STAND_IN_ARCH, num_classes=7).features.eval()
