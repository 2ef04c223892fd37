"""Evaluate a checkpoint on a data split.

    python -m core.evaluate --checkpoint models/checkpoints/fer_face_vgg.pt \
        --data $FACELAB_DATA_DIR/fer2013.npz --split test --json
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from core.checkpoint import Checkpoint, load_checkpoint
from core.data import Dataset, load_data
from core.device import best_device
from core.errors import DatasetError, UserError
from core.metrics import Metrics
from core.train import evaluate_model

SPLITS = ("train", "val", "test")


def evaluate_checkpoint(checkpoint: Checkpoint, dataset: Dataset, device: torch.device | None = None) -> Metrics:
    """Metrics of a checkpoint on a data set whose classes it was trained on."""
    if tuple(dataset.classes) != checkpoint.classes:
        raise DatasetError("err_eval_classes", data=", ".join(dataset.classes), ckpt=", ".join(checkpoint.classes))
    device = device or best_device()
    metrics, _ = evaluate_model(checkpoint.build().to(device), checkpoint.meta["arch"], dataset, device)
    return metrics


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Evaluate one of our checkpoints on a data split.")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True, help="fer2013-style .npz, or a zip/folder of class folders")
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        checkpoint = load_checkpoint(args.checkpoint)
        config = checkpoint.meta.get("config", {})
        splits = load_data(args.data, checkpoint.meta["input_size"], checkpoint.meta["channels"],
                           config.get("val_fraction", 0.2), config.get("seed", 0))
        dataset = getattr(splits, args.split)
        if dataset is None:
            raise DatasetError("err_eval_no_split", split=args.split)
        metrics = evaluate_checkpoint(checkpoint, dataset)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(metrics.to_dict() | {"split": args.split, "classes": list(checkpoint.classes),
                                              "images": len(dataset)}))
    else:
        print(f"{args.split}: accuracy {metrics.accuracy:.4f}, macro-F1 {metrics.macro_f1:.4f} ({len(dataset)} images)")
        for name, values in metrics.per_class.items():
            print(f"  {name:>12}  P {values.precision:.3f}  R {values.recall:.3f}  F1 {values.f1:.3f}  n={values.support}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
