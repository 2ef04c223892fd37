"""Training and fine-tuning: one engine for the page, the command line and DistributedDataParallel.

    python -m core.train --data $FACELAB_DATA_DIR/fer2013.npz --epochs 30 --out runs/fer.pt

The page runs `train()` in a background thread and reads the `Progress` object it fills; the
command line prints a progress bar. A `Stop` event ends the run within one batch, keeping the
best checkpoint so far. `train()` reads top to bottom: `setup()` builds the run, then each epoch is
`train_one_epoch()` and, on rank 0, `validate_and_checkpoint()` (scoring lives in core.evaluate).
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core import augment as aug
from core.batch_augment import augment_batch
from core.checkpoint import Checkpoint, load_checkpoint, make_meta, save_checkpoint
from core.data import LABEL_SOURCES, SPLIT_RULES, Splits, class_weights, load_data, sample_weights
from core.device import best_device
from core.errors import TrainingError, UserError
from core.evaluate import evaluate_model, validation_sample
from core.metrics import Metrics
from core.presets import default_augmentation, to_network_input
from models.registry import (
    ARCHITECTURES,
    PretrainedUnavailable,
    build_model,
    check_args,
    group_names,
    layer_groups,
    load_pretrained,
    pretrained_path,
)

BALANCING = ("none", "weighted_loss", "sampler")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "step", "onecycle", "constant")
LOGGER = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: str = ""
    labels: str = "fer2013"  # for an .npz: its own labels, or "ferplus" votes as soft targets
    arch: str = "face_vgg"
    arch_args: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    step_size: int = 10
    step_gamma: float = 0.1
    freeze: tuple[str, ...] = ()
    lr_multipliers: dict[str, float] = field(default_factory=dict)
    balance: str = "none"
    augment: dict[str, Any] | None = None  # a pipeline spec; None = default_augmentation, {"ops": []} = none
    label_smoothing: float = 0.0
    amp: bool = True
    seed: int = 0
    init_checkpoint: str | None = None
    pretrained: bool = False
    val_fraction: float = 0.2
    split_rule: str = "auto"  # class folders: how validation images are chosen (core.data.split_indices)
    split_separator: str = "_"  # with split "prefix": a file name's group is what comes before it
    out: str = "runs/model.pt"
    resume: bool = False  # continue from the state saved beside `out` after each epoch
    max_minutes: float | None = None  # wall-time cap: the job stops itself, like Stop, when it is reached

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"freeze": list(self.freeze)}


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    macro_f1: float
    images_per_s: float
    seconds: float
    val_images: int = 0  # how many validation images the figures cover: fewer after a Stop in epoch 1


@dataclass(frozen=True)
class Validation:
    """One validation pass: its metrics, and the images it scored with their labels and class scores, for
    the page's confusion-matrix drill-down."""

    metrics: Metrics
    images: np.ndarray  # uint8 N×C×H×W, a view of the validation set (no copy)
    labels: np.ndarray
    probabilities: np.ndarray  # float32 N×classes (float16 would break near-ties unlike the metrics did)


