"""Our checkpoint format: weights plus a JSON-able metadata dict, loaded only with weights_only=True."""
from __future__ import annotations

import io
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import CheckpointError
from models.registry import ARCHITECTURES, build_model, check_args

BUNDLED_CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "checkpoints" / "fer_face_vgg.pt"
BUNDLED_CARD = BUNDLED_CHECKPOINT.parents[1] / "README.md"  # its model card
FORMAT = "facelab-checkpoint"
VERSION = 1
REQUIRED = ("arch", "arch_args", "classes", "input_size", "channels", "mean", "std")
MAX_CLASS_NAME = 64


@dataclass(frozen=True)
class Checkpoint:
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.meta["classes"])

    def build(self) -> nn.Module:
        """The network with these weights, in eval mode, on the CPU."""
        try:
            model = build_model(self.meta["arch"], len(self.classes), **self.meta["arch_args"])
            model.load_state_dict(self.state_dict)
        except (RuntimeError, TypeError, ValueError):
            raise CheckpointError("err_ckpt_mismatch", arch=self.meta["arch"]) from None
        return model.eval()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_meta(meta: Any) -> None:
    """CheckpointError unless every field has the type and range our own checkpoints write, so that
    nothing crafted reaches the code that builds or runs a network."""
    if not isinstance(meta, dict) or meta.get("version") != VERSION or any(key not in meta for key in REQUIRED):
        raise CheckpointError("err_ckpt_not_ours")
    if not isinstance(meta["arch"], str) or meta["arch"] not in ARCHITECTURES:
        raise CheckpointError("err_ckpt_unknown_arch", arch=str(meta["arch"])[:40])
    architecture = ARCHITECTURES[meta["arch"]]
    classes, arch_args = meta["classes"], meta["arch_args"]
    valid = (isinstance(classes, list) and all(isinstance(c, str) and 0 < len(c) <= MAX_CLASS_NAME for c in classes)
             and len(set(classes)) == len(classes)
             and isinstance(arch_args, dict)
             and meta["input_size"] == architecture.input_size and not isinstance(meta["input_size"], bool)
             and meta["channels"] == architecture.channels and not isinstance(meta["channels"], bool)
             and all(isinstance(meta[key], list) and len(meta[key]) == architecture.channels
                     and all(_is_number(v) for v in meta[key]) for key in ("mean", "std")))
    if not valid:
        raise CheckpointError("err_ckpt_not_ours")
    try:
        check_args(meta["arch"], len(classes), arch_args)
    except ValueError:
        raise CheckpointError("err_ckpt_not_ours") from None


def _check_weights(state: Any, meta: dict[str, Any]) -> None:
    """CheckpointError unless the tensors have exactly the names and shapes of the network the metadata
    names, compared with a copy built on the meta device (no memory, no time), before any real build."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("err_ckpt_not_ours")
    with torch.device("meta"):
        expected = build_model(meta["arch"], len(meta["classes"]), **meta["arch_args"]).state_dict()
    if {k: tuple(v.shape) for k, v in state.items()} != {k: tuple(v.shape) for k, v in expected.items()}:
        raise CheckpointError("err_ckpt_mismatch", arch=meta["arch"])


def make_meta(arch: str, arch_args: dict[str, Any], classes: tuple[str, ...] | list[str], **extra: Any) -> dict:
    architecture = ARCHITECTURES[arch]
    return {"format": FORMAT, "version": VERSION, "arch": arch, "arch_args": dict(arch_args),
            "classes": list(classes), "input_size": architecture.input_size, "channels": architecture.channels,
            "mean": list(architecture.mean), "std": list(architecture.std)} | extra


def checkpoint_bytes(model: nn.Module, meta: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "meta_json": json.dumps(meta), "state_dict": state}, buffer)
    return buffer.getvalue()


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(checkpoint_bytes(model, meta))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(source: str | Path | bytes) -> Checkpoint:
    """Read one of our checkpoints from a path or bytes; anything else is a CheckpointError."""
    try:
        stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    except OSError:
        raise CheckpointError("err_ckpt_missing", path=str(source)) from None
    try:
        with stream:
            payload = torch.load(stream, map_location="cpu", weights_only=True)
    except Exception:  # unpickling refused, not a zip, truncated...
        raise CheckpointError("err_ckpt_not_ours") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError("err_ckpt_not_ours")
    try:
        meta = json.loads(payload["meta_json"])
        state = payload["state_dict"]
    except (KeyError, TypeError, ValueError, RecursionError):  # RecursionError: deeply nested JSON
        raise CheckpointError("err_ckpt_not_ours") from None
    _check_meta(meta)
    _check_weights(state, meta)
    return Checkpoint(state, meta)


def card_test_accuracy(card: str) -> dict[str, float]:
    """A model card's lines 'Test accuracy, <labels> labels: **NN.NN%**' as {labels: fraction}."""
    lines = re.findall(r"Test accuracy, (.+?) labels: \*\*(\d+(?:\.\d+)?)%\*\*", card)
    return {labels: round(float(percent) / 100, 4) for labels, percent in lines}
