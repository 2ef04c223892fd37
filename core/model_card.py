"""The bundled model's FER+ test confusion matrix: as its model card (models/README.md) states it, the one
home of those figures, or scored again image by image on the test split of the data folder, so that each
cell's faces can be shown.

    python -m core.model_card [--data $FACELAB_DATA_DIR/fer2013.npz]
prints the card's matrix and, with the data, whether scoring the test split again gives the same one.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.checkpoint import BUNDLED_CARD, BUNDLED_CHECKPOINT, Checkpoint, load_checkpoint
from core.data import Dataset, load_npz
from core.device import best_device
from core.errors import DatasetError, UserError
from core.evaluate import predict
from core.metrics import confusion_matrix

CARD_LABELS = "ferplus"  # the card's drill-down matrix is the one on FER+ majority labels
CONFUSION_HEADER = "true \\ predicted"


@dataclass(frozen=True)
class TestScores:
    test: Dataset  # the test split, images and labels
    probabilities: np.ndarray  # (N, classes of `test`)
    seconds: float  # the time the network took to score it

    @property
    def confusion(self) -> np.ndarray:
        return confusion_matrix(self.test.y, self.probabilities.argmax(axis=1), len(self.test.classes))


def _cells(line: str) -> list[str]:
    line = line.strip()
    return [cell.strip() for cell in line.strip("|").split("|")] if line.startswith("|") else []


def card_confusion(card: str, classes: Sequence[str]) -> np.ndarray | None:
    """The model card's confusion matrix whose columns are exactly `classes` (a Markdown table headed
    `true \\ predicted`, one row per true class), or None when the card has none."""
    lines = card.splitlines()
    for index, line in enumerate(lines):
        if _cells(line) != [CONFUSION_HEADER, *classes]:
            continue
        rows: dict[str, list[int]] = {}
        for row in lines[index + 2:]:  # after the header's |---| line
            cells = _cells(row)
            if len(cells) != len(classes) + 1:
                break
            rows[cells[0].strip("*")] = [int(value) for value in cells[1:]]
        if set(rows) == set(classes):
            return np.array([rows[name] for name in classes], dtype=np.int64)
    return None


def bundled_card_confusion(classes: Sequence[str]) -> np.ndarray | None:
    return card_confusion(BUNDLED_CARD.read_text(encoding="utf-8"), classes) if BUNDLED_CARD.exists() else None


def score_test_split(checkpoint: Checkpoint, data: str | Path, labels: str = CARD_LABELS) -> TestScores:
    """A checkpoint's class probabilities for every image of the test split of a FER2013-style .npz, in the
    data's class order, computed by the evaluation's batch prediction on a network of its own (so that no
    shared predictor waits)."""
    test = load_npz(data, labels).test
    if test is None:
        raise DatasetError("err_eval_no_split", split="test")
    if not set(test.classes) <= set(checkpoint.classes):
        raise DatasetError("err_eval_classes", data=", ".join(test.classes), ckpt=", ".join(checkpoint.classes))
    device = best_device()
    start = time.perf_counter()
    probabilities, _ = predict(checkpoint.build().to(device), checkpoint.meta["arch"], test, device, with_loss=False)
    seconds = time.perf_counter() - start
    columns = [checkpoint.classes.index(name) for name in test.classes]
    return TestScores(test, probabilities[:, columns], seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The bundled model's FER+ test confusion matrix, from its card.")
    parser.add_argument("--data", help="fer2013.npz (with ferplus.npz beside it): score the test split again")
    args = parser.parse_args(argv)
    checkpoint = load_checkpoint(BUNDLED_CHECKPOINT)
    stated = bundled_card_confusion(checkpoint.classes)
    if stated is None:
        print(f"error: {BUNDLED_CARD} has no confusion matrix over {', '.join(checkpoint.classes)}", file=sys.stderr)
        return 2
    print(f"the card's matrix: {int(stated.trace())} of {int(stated.sum())} right ({stated.trace() / stated.sum():.2%})")
    if args.data:
        try:
            scores = score_test_split(checkpoint, args.data)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        same = np.array_equal(scores.confusion, stated)
        print(f"scored {len(scores.test)} test images in {scores.seconds:.1f} s: "
              + ("the same matrix" if same else f"a different matrix:\n{scores.confusion}"))
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