@dataclass
class Progress:
    """What a running job has done so far; written by the worker, read by the page."""

    total_epochs: int = 0
    batches_per_epoch: int = 0
    status: str = "starting"  # starting, running, finished, stopped, failed
    stop_reason: str | None = None  # "stop" (asked) or "time_limit" (the job's wall-time cap)
    val_size: int = 0  # images in the validation set
    epoch: int = 0
    batch: int = 0
    iteration_loss: list[float] = field(default_factory=list)
    iteration_lr: list[float] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)
    images_per_s: float = 0.0
    eta_s: float | None = None
    memory_bytes: int = 0
    best_accuracy: float = -1.0
    best_epoch: int = 0
    best_validation: Validation | None = None  # of the best epoch, whose weights the checkpoint keeps
    last_validation: Validation | None = None  # one object, so a reader never sees the scores of one epoch
    # with the metrics of another
    checkpoint: str | None = None
    error: str | None = None
    classes: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.status in ("finished", "stopped", "failed")

    @property
    def last_metrics(self) -> Metrics | None:
        return self.last_validation.metrics if self.last_validation is not None else None

    @property
    def fraction(self) -> float:
        total = self.total_epochs * max(self.batches_per_epoch, 1)
        return min(1.0, ((self.epoch - 1) * self.batches_per_epoch + self.batch) / total) if total and self.epoch else 0.0

    def start(self, total_epochs: int, batches_per_epoch: int, classes: tuple[str, ...], val_size: int) -> None:
        self.total_epochs, self.batches_per_epoch = total_epochs, batches_per_epoch
        self.classes, self.val_size, self.status = classes, val_size, "running"

    def restore(self, best_accuracy: float, best_epoch: int, epochs: list[EpochRecord],
                checkpoint: str | None) -> None:
        """What a resumed run had done before."""
        self.best_accuracy, self.best_epoch, self.epochs = best_accuracy, best_epoch, epochs
        self.checkpoint = checkpoint

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.batch = epoch, 0

    def record_batch(self, index: int, loss: float, lr: float, images_per_s: float, eta_s: float,
                     memory_bytes: int) -> None:
        self.batch = index
        self.iteration_loss.append(loss)
        self.iteration_lr.append(lr)
        self.images_per_s, self.eta_s, self.memory_bytes = images_per_s, eta_s, memory_bytes

    def record_epoch(self, record: EpochRecord, validation: Validation) -> bool:
        """Add a validated epoch; whether it is the best so far."""
        self.epochs.append(record)
        self.last_validation = validation
        metrics = validation.metrics
        if metrics.accuracy <= self.best_accuracy:
            return False
        self.best_accuracy, self.best_epoch, self.best_validation = metrics.accuracy, record.epoch, validation
        return True

    def saved(self, checkpoint: str) -> None:
        self.checkpoint = checkpoint

    def stopping(self, reason: str) -> None:
        self.stop_reason = reason

    def fail(self, error: str | None = None) -> None:
        """The job ended on an error: a user error (shown from the job) or an unexpected one's class name."""
        self.error = error
        self.status = "failed"

    def finish(self, stopped: bool) -> None:
        self.eta_s = 0.0
        if stopped:
            self.stop_reason = self.stop_reason or "stop"
        self.status = "stopped" if stopped else "finished"


# --------------------------------------------------------------------------- pieces


def check_arch_args(arch: str, arch_args: dict[str, Any], num_classes: int = 7) -> None:
    try:
        check_args(arch, num_classes, arch_args)
    except ValueError as error:
        raise TrainingError("err_arch_args", arch=arch, problem=str(error),
                            known=", ".join(ARCHITECTURES[arch].defaults) or "-") from None


def check_groups(config: TrainConfig, arch: str, arch_args: dict[str, Any]) -> None:
    """Frozen groups and learning-rate multipliers must name the network's layer groups."""
    known = group_names(arch, arch_args)
    unknown = (set(config.freeze) | set(config.lr_multipliers)) - set(known)
    if unknown:
        raise TrainingError("err_unknown_groups", names=", ".join(sorted(unknown)), known=", ".join(known))


def prepare_model(config: TrainConfig, classes: tuple[str, ...],
                  init: Checkpoint | None = None) -> tuple[nn.Module, str, dict[str, Any]]:
    """Build the network: from a checkpoint of ours (`init`, or the file `config.init_checkpoint`;
    a new head if the classes differ), with ImageNet weights from the torch cache, or from scratch."""
    if init is not None or config.init_checkpoint:
        checkpoint = init if init is not None else load_checkpoint(config.init_checkpoint)
        arch, arch_args = checkpoint.meta["arch"], dict(checkpoint.meta["arch_args"])
        model = checkpoint.build()
        if tuple(checkpoint.classes) != tuple(classes):
            head = layer_groups(arch, model)["head"]
            _replace_head(model, head, transferred_head(head, checkpoint.classes, classes))
        return model, arch, arch_args
    check_arch_args(config.arch, config.arch_args, len(classes))
    arch_args = ARCHITECTURES[config.arch].defaults | config.arch_args
    model = build_model(config.arch, len(classes), **arch_args)
    if config.pretrained:
        if pretrained_path(config.arch) is None:
            raise TrainingError("err_pretrained_none", arch=config.arch)
        try:
            load_pretrained(config.arch, model)
        except PretrainedUnavailable as missing:
            raise TrainingError("err_pretrained_missing", arch=config.arch, path=str(missing)) from None
    return model, config.arch, arch_args


