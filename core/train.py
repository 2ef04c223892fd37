"""Training and fine-tuning: one engine for the page, the command line and DistributedDataParallel.

    python -m core.train --data $FACELAB_DATA_DIR/fer2013.npz --epochs 30 --out runs/fer.pt

The page runs `train()` in a background thread and reads the `Progress` object it fills; the
command line prints a progress bar. A `Stop` event ends the run within one batch, keeping the
best checkpoint so far.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core import augment as aug
from core.batch_augment import augment_batch
from core.checkpoint import Checkpoint, load_checkpoint, make_meta, save_checkpoint
from core.data import LABEL_SOURCES, Dataset, Splits, class_weights, load_data, sample_weights
from core.device import best_device
from core.errors import TrainingError, UserError
from core.metrics import Metrics, compute_metrics
from core.presets import default_augmentation, to_network_input
from models.registry import (ARCHITECTURES, PretrainedUnavailable, build_model, check_args, group_names, layer_groups,
                             load_pretrained)

BALANCING = ("none", "weighted_loss", "sampler")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "step", "onecycle", "constant")


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
    best_metrics: Metrics | None = None
    last_metrics: Metrics | None = None
    checkpoint: str | None = None
    error: str | None = None
    classes: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.status in ("finished", "stopped", "failed")

    @property
    def fraction(self) -> float:
        total = self.total_epochs * max(self.batches_per_epoch, 1)
        return min(1.0, ((self.epoch - 1) * self.batches_per_epoch + self.batch) / total) if total and self.epoch else 0.0


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


def make_schedule(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """Stepped once per batch."""
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                   total_steps=total)
    if config.schedule == "step":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: config.step_gamma ** ((step // steps_per_epoch) // config.step_size))
    if config.schedule == "cosine":
        warmup = min(steps_per_epoch, total // 10)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: (step + 1) / warmup if step < warmup
            else 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


@torch.no_grad()
def predict(model: nn.Module, arch: str, dataset: Dataset, device: torch.device, batch_size: int = 256,
            stop: threading.Event | None = None, with_loss: bool = True) -> tuple[np.ndarray, float]:
    """Class probabilities for every image, and the mean cross-entropy loss (0 without `with_loss`,
    for data labelled with other classes than the model's)."""
    model.eval()
    probabilities, total_loss = [], 0.0
    for start in range(0, len(dataset), batch_size):
        if stop is not None and stop.is_set():
            break
        x = torch.from_numpy(dataset.x[start:start + batch_size]).to(device).float()
        logits = model(to_network_input(x, arch)).float()
        if with_loss:
            y = torch.from_numpy(dataset.y[start:start + batch_size]).to(device)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        probabilities.append(logits.softmax(dim=1).cpu().numpy())
    if not probabilities:
        return np.zeros((0, len(dataset.classes))), 0.0
    stacked = np.concatenate(probabilities)
    return stacked, total_loss / len(stacked)


def evaluate_model(model: nn.Module, arch: str, dataset: Dataset, device: torch.device, batch_size: int = 256,
                   stop: threading.Event | None = None) -> tuple[Metrics, float, int]:
    """Metrics, mean loss and the number of images scored: all of them, or the first ones when `stop`
    is set on the way (0 when it was set before the first batch)."""
    probabilities, loss = predict(model, arch, dataset, device, batch_size, stop)
    scored = len(probabilities)
    return compute_metrics(dataset.y[:scored], probabilities.argmax(axis=1), dataset.classes), loss, scored


def validation_sample(dataset: Dataset, size: int) -> Dataset:
    """At most `size` images spread evenly over the set (which may be sorted by class)."""
    if len(dataset) <= size:
        return dataset
    return dataset.subset(np.linspace(0, len(dataset) - 1, size).round().astype(int))


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
    architecture = ARCHITECTURES[arch]
    if device.type == "cuda" and measure:
        try:
            model = build_model(arch, num_classes, **(architecture.defaults | arch_args)).to(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            x = torch.randn(batch_size, architecture.channels, architecture.input_size, architecture.input_size,
                            device=device)
            model(x).logsumexp(dim=1).mean().backward()
            measured = torch.cuda.max_memory_allocated(device) - before
            return int(measured), True
        except torch.cuda.OutOfMemoryError:
            pass  # it does not fit; the estimate below says how much it would need
        finally:
            torch.cuda.empty_cache()
    parameters, activations = _footprint(arch, json.dumps(arch_args, sort_keys=True), num_classes)
    return int(4 * (4 * parameters + 2 * batch_size * activations)), False


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


def _save_state(path: Path, model: nn.Module, optimizer, schedule, scaler, epoch: int,
                rng: np.random.Generator, progress: Progress) -> None:
    """Everything needed to resume after `epoch`, written atomically like the checkpoint."""
    temporary = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "scaler": scaler.state_dict(), "epoch": epoch, "rng": json.dumps(rng.bit_generator.state),
                "torch_rng": torch.get_rng_state(), "best_accuracy": progress.best_accuracy,
                "best_epoch": progress.best_epoch, "epochs": json.dumps([asdict(e) for e in progress.epochs])},
               temporary)
    os.replace(temporary, path)


