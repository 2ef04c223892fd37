"""DistributedDataParallel: `python -m torch.distributed.run --nproc_per_node=2 -m core.train` with gloo on the CPU.

The data set is chosen so that the two ranks' shares differ by one image (7 training images,
batches of 2): before the shares were made equal, one rank ran a step more than the other and
the run hung in the gradient all-reduce. The subprocess timeout turns such a hang into a failure.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch.distributed

from core.checkpoint import load_checkpoint
from core.images import encode_png
from tests.test_train import draw_pattern

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="this torch build has no torch.distributed with the gloo backend")]


def write_class_folders(folder: Path, per_class: int) -> None:
    rng = np.random.default_rng(0)
    for label, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True)
        for index in range(per_class):
            grey = draw_pattern(label, rng)
            (folder / name / f"{index}.png").write_bytes(encode_png(np.repeat(grey[..., None], 3, axis=2)))


def train_on_two_ranks(data: Path, out: Path, *options: str) -> subprocess.CompletedProcess:
    """`core.train` on two gloo processes; a rank left waiting for the other turns into a failure."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
               "-m", "core.train", "--data", str(data), "--arch", "face_vgg",
               "--arch-args", '{"width": 4, "blocks": 2, "depth": 1, "hidden": 16}',
               "--batch-size", "2", "--lr", "0.01", "--out", str(out), *options]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"the distributed run did not finish in 120 s (ranks out of step?)\n{expired.stderr}")
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_gloo_processes_train_and_write_one_checkpoint(tmp_path):
    data = tmp_path / "faces"
    write_class_folders(data, per_class=2)  # 1 image a class for validation, 7 for training
    out = tmp_path / "run" / "m.pt"
    result = train_on_two_ranks(data, out, "--epochs", "2")
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.pt"]  # one checkpoint, no temporary files
    summaries = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1  # only rank 0 reports
    assert summaries[0]["world_size"] == 2 and summaries[0]["checkpoint"] == str(out)
    checkpoint = load_checkpoint(out)
    assert checkpoint.classes == CLASSES and checkpoint.meta["epoch"] in (1, 2)
    assert not any(key.startswith("module.") for key in checkpoint.state_dict)  # the plain network's weights
    checkpoint.build()


def test_the_wall_time_cap_ends_every_rank_together(tmp_path):
    """Each rank reads its own clock; the stop is shared, so no rank is left in an all-reduce or barrier."""
    data = tmp_path / "faces"
    write_class_folders(data, per_class=6)
    out = tmp_path / "run" / "m.pt"
    train_on_two_ranks(data, out, "--epochs", "1000", "--max-minutes", "0.1")
    assert load_checkpoint(out).meta["epoch"] >= 1