@torch.no_grad()
def transferred_head(old: nn.Linear, old_classes: tuple[str, ...], classes: tuple[str, ...]) -> nn.Linear:
    """A new class layer for `classes` that keeps the old layer's weights of every class both share
    (7 FER2013 expressions → 8 FER+ ones keeps seven rows); the other rows start fresh."""
    new = nn.Linear(old.in_features, len(classes))
    for row, name in enumerate(classes):
        if name in old_classes:
            new.weight[row] = old.weight[old_classes.index(name)]
            new.bias[row] = old.bias[old_classes.index(name)]
    return new


def _replace_head(model: nn.Module, old: nn.Module, new: nn.Module) -> None:
    for parent in model.modules():
        for name, child in parent.named_children():
            if child is old:
                setattr(parent, name, new)
                return


def freeze_groups(model: nn.Module, arch: str, frozen: tuple[str, ...]) -> dict[str, nn.Module]:
    groups = layer_groups(arch, model)
    for name, module in groups.items():
        for parameter in module.parameters():
            parameter.requires_grad = name not in frozen
    return groups


def set_train_mode(model: nn.Module, groups: dict[str, nn.Module], frozen: tuple[str, ...]) -> None:
    """Train mode, except that frozen groups keep their batch-norm statistics fixed."""
    model.train()
    for name in frozen:
        groups[name].eval()


def make_optimizer(config: TrainConfig, groups: dict[str, nn.Module]) -> torch.optim.Optimizer:
    """One parameter group per layer group, each at base lr × its multiplier; frozen ones left out."""
    param_groups = []
    for name, module in groups.items():
        params = [p for p in module.parameters() if p.requires_grad]
        if params:
            param_groups.append({"params": params, "lr": config.lr * config.lr_multipliers.get(name, 1.0),
                                 "name": name})
    if not param_groups:
        raise TrainingError("err_all_frozen")
    if config.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, nesterov=config.momentum > 0)
    optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer(param_groups, lr=config.lr, weight_decay=config.weight_decay)


def make_schedule(config: TrainConfig, optimizer: torch.optim.Optimizer,
                  steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch."""
    schedulers = torch.optim.lr_scheduler
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        return schedulers.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total)
    if config.schedule == "cosine":
        return _warmup_cosine(optimizer, warmup=min(steps_per_epoch, total // 10), total=total)
    if config.schedule == "step":  # the step size is in epochs, the schedule counts batches
        return schedulers.StepLR(optimizer, step_size=config.step_size * steps_per_epoch, gamma=config.step_gamma)
    return schedulers.LambdaLR(optimizer, lambda step: 1.0)


def _warmup_cosine(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Batch s of the first `warmup` trains at (s + 1) / warmup of the rate, then a cosine falls to 0 at `total`."""
    schedulers = torch.optim.lr_scheduler
    cosine = schedulers.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup))
    if warmup == 0:
        return cosine
    linear = schedulers.LinearLR(optimizer, start_factor=1 / warmup, total_iters=max(1, warmup - 1))
    return schedulers.SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