def _load_state(path: Path, model: nn.Module, optimizer, schedule, scaler, rng: np.random.Generator,
                progress: Progress) -> int:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    scaler.load_state_dict(state["scaler"])
    rng.bit_generator.state = json.loads(state["rng"])
    torch.set_rng_state(state["torch_rng"])
    progress.best_accuracy, progress.best_epoch = state["best_accuracy"], state["best_epoch"]
    progress.epochs = [EpochRecord(**record) for record in json.loads(state["epochs"])]
    return int(state["epoch"])


def _save_best(path: Path, model: nn.Module, arch: str, arch_args: dict[str, Any], config: TrainConfig,
               splits: Splits, metrics: Metrics, epoch: int) -> None:
    # File names only: a checkpoint is downloaded by visitors, and must not tell them the server's folders.
    data = Path(splits.source).name
    meta = make_meta(arch, arch_args, splits.classes, config=config.to_dict() | {"data": data, "out": path.name},
                     epoch=epoch, metrics={"val": metrics.to_dict()}, data=data)
    save_checkpoint(path, model, meta)


# --------------------------------------------------------------------------- the loop


def _stopped_everywhere(stop: threading.Event, distributed: bool, device: torch.device) -> bool:
    """Whether any rank was asked to stop (Stop or its wall-time cap): then every rank ends at the same
    batch, so none is left waiting in a collective operation."""
    if distributed:
        flag = torch.tensor([float(stop.is_set())], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item():
            stop.set()
    return stop.is_set()


def train(config: TrainConfig, splits: Splits, progress: Progress | None = None,
          stop: threading.Event | None = None, device: torch.device | None = None,
          init: Checkpoint | None = None) -> Progress:
    """Train, validating after each epoch and keeping the best checkpoint at `config.out`.
    `init` is a checkpoint held in memory to start from (an upload is never written to disk)."""
    progress = progress if progress is not None else Progress()
    stop = stop if stop is not None else threading.Event()
    device = device or best_device()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1 and torch.distributed.is_initialized()
    rank = torch.distributed.get_rank() if distributed else 0
    world = torch.distributed.get_world_size() if distributed else 1
    torch.manual_seed(config.seed)
    rng = np.random.default_rng([config.seed, rank])  # augmentation draws differ between ranks

    model, arch, arch_args = prepare_model(config, splits.classes, init)
    check_groups(config, arch, arch_args)
    groups = freeze_groups(model, arch, config.freeze)
    model.to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    network = nn.parallel.DistributedDataParallel(model) if distributed else model
    input_size = ARCHITECTURES[arch].input_size
    spec = (default_augmentation(input_size) if config.augment is None else aug.spec_from_dict(config.augment))

    counts = splits.train.counts()
    loss_weights = (torch.tensor(class_weights(counts), dtype=torch.float32, device=device)
                    if config.balance == "weighted_loss" else None)
    sampler = sample_weights(splits.train.y, counts) if config.balance == "sampler" else None
    steps_per_epoch = len(_batches(len(splits.train), config.batch_size, np.random.default_rng(0), None, rank, world))
    optimizer = make_optimizer(config, groups)
    schedule = make_schedule(config, optimizer, steps_per_epoch)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    progress.total_epochs, progress.batches_per_epoch, progress.classes = config.epochs, steps_per_epoch, splits.classes
    progress.val_size = len(splits.val)
    progress.status = "running"
    out = Path(config.out)
    deadline = time.monotonic() + config.max_minutes * 60 if config.max_minutes else math.inf
    first_epoch = 1
    if config.resume and _state_path(out).exists():
        first_epoch = _load_state(_state_path(out), model, optimizer, schedule, scaler, rng, progress) + 1
        progress.checkpoint = str(out) if out.exists() else None
    for epoch in range(first_epoch, config.epochs + 1):
        progress.epoch, progress.batch = epoch, 0
        set_train_mode(network, groups, config.freeze)
        started, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        order_rng = np.random.default_rng([config.seed, epoch])  # the same on every rank, whatever augmentation drew
        batches = _batches(len(splits.train), config.batch_size, order_rng, sampler, rank, world)
        for index, batch in enumerate(batches, 1):
            if time.monotonic() > deadline and not stop.is_set():
                progress.stop_reason = "time_limit"
                stop.set()
            if _stopped_everywhere(stop, distributed, device):
                break
            x = torch.from_numpy(splits.train.x[batch]).to(device, non_blocking=True)
            y = torch.from_numpy(splits.train.y[batch]).to(device, non_blocking=True)
            target = y if splits.train.targets is None else torch.from_numpy(splits.train.targets[batch]).to(device)
            x = to_network_input(augment_batch(x, spec, rng) if spec.ops else x.float(), arch)
            if device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                logits = network(x)
                loss = F.cross_entropy(logits.float(), target, weight=loss_weights,
                                       label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            seen += len(batch)
            loss_sum += loss.item() * len(batch)
            correct += (logits.argmax(dim=1) == y).sum().item()
            elapsed = time.perf_counter() - started
            progress.batch = index
            progress.iteration_loss.append(loss.item())
            progress.iteration_lr.append(optimizer.param_groups[-1]["lr"])
            progress.images_per_s = seen * world / max(elapsed, 1e-9)
            remaining = (config.epochs - epoch) * steps_per_epoch + (steps_per_epoch - index)
            progress.eta_s = remaining * elapsed / index
            progress.memory_bytes = memory_in_use(device)
        # Stopped after the first epoch: keep the best checkpoint so far without another validation pass.
        # (Every rank knows the epoch; only rank 0 knows the checkpoint.)
        if seen == 0 or (stop.is_set() and epoch > 1):
            break
        if rank == 0:
            metrics, val_loss, validated = evaluate_model(model, arch, splits.val, device, config.batch_size, stop)
            if validated < len(splits.val):  # Stop came before or during validation
                if progress.checkpoint is not None:
                    break
                # No checkpoint yet: score one more batch, spread over the classes, so the run keeps its weights.
                sample = validation_sample(splits.val, config.batch_size)
                metrics, val_loss, validated = evaluate_model(model, arch, sample, device, config.batch_size)
            record = EpochRecord(epoch, loss_sum / max(seen, 1), correct / max(seen, 1), val_loss, metrics.accuracy,
                                 metrics.macro_f1, progress.images_per_s, time.perf_counter() - started, validated)
            progress.epochs.append(record)
            progress.last_metrics = metrics
            if metrics.accuracy > progress.best_accuracy:
                progress.best_accuracy, progress.best_epoch, progress.best_metrics = metrics.accuracy, epoch, metrics
                _save_best(out, model, arch, arch_args, config, splits, metrics, epoch)
                progress.checkpoint = str(out)
            if config.resume:
                _save_state(_state_path(out), model, optimizer, schedule, scaler, epoch, rng, progress)
        if distributed:
            torch.distributed.barrier()
        if stop.is_set():
            break
    progress.eta_s = 0.0
    if stop.is_set():
        progress.stop_reason = progress.stop_reason or "stop"
    progress.status = "stopped" if stop.is_set() else "finished"
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
    parser = argparse.ArgumentParser(description="Train or fine-tune an expression classifier.")
    parser.add_argument("--data", required=True, help="fer2013-style .npz, or a zip/folder of class folders")
    parser.add_argument("--labels", default="fer2013", choices=LABEL_SOURCES,
                        help="for an .npz: FER2013's own labels, or FER+ votes (ferplus.npz beside it)")
    parser.add_argument("--arch", default="face_vgg", choices=sorted(ARCHITECTURES))
    parser.add_argument("--arch-args", default="{}", help='JSON, e.g. \'{"width": 48}\'')
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--schedule", default="cosine", choices=SCHEDULES)
    parser.add_argument("--freeze", default="", help="comma-separated layer groups, e.g. conv1,conv2")
    parser.add_argument("--lr-mult", default="", help="per-group multipliers, e.g. fc=1,head=10,conv5=0.1")
    parser.add_argument("--balance", default="none", choices=BALANCING)
    parser.add_argument("--augment", default="default", help="'default', 'none', or a pipeline JSON file")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init-checkpoint", help="start from one of our checkpoints (transfer learning)")
    parser.add_argument("--pretrained", action="store_true", help="ImageNet weights from the torch cache")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--out", default="runs/model.pt", help="where the best checkpoint is written")
    parser.add_argument("--resume", action="store_true",
                        help="save the training state after every epoch and continue from it if present")
    parser.add_argument("--max-minutes", type=float, help="stop, keeping the best checkpoint, after this long")
    return parser


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
    return TrainConfig(
        data=args.data, labels=args.labels, arch=args.arch, arch_args=arch_args, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, momentum=args.momentum,
        weight_decay=args.weight_decay, schedule=args.schedule,
        freeze=tuple(name for name in args.freeze.split(",") if name), lr_multipliers=_parse_multipliers(args.lr_mult),
        balance=args.balance, augment=augment, label_smoothing=args.label_smoothing, amp=not args.no_amp,
        seed=args.seed, init_checkpoint=args.init_checkpoint, pretrained=args.pretrained,
        val_fraction=args.val_fraction, out=args.out, resume=args.resume, max_minutes=args.max_minutes)


def data_for(config: TrainConfig) -> Splits:
    """Load the config's data at the input format of the network it will train."""
    arch = config.arch
    if config.init_checkpoint:
        arch = load_checkpoint(config.init_checkpoint).meta["arch"]
    architecture = ARCHITECTURES[arch]
    return load_data(config.data, architecture.input_size, architecture.channels, config.val_fraction, config.seed,
                     config.labels)


def main(argv: list[str] | None = None) -> int:
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
