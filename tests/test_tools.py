"""The model-building tools in tools/: the final fit's data and the greedy weight soup."""
from __future__ import annotations

import numpy as np
import torch

from core.checkpoint import Checkpoint, make_meta
from core.classes import EXPRESSION_KEYS
from core.data import Dataset, Splits
from core.evaluate import evaluate_model
from models.registry import build_model
from tools.fit_with_validation import with_validation
from tools.weight_soup import averaged, greedy_soup

CLASSES = tuple(EXPRESSION_KEYS)


def faces(count: int, seed: int, targets: bool = False) -> Dataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CLASSES), count)
    return Dataset(rng.integers(0, 256, (count, 1, 48, 48), dtype=np.uint8), y, CLASSES,
                   np.eye(len(CLASSES), dtype=np.float32)[y] if targets else None)


def tiny_checkpoint(seed: int) -> Checkpoint:
    torch.manual_seed(seed)
    model = build_model("face_vgg", len(CLASSES), width=4)
    return Checkpoint({k: v.detach().clone() for k, v in model.state_dict().items()},
                      make_meta("face_vgg", {"width": 4}, CLASSES))


def test_the_final_fit_trains_on_the_validation_images_too():
    splits = Splits(faces(5, 0, targets=True), faces(3, 1, targets=True), None, "faces.npz")
    merged = with_validation(splits)
    assert len(merged.train) == 8 and merged.val is splits.val
    assert np.array_equal(merged.train.x[5:], splits.val.x) and np.array_equal(merged.train.y[5:], splits.val.y)
    assert np.array_equal(merged.train.targets[5:], splits.val.targets)
    without_votes = with_validation(Splits(faces(5, 0), faces(3, 1), None, "faces.zip"))
    assert without_votes.train.targets is None and len(without_votes.train) == 8


def test_a_soup_holds_the_mean_weights_and_new_batch_norm_statistics():
    first, second = tiny_checkpoint(0), tiny_checkpoint(1)
    model = averaged([first, second], faces(16, 2).x)
    state = model.state_dict()
    weight = next(name for name in state if name.endswith("weight") and state[name].dim() == 4)
    assert torch.allclose(state[weight], (first.state_dict[weight] + second.state_dict[weight]) / 2)
    running = next(name for name in state if name.endswith("running_mean"))
    assert not torch.allclose(state[running], first.state_dict[running])  # measured on the images given
    assert not model.training


def test_the_greedy_soup_starts_from_the_best_alone_and_reports_what_it_returns():
    checkpoints = [tiny_checkpoint(seed) for seed in range(3)]
    val = faces(40, 3)
    device = torch.device("cpu")
    alone = [evaluate_model(c.build(), "face_vgg", val, device)[0].accuracy for c in checkpoints]
    lines = []
    model, members, metrics = greedy_soup(checkpoints, val, faces(16, 4).x, report=lines.append)
    assert members[0] == int(np.argmax(alone)) and len(set(members)) == len(members)
    assert len(lines) == len(checkpoints)
    assert metrics.accuracy == evaluate_model(model, "face_vgg", val, device)[0].accuracy
