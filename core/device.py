"""Which compute device training and inference use, described for people."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda", "mps" or "cpu"
    name: str
    memory_bytes: int | None
    threads: int


def best_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device() -> DeviceInfo:
    device = best_device()
    threads = torch.get_num_threads()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        return DeviceInfo("cuda", props.name, int(props.total_memory), threads)
    if device.type == "mps":
        return DeviceInfo("mps", "Apple MPS", None, threads)
    return DeviceInfo("cpu", "CPU", None, threads)
