"""Train on the training and validation images together: the final fit of a recipe chosen on validation.

    FACELAB_DATA_DIR=... python -m tools.fit_with_validation -- --data $FACELAB_DATA_DIR/fer2013.npz \
        --labels ferplus --init-checkpoint runs/ferplus_cycle1_best.pt --epochs 10 --lr 0.005 ...

Everything after `--` is `python -m core.train`'s command line. The recipe (start, rate, epochs) must
already have been chosen on validation by a run that did not see it, and the last epoch is the model:
the validation figures this run prints are on images it trained on, so they choose nothing.
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np

from core import train
from core.data import Dataset, Splits


def with_validation(splits: Splits) -> Splits:
    """The splits with the validation images appended to the training images."""
    train_set, val = splits.train, splits.val
    targets = (None if train_set.targets is None or val.targets is None
               else np.concatenate([train_set.targets, val.targets]))
    merged = Dataset(np.concatenate([train_set.x, val.x]), np.concatenate([train_set.y, val.y]),
                     train_set.classes, targets)
    return dataclasses.replace(splits, train=merged)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return train.main([item for item in argv if item != "--"], relabel=with_validation)


if __name__ == "__main__":
    raise SystemExit(main())
