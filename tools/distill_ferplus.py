"""Train on FER+ votes mixed with a teacher's test-time-augmented scores (knowledge distillation).

    FACELAB_DATA_DIR=... python -m tools.distill_ferplus --teacher runs/ferplus_cycle2.pt --teacher-weight 0.5 \
        -- --data $FACELAB_DATA_DIR/fer2013.npz --labels ferplus --init-checkpoint runs/ferplus_cycle2.pt ...

Everything after `--` is `python -m core.train`'s command line. Each training image's target becomes
(1 - w) * its FER+ vote distribution + w * the teacher's scores averaged over the lecture's ten crops, so
the single network learns what the ten-crop average knows. The teacher's scores are computed once, before
training, on the un-augmented images.
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from core import train
from core.data import Splits
from core.predict import Predictor


def distilled(splits: Splits, teacher: Predictor, weight: float) -> Splits:
    """The splits with each training target mixed with the teacher's ten-crop scores."""
    if splits.train.targets is None or tuple(teacher.classes) != tuple(splits.classes):
        raise SystemExit("the teacher must have the data's classes, and the data FER+ vote distributions")
    scores = teacher.stored_crop_probabilities(splits.train.x, tta=True).astype(np.float32)
    targets = (1 - weight) * splits.train.targets + weight * scores
    return dataclasses.replace(splits, train=dataclasses.replace(splits.train, targets=targets))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True, help="one of our checkpoints")
    parser.add_argument("--teacher-weight", type=float, default=0.5)
    args, train_argv = parser.parse_known_args()
    teacher = Predictor.from_checkpoint(args.teacher)
    return train.main([item for item in train_argv if item != "--"],
                      relabel=lambda splits: distilled(splits, teacher, args.teacher_weight))


if __name__ == "__main__":
    raise SystemExit(main())
