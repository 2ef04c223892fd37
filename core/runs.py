"""The runs of one visitor's session side by side, and the lecture's transfer-learning comparison.

A `PlannedRun` is what the page starts: a config, where its weights come from, and the data it sees.
When its job ends it becomes a `RunRecord` with its per-epoch curves and time, small enough to keep
every run of a session in memory (no weights, no images). `comparison_plan` turns the page's settings
into the lecture's three runs ("实验对比 - 是否有用?"): random weights, the bundled model with only its
fully connected layers trained (little data, similar data: update the FC layers), and the whole bundled
model fine-tuned, with the same epochs, seed and everything else.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from core.checkpoint import Checkpoint
from core.jobs import Job
from core.starting_point import StartingPoint
from core.train import EpochRecord, TrainConfig
from models.registry import group_names

FC_GROUPS = ("fc", "head")  # the fully connected layers of every registered network (resnet18 has only a head)
COMPARISON = ("scratch", "fc", "whole")  # the lecture's rows, in its order


@dataclass(frozen=True)
class PlannedRun:
    start: str  # one of core.starting_point.STARTS
    config: TrainConfig
    data: str  # the page's data source: "fer2013", "ferplus" or "zip"
    images: tuple[int, int]  # (training, validation) images
    name_key: str | None = None  # a string key naming the run (the comparison's rows); None: "Run n"


@dataclass(frozen=True)
class RunRecord:
    """An ended run: its number in the session (and colour), what it was, its curves and its time."""

    number: int
    plan: PlannedRun
    epochs: tuple[EpochRecord, ...]
    status: str  # finished, stopped or failed
    minutes: float

    @property
    def best(self) -> EpochRecord:
        """The epoch of the highest validation accuracy (the first of equals), whose checkpoint was kept."""
        return max(self.epochs, key=lambda record: record.val_accuracy)


def record_run(number: int, plan: PlannedRun, job: Job) -> RunRecord | None:
    """What is kept of an ended job: nothing when it never validated an epoch (skipped, or stopped or
    failed in its first one)."""
    if job.running:
        raise ValueError("the job has not ended")
    epochs = tuple(job.progress.epochs)
    if not epochs:
        return None
    return RunRecord(number, plan, epochs, job.progress.status, job.minutes)


def augmentation_kind(spec: dict | None) -> str:
    """How a config augments, as the page's choice names it: "default", "none" or "page" (a pipeline)."""
    if spec is None:
        return "default"
    return "page" if spec.get("ops") else "none"


def comparison_plan(base: PlannedRun, bundled: StartingPoint) -> list[PlannedRun]:
    """The lecture's three runs on `base`'s data with its settings (epochs, seed, rate, batch, balancing,
    augmentation): (1) random weights, (2) `bundled` with every group but the fully connected ones frozen,
    (3) `bundled` fine-tuned whole. All three are `bundled`'s network, so only the start and the frozen
    layers differ; learning-rate multipliers are kept for the groups that network has."""
    if bundled.init is None:
        raise ValueError("the bundled model could not be read")
    groups = group_names(bundled.arch, bundled.arch_args)
    network = replace(base.config, arch=bundled.arch, arch_args=dict(bundled.arch_args), pretrained=False,
                      lr_multipliers={name: value for name, value in base.config.lr_multipliers.items()
                                      if name in groups})
    convolutions = tuple(name for name in groups if name not in FC_GROUPS)
    configs = {
        "scratch": replace(network, freeze=(), init_checkpoint=None),
        "fc": replace(network, freeze=convolutions, init_checkpoint=bundled.init_checkpoint),
        "whole": replace(network, freeze=(), init_checkpoint=bundled.init_checkpoint),
    }
    return [replace(base, start="scratch" if kind == "scratch" else "bundled", config=configs[kind],
                    name_key=f"runs_compare_{kind}") for kind in COMPARISON]


def inits(plans: list[PlannedRun], bundled: StartingPoint) -> list[Checkpoint | None]:
    """The in-memory weights each planned run starts from: the bundled model's, or none."""
    return [bundled.init if plan.start == "bundled" else None for plan in plans]
