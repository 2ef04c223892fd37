"""From an architecture name to a network, its input format and its named layer groups.

Layer groups (conv1, conv2, ..., fc, head) are what the fine-tuning controls freeze and give
their own learning rates.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.vgg import FaceVGG

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedUnavailable(RuntimeError):
    """ImageNet weights are not in the local torch cache (and cannot be downloaded here)."""


@dataclass(frozen=True)
class Architecture:
    build: Callable[..., nn.Module]
    input_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    groups: Callable[[nn.Module], dict[str, nn.Module]]
    defaults: dict[str, Any] = field(default_factory=dict)
    pretrained_weights: str | None = None  # torchvision weights enum, "VGG16_Weights.IMAGENET1K_V1"


def _face_vgg_groups(model: nn.Module) -> dict[str, nn.Module]:
    groups = dict(model.features.named_children())
    groups["fc"] = model.classifier.fc6
    groups["head"] = model.classifier.fc8
    return groups


def _vgg_groups(model: nn.Module) -> dict[str, nn.Module]:
    groups, block, index = {}, [], 1
    for layer in model.features:
        block.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            groups[f"conv{index}"] = nn.Sequential(*block)
            block, index = [], index + 1
    groups["fc"] = nn.ModuleList([model.classifier[0], model.classifier[3]])
    groups["head"] = model.classifier[6]
    return groups


def _resnet_groups(model: nn.Module) -> dict[str, nn.Module]:
    return {"conv1": nn.ModuleList([model.conv1, model.bn1]), "layer1": model.layer1, "layer2": model.layer2,
            "layer3": model.layer3, "layer4": model.layer4, "head": model.fc}


def _torchvision_vgg(name: str) -> Callable[..., nn.Module]:
    def build(num_classes: int = 7, fc7: int = 4096, dropout: float = 0.5, **_: Any) -> nn.Module:
        import torchvision

        model = getattr(torchvision.models, name)(weights=None, dropout=dropout)
        model.classifier[3] = nn.Linear(4096, fc7)
        model.classifier[6] = nn.Linear(fc7, num_classes)
        return model

    return build


def _resnet18(num_classes: int = 7, **_: Any) -> nn.Module:
    import torchvision

    model = torchvision.models.resnet18(weights=None)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


ARCHITECTURES: dict[str, Architecture] = {
    "face_vgg": Architecture(FaceVGG, 48, 1, (0.5,), (0.25,), _face_vgg_groups,
                             {"width": 32, "blocks": 4, "depth": 2, "hidden": 256, "dropout": 0.5}),
    "vgg16": Architecture(_torchvision_vgg("vgg16"), 224, 3, IMAGENET_MEAN, IMAGENET_STD, _vgg_groups,
                          {"fc7": 4096, "dropout": 0.5}, "VGG16_Weights.IMAGENET1K_V1"),
    "vgg11_bn": Architecture(_torchvision_vgg("vgg11_bn"), 224, 3, IMAGENET_MEAN, IMAGENET_STD, _vgg_groups,
                             {"fc7": 4096, "dropout": 0.5}, "VGG11_BN_Weights.IMAGENET1K_V1"),
    "resnet18": Architecture(_resnet18, 224, 3, IMAGENET_MEAN, IMAGENET_STD, _resnet_groups, {},
                             "ResNet18_Weights.IMAGENET1K_V1"),
}

# The course's recipe on VGG16: conv1-conv4 frozen, conv5 trained, fc7 of 2048 units, a new 7-way fc8.
COURSE_RECIPE = {"arch": "vgg16", "arch_args": {"fc7": 2048}, "freeze": ("conv1", "conv2", "conv3", "conv4")}


# The largest values an architecture argument may take, so that a checkpoint's metadata or a command
# line cannot ask for a network that exhausts memory.
ARG_LIMITS: dict[str, tuple[float, float]] = {
    "width": (4, 128), "blocks": (1, 5), "depth": (1, 4), "hidden": (8, 4096), "dropout": (0.0, 0.9),
    "fc7": (8, 4096),
}
MAX_CLASSES = 1000


def check_args(name: str, num_classes: int, arch_args: dict[str, Any]) -> None:
    """ValueError unless every argument is known to `name` and within ARG_LIMITS."""
    architecture = ARCHITECTURES[name]
    unknown = set(arch_args) - set(architecture.defaults)
    if unknown:
        raise ValueError(f"{name} has no argument(s) {', '.join(sorted(unknown))}")
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"{num_classes} classes is outside 2..{MAX_CLASSES}")
    for key, value in arch_args.items():
        low, high = ARG_LIMITS[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(f"{key}={value!r} is outside {low}..{high}")


def build_model(name: str, num_classes: int, **arch_args: Any) -> nn.Module:
    check_args(name, num_classes, arch_args)
    architecture = ARCHITECTURES[name]
    return architecture.build(num_classes=num_classes, **(architecture.defaults | arch_args))


def group_names(name: str, arch_args: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The layer group names of an architecture, without building it."""
    args = ARCHITECTURES[name].defaults | (arch_args or {})
    if name == "face_vgg":
        return tuple(f"conv{i}" for i in range(1, args["blocks"] + 1)) + ("fc", "head")
    if name == "resnet18":
        return ("conv1", "layer1", "layer2", "layer3", "layer4", "head")
    return ("conv1", "conv2", "conv3", "conv4", "conv5", "fc", "head")


def layer_groups(name: str, model: nn.Module) -> dict[str, nn.Module]:
    """Named groups in input-to-output order; every parameter belongs to exactly one."""
    return ARCHITECTURES[name].groups(model)


def pretrained_path(name: str) -> Path | None:
    """Where torchvision keeps this architecture's ImageNet weights, if it has any."""
    weights_name = ARCHITECTURES[name].pretrained_weights
    if weights_name is None:
        return None
    import torchvision

    enum_name, member = weights_name.split(".")
    url = getattr(getattr(torchvision.models, enum_name), member).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def load_pretrained(name: str, model: nn.Module) -> None:
    """Copy ImageNet weights from the torch cache into `model`, except the new layers."""
    path = pretrained_path(name)
    if path is None or not path.exists():
        raise PretrainedUnavailable(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = model.state_dict()
    model.load_state_dict({k: v for k, v in state.items() if k in own and own[k].shape == v.shape}, strict=False)