def memory_in_use(device: torch.device) -> int:
    """Peak bytes: of the GPU's memory on CUDA, else of the whole server process (Linux reports KiB)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@functools.lru_cache(maxsize=16)
def _footprint(arch: str, arch_args_json: str, num_classes: int) -> tuple[int, int]:
    """(parameters, activation values stored per image) of a network, counted on the meta device
    (shapes only: no memory is used and no time is spent on weights)."""
    architecture = ARCHITECTURES[arch]
    activations = []
    with torch.device("meta"), torch.no_grad():
        model = build_model(arch, num_classes, **(architecture.defaults | json.loads(arch_args_json)))
        hooks = [m.register_forward_hook(lambda _m, _i, out: activations.append(out.numel()))
                 for m in model.modules() if not list(m.children())]
        model.eval()(torch.zeros(1, architecture.channels, architecture.input_size, architecture.input_size))
    for hook in hooks:
        hook.remove()
    return sum(p.numel() for p in model.parameters()), sum(activations)


def network_parameters(arch: str, arch_args: dict[str, Any], num_classes: int) -> int:
    return _footprint(arch, json.dumps(arch_args, sort_keys=True), num_classes)[0]


def estimate_batch_memory(arch: str, arch_args: dict[str, Any], batch_size: int, num_classes: int = 7,
                          device: torch.device | None = None, measure: bool = True) -> tuple[int, bool]:
    """Bytes one training step needs, and whether it was measured (a trial step on CUDA; pass
    measure=False while a job uses the GPU) rather than estimated (weights, gradients, two optimizer
    buffers, stored activations and their gradients)."""
    device = device or best_device()
    if device.type == "cuda" and measure:
        try:
            return _trial_step(arch, arch_args, batch_size, num_classes, device), True
        except torch.cuda.OutOfMemoryError:
            pass  # it does not fit; the estimate below says how much it would need
        finally:
            torch.cuda.empty_cache()  # the trial's tensors died with its frame: hand their memory back
    parameters, activations = _footprint(arch, json.dumps(arch_args, sort_keys=True), num_classes)
    return int(4 * (4 * parameters + 2 * batch_size * activations)), False


def _trial_step(arch: str, arch_args: dict[str, Any], batch_size: int, num_classes: int, device: torch.device) -> int:
    """Peak bytes of one forward and backward pass on `device`, beyond what was allocated before it."""
    architecture = ARCHITECTURES[arch]
    model = build_model(arch, num_classes, **(architecture.defaults | arch_args)).to(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    x = torch.randn(batch_size, architecture.channels, architecture.input_size, architecture.input_size, device=device)
    model(x).logsumexp(dim=1).mean().backward()
    return int(torch.cuda.max_memory_allocated(device) - before)


def _batches(count: int, batch_size: int, rng: np.random.Generator, weights: np.ndarray | None,
             rank: int = 0, world: int = 1) -> list[np.ndarray]:
    """Index batches for one epoch: a shuffle, or weighted draws with replacement; each rank
    takes its own share."""
    if weights is not None:
        order = rng.choice(count, size=count, replace=True, p=weights / weights.sum())
    else:
        order = rng.permutation(count)
    order = order[:len(order) - len(order) % world][rank::world]  # equal shares: every rank runs the same steps
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size) if len(order[i:i + batch_size]) > 1]


def _state_path(out: Path) -> Path:
    return out.with_name(out.stem + ".state.pt")


# --------------------------------------------------------------------------- the run


@dataclass
class Run:
    """What `setup` builds for one run; the epoch and validation steps read it."""

    config: TrainConfig
    splits: Splits
    device: torch.device
    model: nn.Module  # the plain network: what is validated and saved
    network: nn.Module  # what trains: `model`, or `model` inside DistributedDataParallel
    arch: str
    arch_args: dict[str, Any]
    groups: dict[str, nn.Module]
    spec: aug.PipelineSpec
    rng: np.random.Generator  # augmentation draws, different on every rank
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loss_weights: torch.Tensor | None
    sampler: np.ndarray | None  # per-image draw weights, for balance="sampler"
    steps_per_epoch: int
    use_amp: bool
    distributed: bool = False
    rank: int = 0
    world: int = 1

    @property
    def out(self) -> Path:
        return Path(self.config.out)


@dataclass
class EpochTotals:
    seen: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    started: float = field(default_factory=time.perf_counter)


def setup(config: TrainConfig, splits: Splits, device: torch.device, init: Checkpoint | None = None) -> Run:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1 and torch.distributed.is_initialized()
    rank = torch.distributed.get_rank() if distributed else 0
    world = torch.distributed.get_world_size() if distributed else 1
    torch.manual_seed(config.seed)
    model, arch, arch_args = prepare_model(config, splits.classes, init)
    check_groups(config, arch, arch_args)
    groups = freeze_groups(model, arch, config.freeze)
    model.to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    spec = (default_augmentation(ARCHITECTURES[arch].input_size) if config.augment is None
            else aug.spec_from_dict(config.augment))
    counts = splits.train.counts()
    loss_weights = (torch.tensor(class_weights(counts), dtype=torch.float32, device=device)
                    if config.balance == "weighted_loss" else None)
    sampler = sample_weights(splits.train.y, counts) if config.balance == "sampler" else None
    steps_per_epoch = len(_batches(len(splits.train), config.batch_size, np.random.default_rng(0), None, rank, world))
    optimizer = make_optimizer(config, groups)
    use_amp = config.amp and device.type == "cuda"
    return Run(config, splits, device, model, nn.parallel.DistributedDataParallel(model) if distributed else model,
               arch, arch_args, groups, spec, np.random.default_rng([config.seed, rank]), optimizer,
               make_schedule(config, optimizer, steps_per_epoch), torch.amp.GradScaler("cuda", enabled=use_amp),
               loss_weights, sampler, steps_per_epoch, use_amp, distributed, rank, world)


def _stopped_everywhere(stop: threading.Event, distributed: bool, device: torch.device) -> bool:
    """Whether any rank was asked to stop (Stop or its wall-time cap): then every rank ends at the same
    batch, so none is left waiting in a collective operation."""
    if distributed:
        flag = torch.tensor([float(stop.is_set())], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item():
            stop.set()
    return stop.is_set()


def train_step(run: Run, batch: np.ndarray) -> tuple[float, int]:
    """One optimizer step on the training images `batch` indexes: the loss, and how many it got right."""
    data, device = run.splits.train, run.device
    x = torch.from_numpy(data.x[batch]).to(device, non_blocking=True)
    y = torch.from_numpy(data.y[batch]).to(device, non_blocking=True)
    target = y if data.targets is None else torch.from_numpy(data.targets[batch]).to(device)
    x = to_network_input(augment_batch(x, run.spec, run.rng) if run.spec.ops else x.float(), run.arch)
    if device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.float16, enabled=run.use_amp):
        logits = run.network(x)
        loss = F.cross_entropy(logits.float(), target, weight=run.loss_weights,
                               label_smoothing=run.config.label_smoothing)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.schedule.step()
    return loss.item(), int((logits.argmax(dim=1) == y).sum().item())


def train_one_epoch(run: Run, epoch: int, progress: Progress, stop: threading.Event, deadline: float) -> EpochTotals:
    """Every batch of one epoch, until Stop or the wall-time cap ends it on every rank."""
    config = run.config
    progress.start_epoch(epoch)
    set_train_mode(run.network, run.groups, config.freeze)
    totals = EpochTotals()
    order_rng = np.random.default_rng([config.seed, epoch])  # the same on every rank, whatever augmentation drew
    batches = _batches(len(run.splits.train), config.batch_size, order_rng, run.sampler, run.rank, run.world)
    for index, batch in enumerate(batches, 1):
        if time.monotonic() > deadline and not stop.is_set():
            progress.stopping("time_limit")
            stop.set()
        if _stopped_everywhere(stop, run.distributed, run.device):
            break
        loss, correct = train_step(run, batch)
        totals.seen += len(batch)
        totals.loss_sum += loss * len(batch)
        totals.correct += correct
        elapsed = time.perf_counter() - totals.started
        remaining = (config.epochs - epoch) * run.steps_per_epoch + (run.steps_per_epoch - index)
        progress.record_batch(index, loss, run.optimizer.param_groups[-1]["lr"],
                              images_per_s=totals.seen * run.world / max(elapsed, 1e-9),
                              eta_s=remaining * elapsed / index, memory_bytes=memory_in_use(run.device))
    return totals


def validate_and_checkpoint(run: Run, epoch: int, totals: EpochTotals, progress: Progress,
                            stop: threading.Event) -> None:
    """Rank 0's end of an epoch: score the validation set, keep the checkpoint when it is the best so
    far, and save the state to resume from."""
    config, val = run.config, run.splits.val
    metrics, val_loss, probabilities = evaluate_model(run.model, run.arch, val, run.device, config.batch_size, stop)
    if len(probabilities) < len(val):  # Stop came before or during validation
        if progress.checkpoint is not None:
            return
        # No checkpoint yet: score one more batch, spread over the classes, so the run keeps its weights.
        val = validation_sample(val, config.batch_size)
        metrics, val_loss, probabilities = evaluate_model(run.model, run.arch, val, run.device, config.batch_size)
    validated = len(probabilities)
    seen = max(totals.seen, 1)
    record = EpochRecord(epoch, totals.loss_sum / seen, totals.correct / seen, val_loss, metrics.accuracy,
                         metrics.macro_f1, progress.images_per_s, time.perf_counter() - totals.started, validated)
    LOGGER.info("epoch %d: train loss %.4f, val accuracy %.4f on %d images", epoch, record.train_loss,
                record.val_accuracy, validated)
    validation = Validation(metrics, val.x[:validated], val.y[:validated], probabilities)
    if progress.record_epoch(record, validation):
        _save_best(run, metrics, epoch)
        progress.saved(str(run.out))
    if config.resume:
        _save_state(run, epoch, progress)


def resume(run: Run, progress: Progress) -> int:
    """The last epoch the state beside `config.out` holds (0 when there is none), loaded into `run`."""
    path = _state_path(run.out)
    if not (run.config.resume and path.exists()):
        return 0
    state = torch.load(path, map_location="cpu", weights_only=True)
    run.model.load_state_dict(state["model"])
    # The schedule catches up on the fresh optimizer, so the rates follow this config's epoch count.
    _catch_up(run.schedule, state["schedule"]["last_epoch"])
    rates = [group["lr"] for group in run.optimizer.param_groups]
    run.optimizer.load_state_dict(state["optimizer"])
    for group, rate in zip(run.optimizer.param_groups, rates, strict=True):
        group["lr"] = rate
    run.scaler.load_state_dict(state["scaler"])
    if run.distributed:  # only rank 0 saved its generator: each rank draws its own stream again
        run.rng = np.random.default_rng([run.config.seed, run.rank, state["epoch"]])
    else:
        run.rng.bit_generator.state = json.loads(state["rng"])
    torch.set_rng_state(state["torch_rng"])
    progress.restore(state["best_accuracy"], state["best_epoch"],
                     [EpochRecord(**record) for record in json.loads(state["epochs"])],
                     str(run.out) if run.out.exists() else None)
    LOGGER.info("resuming %s after epoch %d", run.out.name, state["epoch"])
    return int(state["epoch"])


def _catch_up(schedule: torch.optim.lr_scheduler.LRScheduler, steps: int) -> None:
    with warnings.catch_warnings():  # no optimizer step comes between these schedule steps
        warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler.step\(\)` before", UserWarning)
        for _ in range(steps):
            schedule.step()


def _save_state(run: Run, epoch: int, progress: Progress) -> None:
    """Everything needed to resume after `epoch`, written atomically like the checkpoint."""
    path = _state_path(run.out)
    temporary = path.with_name(path.name + ".tmp")
    torch.save({"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                "schedule": run.schedule.state_dict(), "scaler": run.scaler.state_dict(), "epoch": epoch,
                "rng": json.dumps(run.rng.bit_generator.state), "torch_rng": torch.get_rng_state(),
                "best_accuracy": progress.best_accuracy, "best_epoch": progress.best_epoch,
                "epochs": json.dumps([asdict(e) for e in progress.epochs])}, temporary)
    os.replace(temporary, path)


def _save_best(run: Run, metrics: Metrics, epoch: int) -> None:
    # File names only: a checkpoint is downloaded by visitors, and must not tell them the server's folders.
    data = Path(run.splits.source).name
    meta = make_meta(run.arch, run.arch_args, run.splits.classes,
                     config=run.config.to_dict() | {"data": data, "out": run.out.name},
                     epoch=epoch, metrics={"val": metrics.to_dict()}, data=data)
    save_checkpoint(run.out, run.model, meta)


def train(config: TrainConfig, splits: Splits, progress: Progress | None = None,
          stop: threading.Event | None = None, device: torch.device | None = None,
          init: Checkpoint | None = None) -> Progress:
    """Train, validating after each epoch and keeping the best checkpoint at `config.out`.
    `init` is a checkpoint held in memory to start from (an upload is never written to disk)."""
    progress = progress if progress is not None else Progress()
    stop = stop if stop is not None else threading.Event()
    run = setup(config, splits, device or best_device(), init)
    progress.start(config.epochs, run.steps_per_epoch, splits.classes, len(splits.val))
    deadline = time.monotonic() + config.max_minutes * 60 if config.max_minutes else math.inf
    for epoch in range(resume(run, progress) + 1, config.epochs + 1):
        totals = train_one_epoch(run, epoch, progress, stop, deadline)
        # Stopped after the first epoch: keep the best checkpoint so far without another validation pass.
        # (Every rank knows the epoch; only rank 0 knows the checkpoint.)
        if totals.seen == 0 or (stop.is_set() and epoch > 1):
            break
        if run.rank == 0:
            validate_and_checkpoint(run, epoch, totals, progress, stop)
        if run.distributed:
            torch.distributed.barrier()
        if stop.is_set():
            break
    progress.finish(stopped=stop.is_set())
    return progress


# --------------------------------------------------------------------------- command line


def _console_bar(progress: Progress, stop: threading.Event, stream=sys.stderr) -> None:
    """A progress bar redrawn in place on a terminal; in a log file, one line a minute and one per epoch."""
    interactive = stream.isatty()
    last_line, last_time, last_epoch = "", 0.0, 0
    while not progress.done and not stop.wait(0.5):
        if not progress.epoch:
            continue
        filled = int(30 * progress.fraction)
        last = progress.epochs[-1] if progress.epochs else None
        val = f" val_acc {last.val_accuracy:.3f} f1 {last.macro_f1:.3f}" if last else ""
        loss = np.mean(progress.iteration_loss[-20:]) if progress.iteration_loss else float("nan")
        eta = f"{progress.eta_s / 60:.1f} min" if progress.eta_s else "?"
        line = (f"[{'#' * filled}{'.' * (30 - filled)}] epoch {progress.epoch}/{progress.total_epochs} "
                f"batch {progress.batch}/{progress.batches_per_epoch} loss {loss:.3f}{val} "
                f"{progress.images_per_s:.0f} img/s ETA {eta}")
        if interactive and line != last_line:
            stream.write(f"\r{line}   ")
        elif not interactive and (time.time() - last_time > 60 or len(progress.epochs) != last_epoch):
            stream.write(line + "\n")
            last_time, last_epoch = time.time(), len(progress.epochs)
        stream.flush()
        last_line = line
    stream.write("\n")


def _parse_multipliers(text: str) -> dict[str, float]:
    """'fc=1,head=10' as {'fc': 1.0, 'head': 10.0}."""
    try:
        pairs = [item.split("=") for item in text.split(",") if item]
        return {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise TrainingError("err_lr_mult", text=text) from None


def get_args_parser() -> argparse.ArgumentParser:
    """An option per TrainConfig field (but the step schedule's two), each with the field's default."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description="Train or fine-tune an expression classifier.")

    def option(name: str, **kwargs: Any) -> None:
        default = kwargs.pop("default", getattr(defaults, name))
        if isinstance(default, bool):
            kwargs["action"] = "store_true"
        elif default is not None:
            kwargs.setdefault("type", type(default))
        parser.add_argument("--" + name.replace("_", "-"), default=default, **kwargs)

    parser.add_argument("--data", required=True, help="fer2013-style .npz, or a zip/folder of class folders")
    option("labels", choices=LABEL_SOURCES,
           help="for an .npz: FER2013's own labels, or FER+ votes (ferplus.npz beside it)")
    option("arch", choices=sorted(ARCHITECTURES))
    option("arch_args", default=json.dumps(defaults.arch_args), help='JSON, e.g. \'{"width": 48}\'')
    for name in ("epochs", "batch_size", "lr"):
        option(name)
    option("optimizer", choices=OPTIMIZERS)
    option("momentum")
    option("weight_decay")
    option("schedule", choices=SCHEDULES)
    option("freeze", default=",".join(defaults.freeze), help="comma-separated layer groups, e.g. conv1,conv2")
    parser.add_argument("--lr-mult", default=_format_multipliers(defaults.lr_multipliers),
                        help="per-group multipliers, e.g. fc=1,head=10,conv5=0.1")
    option("balance", choices=BALANCING)
    parser.add_argument("--augment", default="default", help="'default', 'none', or a pipeline JSON file")
    option("label_smoothing")
    parser.add_argument("--no-amp", action="store_false", dest="amp", default=defaults.amp,
                        help="disable mixed precision on CUDA")
    option("seed")
    option("init_checkpoint", type=str, help="start from one of our checkpoints (transfer learning)")
    option("pretrained", help="ImageNet weights from the torch cache")
    option("val_fraction")
    option("split_rule", choices=("auto", *SPLIT_RULES), help="class folders only: validation images at "
           "random, by file-name prefix or the zip's val/ folder (auto: that folder when there is one, else random)")
    option("split_separator", help="with --split-rule prefix: a file's group is its name up to this text")
    option("out", help="where the best checkpoint is written")
    option("resume", help="save the training state after every epoch and continue from it if present")
    option("max_minutes", type=float, help="stop, keeping the best checkpoint, after this long")
    return parser


def _format_multipliers(multipliers: dict[str, float]) -> str:
    return ",".join(f"{name}={value:g}" for name, value in multipliers.items())


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.augment == "default":
        augment = None
    elif args.augment == "none":
        augment = {"version": 1, "ops": []}
    else:
        augment = aug.spec_to_dict(aug.spec_from_json(Path(args.augment).read_text()))
    try:
        arch_args = json.loads(args.arch_args)
    except ValueError:
        raise TrainingError("err_arch_args_json", text=args.arch_args) from None
    if not isinstance(arch_args, dict):
        raise TrainingError("err_arch_args_json", text=args.arch_args)
    check_arch_args(args.arch, arch_args)
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    return TrainConfig(**given | {
        "arch_args": arch_args, "augment": augment, "freeze": tuple(name for name in args.freeze.split(",") if name),
        "lr_multipliers": _parse_multipliers(args.lr_mult)})


def data_for(config: TrainConfig) -> Splits:
    """Load the config's data at the input format of the network it will train."""
    arch = config.arch
    if config.init_checkpoint:
        arch = load_checkpoint(config.init_checkpoint).meta["arch"]
    architecture = ARCHITECTURES[arch]
    return load_data(config.data, architecture.input_size, architecture.channels, config.val_fraction, config.seed,
                     config.labels, config.split_rule, config.split_separator)


def main(argv: list[str] | None = None, relabel: Callable[[Splits], Splits] | None = None) -> int:
    """The command line. `relabel` changes the loaded data before training (tools/distill_ferplus.py
    mixes a teacher's scores into the targets with it)."""
    args = get_args_parser().parse_args(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = best_device()
    if distributed:
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    rank = torch.distributed.get_rank() if distributed else 0
    try:
        config = config_from_args(args)
        splits = data_for(config)
        if relabel is not None:
            splits = relabel(splits)
        progress, stop = Progress(), threading.Event()
        if rank == 0:
            print(f"data {splits.source}: {len(splits.train)} train, {len(splits.val)} val, classes "
                  f"{', '.join(splits.classes)}; device {device}", file=sys.stderr)
            bar = threading.Thread(target=_console_bar, args=(progress, stop), daemon=True)
            bar.start()
        started = time.time()
        train(config, splits, progress, device=device)
        stop.set()
        if rank == 0:
            bar.join()
            best = load_checkpoint(progress.checkpoint).meta["metrics"]["val"] if progress.checkpoint else {}
            summary = {"best_epoch": progress.best_epoch, "val_accuracy": best.get("accuracy"),
                       "val_macro_f1": best.get("macro_f1"),
                       "checkpoint": progress.checkpoint, "minutes": round((time.time() - started) / 60, 2),
                       "device": str(device), "world_size": int(os.environ.get("WORLD_SIZE", "1"))}
            print(json.dumps(summary))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
