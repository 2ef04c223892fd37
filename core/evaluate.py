"""Scoring a network on a data set: the training engine's validation and the command line below.

    python -m core.evaluate --checkpoint models/checkpoints/fer_face_vgg.pt \
        --data $FACELAB_DATA_DIR/fer2013.npz --split test [--labels ferplus|fer2013] --json
    python -m core.evaluate --checkpoint runs/mine.pt --data held_out_people.zip --split all
"""
from __future__ import annotations

import argparse
import json
import sys
import threading

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.checkpoint import Checkpoint, load_checkpoint
from core.classes import expression_key
from core.data import LABEL_SOURCES, Dataset, load_data, read_class_folders
from core.device import best_device
from core.errors import DatasetError, UserError
from core.metrics import Metrics, compute_metrics
from core.presets import to_network_input

SPLITS = ("train", "val", "test", "all")  # all: a whole zip or folder of class folders


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
                   stop: threading.Event | None = None) -> tuple[Metrics, float, np.ndarray]:
    """Metrics, mean loss and the class probabilities of the images scored: all of them, or the first ones
    when `stop` is set on the way (none when it was set before the first batch)."""
    probabilities, loss = predict(model, arch, dataset, device, batch_size, stop)
    scored = len(probabilities)
    return compute_metrics(dataset.y[:scored], probabilities.argmax(axis=1), dataset.classes), loss, probabilities


def validation_sample(dataset: Dataset, size: int) -> Dataset:
    """At most `size` images spread evenly over the set (which may be sorted by class)."""
    if len(dataset) <= size:
        return dataset
    return dataset.subset(np.linspace(0, len(dataset) - 1, size).round().astype(int))


def shared_class_predictions(probabilities: np.ndarray, model_classes: tuple[str, ...],
                             data_classes: tuple[str, ...]) -> np.ndarray:
    """The data's class index of each row's most probable class among those both share: an 8-class
    FER+ model scored on FER2013's 7 labels ignores its contempt column, and a 7-class model scored
    on FER+ can never be right on a contempt face."""
    shared = [name for name in model_classes if name in data_classes]
    columns = [model_classes.index(name) for name in shared]
    return np.array([data_classes.index(name) for name in shared])[probabilities[:, columns].argmax(axis=1)]


def evaluate_checkpoint(checkpoint: Checkpoint, dataset: Dataset, device: torch.device | None = None) -> Metrics:
    """Metrics of a checkpoint on a data set that shares at least two of its classes."""
    if len(set(dataset.classes) & set(checkpoint.classes)) < 2:
        raise DatasetError("err_eval_classes", data=", ".join(dataset.classes), ckpt=", ".join(checkpoint.classes))
    device = device or best_device()
    probabilities, _ = predict(checkpoint.build().to(device), checkpoint.meta["arch"], dataset, device,
                               with_loss=False)
    predicted = shared_class_predictions(probabilities, checkpoint.classes, tuple(dataset.classes))
    return compute_metrics(dataset.y, predicted, dataset.classes)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Evaluate one of our checkpoints on a data split.")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True, help="fer2013-style .npz, or a zip/folder of class folders")
    parser.add_argument("--split", default="test", choices=SPLITS,
                        help="all: every image of a zip or folder of class folders, as one test set")
    parser.add_argument("--labels", choices=LABEL_SOURCES,
                        help="for an .npz: FER2013's labels or FER+ majority votes (default: what the model was trained on)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def scored_set(checkpoint: Checkpoint, data: str, split: str, labels: str | None) -> Dataset:
    """The images to score: one split of `data` (the validation split made as training made it), or with
    split "all" a whole zip or folder of class folders. Class folders must only hold classes the
    checkpoint knows."""
    size, channels = checkpoint.meta["input_size"], checkpoint.meta["channels"]
    npz = data.endswith(".npz")
    if split == "all":
        if npz:
            raise DatasetError("split_err_all_npz")
        if labels == "ferplus":
            raise DatasetError("err_data_labels_npz", labels=labels)
        dataset = read_class_folders(data, size, channels).dataset
    else:
        config = checkpoint.meta.get("config", {})
        trained_on = config.get("labels", "fer2013") if npz else "fer2013"
        # the recorded rule rebuilds the run's own validation split; a test/ folder never depends on it
        rule = config.get("split_rule", "auto") if split in ("train", "val") else "auto"
        splits = load_data(data, size, channels, config.get("val_fraction", 0.2), config.get("seed", 0),
                           labels or trained_on, rule, config.get("split_separator", "_"))
        dataset = getattr(splits, split)
        if dataset is None:
            raise DatasetError("err_eval_no_split", split=split)
    # FER2013 names (happy, sad) count as our keys: folders that are not all expressions keep their names
    unknown = [name for name in dataset.classes if name not in checkpoint.classes and
               expression_key(name) not in checkpoint.classes]
    if unknown and not npz:
        raise DatasetError("split_err_unknown_class", count=len(unknown), names=", ".join(unknown),
                           ckpt=", ".join(checkpoint.classes))
    return dataset


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        checkpoint = load_checkpoint(args.checkpoint)
        dataset = scored_set(checkpoint, args.data, args.split, args.labels)
        metrics = evaluate_checkpoint(checkpoint, dataset)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(metrics.to_dict() | {"split": args.split, "classes": list(dataset.classes),
                                              "images": len(dataset)}))
    else:
        print(f"{args.split}: accuracy {metrics.accuracy:.4f}, macro-F1 {metrics.macro_f1:.4f} ({len(dataset)} images)")
        for name, values in metrics.per_class.items():
            print(f"  {name:>12}  P {values.precision:.3f}  R {values.recall:.3f}  F1 {values.f1:.3f}  n={values.support}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
