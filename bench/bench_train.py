"""Benchmark: training images/s of our CPU recipe against a naive ImageFolder + PIL + DataLoader baseline.

Run from the repository root (FER2013 is found through FACELAB_DATA_DIR):

    FACELAB_DATA_DIR=/path/to/datasets python -m bench.bench_train [--images N] [--threads T] [--quick]

* ours: `core.train.train` itself on N FER2013 images held in memory as one uint8 array, with
  the default augmentation applied to whole batches by `core.batch_augment`, face_vgg at its
  default size, batch 128. Two epochs run; the second epoch's images/s is reported, so start-up
  is not counted.
* baseline: the same N images written as PNG files, read by torchvision `ImageFolder` with PIL
  transforms (RandomHorizontalFlip, RandomAffine, RandomResizedCrop, ColorJitter, ToTensor,
  Normalize) through a `DataLoader` with 0 and 2 workers, training the same network with the same
  optimizer and batch. A naive script keeps PyTorch's default memory format; the baseline is also
  run with the network in channels_last (as ours is), which isolates what the data path alone is worth.
  The first 2 batches of each baseline run are not timed.

With `--against REV` (a git revision, e.g. HEAD), `core/train.py` as it was at REV is loaded beside
today's and both engines train the same subset in turns (`--rounds` times each, alternating, so a busy
machine slows both alike); the ratios of their median second-epoch images/s and of their median CPU
seconds a run are reported (above 1: today's is faster). `--engine-only` skips the baselines.

It prints a table and, last, one JSON line. Timings are reported, never asserted. On a machine
shared with other jobs, numbers are lower and noisier; the load average is printed with them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from core import train as engine_now
from core.batch_augment import augment_batch
from core.data import Dataset, Splits, fer2013_path, load_npz
from core.presets import default_augmentation, to_network_input
from core.settings import DATA_DIR_VARIABLE
from core.train import TrainConfig, _batches, freeze_groups, make_optimizer
from models.registry import ARCHITECTURES, build_model

ROOT = Path(__file__).resolve().parents[1]

BATCH = 128
FER_TRAIN_IMAGES = 28_709
TARGET_RATIO = 2.0
WARMUP_BATCHES = 2


# --------------------------------------------------------------------------- data


def load_fer_subset(count: int) -> tuple[Splits, Path]:
    path = fer2013_path()
    if path is None:
        sys.exit(f"Set {DATA_DIR_VARIABLE} to the folder that holds fer2013.npz (e.g. ../shared/datasets).")
    if not path.exists():
        sys.exit(f"No fer2013.npz in {DATA_DIR_VARIABLE}={path.parent}.")
    splits = load_npz(path)
    train_part = splits.train.subset(np.arange(count))
    val_part = splits.val.subset(np.arange(BATCH))
    return Splits(train_part, val_part, None, str(path)), path


def write_pngs(dataset: Dataset, folder: Path) -> None:
    """One PNG file per image in class folders, as an ImageFolder expects."""
    for name in dataset.classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for index, (image, label) in enumerate(zip(dataset.x, dataset.y)):
        Image.fromarray(image[0]).save(folder / dataset.classes[label] / f"{index:05d}.png")


def load_grey(path: str) -> Image.Image:
    with open(path, "rb") as file:
        return Image.open(file).convert("L")


# --------------------------------------------------------------------------- runs


def run_ours(splits: Splits, folder: Path, engine: types.ModuleType = engine_now) -> dict:
    """`engine.train` (core.train's, or another revision's) for two epochs; the second epoch's throughput."""
    config = engine.TrainConfig(arch="face_vgg", epochs=2, batch_size=BATCH, augment=None, amp=False,
                                out=str(folder / "ours.pt"))
    progress = engine.train(config, splits, device=torch.device("cpu"))
    first, second = progress.epochs
    return {"images_per_s": second.images_per_s, "first_epoch_images_per_s": first.images_per_s,
            "batches": progress.batches_per_epoch}


