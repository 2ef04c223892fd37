"""Where a fine-tuning run starts: which weights, which network, and what to tell the visitor.

The page offers five starts; `starting_point` turns the visitor's choice into what `TrainConfig` and
`train(init=...)` need. A checkpoint start decides the network (its architecture and arguments win
over the page's), and a start that cannot go ahead says why with a message key, never a label.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.checkpoint import BUNDLED_CHECKPOINT, Checkpoint, load_checkpoint
from core.errors import UserError
from models.registry import COURSE_RECIPE, pretrained_path

ROOT = Path(__file__).resolve().parents[1]

STARTS = ("scratch", "imagenet", "bundled", "session", "upload")
CHECKPOINT_STARTS = ("bundled", "session", "upload")


@dataclass(frozen=True)
class Note:
    """A message for the visitor: an i18n key, its parameters, and how loud (caption, info or warning)."""

    level: str
    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StartingPoint:
    arch: str
    arch_args: dict[str, Any]
    init: Checkpoint | None = None  # the weights to start from, held in memory
    # For TrainConfig: a file the command line can load again (the bundled model, as a path inside the
    # repo), or None for weights that only lived in this session's memory. Never a label.
    init_checkpoint: str | None = None
    pretrained: bool = False  # ImageNet weights from the torch cache
    course: bool = False  # the course recipe (its network arguments and frozen groups) applies
    can_train: bool = True
    error: UserError | None = None  # the checkpoint could not be read
    notes: tuple[Note, ...] = ()


def starting_point(start: str, arch: str, arch_args: dict[str, Any], course: bool = False, hosted: bool = False,
                   session_checkpoint: bytes | None = None, upload: bytes | None = None,
                   bundled: str | Path | bytes = BUNDLED_CHECKPOINT) -> StartingPoint:
    """The weights and network for `start`, one of STARTS. `session_checkpoint` is this session's last
    trained checkpoint, `upload` a visitor's file; a missing or unreadable one means it cannot train."""
    if start not in STARTS:
        raise ValueError(f"unknown start {start!r}; expected one of {STARTS}")
    error = None
    if start in CHECKPOINT_STARTS:
        init, error = _read({"bundled": bundled, "session": session_checkpoint, "upload": upload}[start])
        if init is not None:
            reloadable = BUNDLED_CHECKPOINT.relative_to(ROOT).as_posix() if start == "bundled" and \
                bundled == BUNDLED_CHECKPOINT else None
            return _from_checkpoint(arch, init, reloadable)
    arch_args = arch_args | COURSE_RECIPE["arch_args"] if course else dict(arch_args)
    if start in CHECKPOINT_STARTS:  # no checkpoint: the page's network stays, and it cannot train
        notes = () if error is not None else (Note("info", "ft_no_checkpoint"),)  # the error says enough
        return StartingPoint(arch, arch_args, course=course, can_train=False, error=error, notes=notes)
    if start == "scratch":
        return StartingPoint(arch, arch_args, course=course)
    weights = pretrained_path(arch)
    if weights is not None and weights.exists():
        return StartingPoint(arch, arch_args, pretrained=True, course=course)
    # Trains from scratch instead, after saying so; a hosted server never shows its folders.
    note = (Note("warning", "ft_imagenet_missing_hosted") if hosted
            else Note("warning", "ft_imagenet_missing", {"path": str(weights) if weights else "-"}))
    return StartingPoint(arch, arch_args, course=course, notes=(note,))


def _read(source: str | Path | bytes | None) -> tuple[Checkpoint | None, UserError | None]:
    try:
        return (load_checkpoint(source) if source else None), None
    except UserError as error:
        return None, error


def _from_checkpoint(arch: str, init: Checkpoint, init_checkpoint: str | None) -> StartingPoint:
    """The checkpoint's own network; the course recipe does not apply to it."""
    notes = [Note("caption", "ft_init_info", {"arch": init.meta["arch"], "classes": ", ".join(init.classes)})]
    if init.meta["arch"] != arch:
        notes.append(Note("info", "ft_arch_from_checkpoint", {"arch": init.meta["arch"]}))
    return StartingPoint(init.meta["arch"], dict(init.meta["arch_args"]), init=init, init_checkpoint=init_checkpoint,
                         notes=tuple(notes))