def engine_at(revision: str) -> types.ModuleType:
    """core/train.py as it was at a git revision, as a module of its own beside today's."""
    source = subprocess.run(["git", "show", f"{revision}:core/train.py"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    module = types.ModuleType(f"core.train_at_{revision}")
    module.__file__ = str(ROOT / "core" / "train.py")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{revision}:core/train.py", "exec"), module.__dict__)
    return module


def compare_engines(splits: Splits, folder: Path, revision: str, rounds: int) -> dict:
    """Today's engine and REV's in turns: the median second-epoch images/s of each, and the median CPU
    seconds of a whole run (with one torch thread, far less sensitive to other jobs than wall time)."""
    engines = {"now": engine_now, revision: engine_at(revision)}
    speeds: dict[str, list[float]] = {name: [] for name in engines}
    cpu: dict[str, list[float]] = {name: [] for name in engines}
    for round_ in range(rounds):
        for name in (list(engines) if round_ % 2 == 0 else list(engines)[::-1]):
            started = time.process_time()
            speeds[name].append(run_ours(splits, folder, engines[name])["images_per_s"])
            cpu[name].append(time.process_time() - started)
    medians = {name: statistics.median(values) for name, values in speeds.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    return {"revision": revision, "rounds": rounds,
            "images_per_s": {k: [round(v, 1) for v in values] for k, values in speeds.items()},
            "cpu_s": {k: [round(v, 2) for v in values] for k, values in cpu.items()},
            "median_images_per_s": {k: round(v, 1) for k, v in medians.items()},
            "ratio_now_vs_revision": round(medians["now"] / medians[revision], 3),
            "cpu_ratio_revision_vs_now": round(cpu_medians[revision] / cpu_medians["now"], 3)}


def ours_data_only(splits: Splits, batches: int) -> dict:
    """Only the data path of ours: index the in-memory array, augment the batch, normalise."""
    spec, rng = default_augmentation(ARCHITECTURES["face_vgg"].input_size), np.random.default_rng(0)
    order = _batches(len(splits.train), BATCH, np.random.default_rng(0), None)[:batches]
    started = time.perf_counter()
    for batch in order:
        x = torch.from_numpy(splits.train.x[batch])
        to_network_input(augment_batch(x, spec, rng), "face_vgg").contiguous(memory_format=torch.channels_last)
    return {"images_per_s": sum(len(b) for b in order) / (time.perf_counter() - started), "batches": len(order)}


def baseline_data_only(folder: Path, workers: int, batches: int) -> dict:
    """Only the data path of the baseline: the DataLoader's batches, nothing trained."""
    seen, started = 0, None
    for step, (_x, y) in enumerate(baseline_loader(folder, workers)):
        if step == WARMUP_BATCHES:
            started = time.perf_counter()
        if step == WARMUP_BATCHES + batches:
            break
        if started is not None:
            seen += len(y)
    return {"images_per_s": seen / (time.perf_counter() - started), "batches": seen // BATCH}


def baseline_transform() -> transforms.Compose:
    """The default augmentation (core.presets.default_augmentation) as classic PIL transforms."""
    architecture = ARCHITECTURES["face_vgg"]
    return transforms.Compose([
        transforms.RandomHorizontalFlip(0.5),
        transforms.RandomAffine(degrees=10, translate=(0.08, 0.08), scale=(0.9, 1.1), shear=5),
        transforms.RandomApply([transforms.RandomResizedCrop(architecture.input_size, scale=(0.75, 1.0),
                                                             ratio=(0.9, 1.1))], p=0.5),
        transforms.RandomApply([transforms.ColorJitter(brightness=0.25, contrast=0.25)], p=0.8),
        transforms.ToTensor(),
        transforms.Normalize(architecture.mean, architecture.std),
    ])


def baseline_loader(folder: Path, workers: int) -> DataLoader:
    """The naive input pipeline: PNG files, PIL transforms, a DataLoader."""
    dataset = datasets.ImageFolder(str(folder), transform=baseline_transform(), loader=load_grey)
    return DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers, drop_last=True)


def run_baseline(folder: Path, workers: int, channels_last: bool, batches: int) -> dict:
    """`batches` training steps fed by ImageFolder + DataLoader, after WARMUP_BATCHES untimed ones."""
    torch.manual_seed(0)
    loader = baseline_loader(folder, workers)
    model = build_model("face_vgg", len(loader.dataset.classes))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    config = TrainConfig()
    optimizer = make_optimizer(config, freeze_groups(model, "face_vgg", ()))
    model.train()
    seen, started = 0, None
    for step, (x, y) in enumerate(loader):
        if step == WARMUP_BATCHES:
            started = time.perf_counter()
        if step == WARMUP_BATCHES + batches:
            break
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if started is not None:
            seen += len(y)
    elapsed = time.perf_counter() - started
    return {"images_per_s": seen / elapsed, "batches": seen // BATCH}


# --------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048, help="FER2013 training images to use (and write as PNG)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's choice)")
    parser.add_argument("--workers", default="0,2", help="DataLoader num_workers values for the baseline")
    parser.add_argument("--quick", action="store_true", help="fewer images, one worker setting")
    parser.add_argument("--against", metavar="REV", help="also time core/train.py at this git revision, in turns")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: runs of each engine")
    parser.add_argument("--engine-only", action="store_true", help="with --against: skip the baselines")
    args = parser.parse_args()
    if args.quick:
        args.images, args.workers = 768, "0"
    if args.threads:
        torch.set_num_threads(args.threads)
    workers = [int(value) for value in args.workers.split(",") if value]
    load_before = os.getloadavg()

    splits, path = load_fer_subset(args.images)
    if args.against:
        with tempfile.TemporaryDirectory(prefix="bench_train_") as temporary:
            comparison = compare_engines(splits, Path(temporary), args.against, args.rounds)
        load_after = os.getloadavg()
        print(f"engine now vs {args.against}: {comparison['ratio_now_vs_revision']:.3f}× the images/s, "
              f"{comparison['cpu_ratio_revision_vs_now']:.3f}× less CPU time a run "
              f"(median second-epoch images/s {comparison['median_images_per_s']}, {args.images} images, "
              f"torch threads {torch.get_num_threads()}, load average {load_before[0]:.1f} / {load_after[0]:.1f})")
        print(json.dumps({"bench": "train_engine", **comparison, "images": args.images,
                          "threads": torch.get_num_threads(),
                          "load_average": [round(load_before[0], 2), round(load_after[0], 2)]}))
        if args.engine_only:
            return
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_train_") as temporary:
        folder = Path(temporary)
        started = time.perf_counter()
        write_pngs(splits.train, folder / "png")
        png_seconds = time.perf_counter() - started
        results["ours"] = run_ours(splits, folder)
        timed_batches = args.images // BATCH - WARMUP_BATCHES
        for channels_last in (False, True):
            for count in workers:
                name = f"baseline_w{count}" + ("_channels_last" if channels_last else "")
                results[name] = run_baseline(folder / "png", count, channels_last, timed_batches)
        data_only = {"ours (data only)": ours_data_only(splits, timed_batches)}
        for count in workers:
            data_only[f"baseline_w{count} (data only)"] = baseline_data_only(folder / "png", count, timed_batches)
    load_after = os.getloadavg()

    ours = results["ours"]["images_per_s"]
    naive = {name: r["images_per_s"] for name, r in results.items() if name.startswith("baseline")}
    best_naive = max(v for k, v in naive.items() if not k.endswith("channels_last"))
    best_same_format = max(v for k, v in naive.items() if k.endswith("channels_last"))
    epoch_minutes = FER_TRAIN_IMAGES / ours / 60

    print(f"FER2013 subset: {args.images} training images ({path}); {len(list(workers))} DataLoader setting(s); "
          f"batch {BATCH}; face_vgg {ARCHITECTURES['face_vgg'].defaults}")
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}, load average {load_before[0]:.1f} before / {load_after[0]:.1f} after")
    if load_before[0] > 0.5 * (os.cpu_count() or 1):
        print("note: the CPU was busy with other work during this run; absolute numbers are low, compare ratios")
    print(f"{'run':<32}{'images/s':>10}{'ours ×':>9}")
    for name, result in results.items():
        print(f"{name:<32}{result['images_per_s']:>10.1f}{ours / result['images_per_s']:>9.2f}")
    ours_data = data_only["ours (data only)"]["images_per_s"]
    for name, result in data_only.items():
        print(f"{name:<32}{result['images_per_s']:>10.1f}{ours_data / result['images_per_s']:>9.2f}")
    print(f"ours vs best naive baseline: {ours / best_naive:.2f}× (target {TARGET_RATIO:.0f}×); "
          f"vs the baseline with the same memory format: {ours / best_same_format:.2f}×")
    print(f"projected FER2013 epoch ({FER_TRAIN_IMAGES} images) with ours: {epoch_minutes:.1f} min")
    print(json.dumps({
        "bench": "train", "images": args.images, "batch_size": BATCH, "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "load_average": [round(load_before[0], 2), round(load_after[0], 2)],
        "png_write_s": round(png_seconds, 2),
        "images_per_s": {name: round(r["images_per_s"], 1) for name, r in results.items()},
        "data_only_images_per_s": {name: round(r["images_per_s"], 1) for name, r in data_only.items()},
        "ours_first_epoch_images_per_s": round(results["ours"]["first_epoch_images_per_s"], 1),
        "ratio_vs_best_naive": round(ours / best_naive, 2),
        "ratio_vs_same_memory_format": round(ours / best_same_format, 2),
        "fer2013_epoch_minutes": round(epoch_minutes, 2), "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
