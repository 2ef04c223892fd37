"""The command lines `python -m core.train` and `python -m core.evaluate`, run as a user would.

Each command is a fresh Python process started from the repository root on a tiny zip of
class folders. OMP_NUM_THREADS=1 keeps the processes from fighting over a shared CPU.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.data import Splits
from core.images import encode_png
from core.train import main as train_main
from tests.test_train import draw_pattern

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")

pytestmark = pytest.mark.slow  # every test here starts a Python process


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def class_zip(per_class: int = 5, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, name in enumerate(CLASSES):
            for index in range(per_class):
                grey = draw_pattern(label, rng)
                archive.writestr(f"faces/{name}/{index}.png", encode_png(np.repeat(grey[..., None], 3, axis=2)))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    folder = tmp_path_factory.mktemp("cli")
    data = folder / "faces.zip"
    data.write_bytes(class_zip())
    out = folder / "m.pt"
    result = run("-m", "core.train", "--data", str(data), "--arch", "face_vgg", "--arch-args", '{"width": 8}',
                 "--epochs", "1", "--batch-size", "16", "--lr", "0.01", "--out", str(out))
    return data, out, result


def test_train_writes_a_checkpoint(trained):
    data, out, result = trained
    assert result.returncode == 0, result.stderr
    assert out.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["faces.zip", "m.pt"]  # no temporary files left
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["checkpoint"] == str(out) and summary["best_epoch"] == 1
    assert 0 <= summary["val_accuracy"] <= 1 and summary["world_size"] == 1
    assert "data " in result.stderr and "7 val" in result.stderr  # 7 classes × round(5 × 0.2)


def test_evaluate_prints_one_json_object(trained):
    data, out, _ = trained
    result = run("-m", "core.evaluate", "--checkpoint", str(out), "--data", str(data), "--split", "val", "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(report)
    assert list(report["per_class"]) == list(CLASSES)
    for values in report["per_class"].values():
        assert set(values) == {"precision", "recall", "f1", "support"}
        assert values["support"] == 1
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (7, 7) and matrix.sum() == 7
    assert report["accuracy"] == pytest.approx(np.trace(matrix) / 7)
    # the same validation split as training saw: its accuracy is the one in the checkpoint
    from core.checkpoint import load_checkpoint

    assert report["accuracy"] == pytest.approx(load_checkpoint(out).meta["metrics"]["val"]["accuracy"])


def assert_one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


def test_evaluate_refuses_a_bad_checkpoint(trained, tmp_path):
    data, _, _ = trained
    bad = tmp_path / "bad.pt"
    bad.write_bytes(os.urandom(2048))
    line = assert_one_line_error(run("-m", "core.evaluate", "--checkpoint", str(bad), "--data", str(data), "--json"))
    assert "not a checkpoint" in line


# The same entry points called in this process (no start-up cost), for the remaining cases.


def test_evaluate_plain_text(trained, capsys):
    from core.evaluate import main

    data, out, _ = trained
    assert main(["--checkpoint", str(out), "--data", str(data), "--split", "train"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("train: accuracy ") and "anger" in printed and "n=4" in printed


def test_evaluate_refuses_a_missing_split(trained, capsys):
    from core.evaluate import main

    data, out, _ = trained
    assert main(["--checkpoint", str(out), "--data", str(data), "--split", "test"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ") and '"test"' in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_evaluate_scores_a_separate_test_zip_as_a_whole(trained, tmp_path, capsys):
    """People the model never saw, in a zip of their own: every image is scored, none split off."""
    from core.evaluate import main

    _, out, _ = trained
    (tmp_path / "held_out.zip").write_bytes(class_zip(per_class=3, seed=1))
    assert main(["--checkpoint", str(out), "--data", str(tmp_path / "held_out.zip"), "--split", "all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 21 and report["classes"] == list(CLASSES)
    assert all(values["support"] == 3 for values in report["per_class"].values())


def test_train_refuses_missing_data(tmp_path, capsys):
    assert train_main(["--data", str(tmp_path / "none"), "--epochs", "1", "--out", str(tmp_path / "m.pt")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: No data set") and len(captured.err.strip().splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()


def test_the_command_line_defaults_are_the_configs():
    from core.train import TrainConfig, config_from_args, get_args_parser

    assert config_from_args(get_args_parser().parse_args(["--data", "d"])) == TrainConfig(data="d")


def test_every_option_reaches_its_config_field():
    from dataclasses import fields

    from core.train import TrainConfig, config_from_args, get_args_parser

    argv = ["--data", "d", "--labels", "ferplus", "--arch", "vgg16", "--arch-args", '{"fc7": 2048}', "--epochs", "3",
            "--batch-size", "16", "--lr", "0.1", "--optimizer", "adamw", "--momentum", "0.5", "--weight-decay", "0.01",
            "--schedule", "step", "--freeze", "conv1,conv2", "--lr-mult", "head=10,fc=2", "--balance", "sampler",
            "--augment", "none", "--label-smoothing", "0.1", "--no-amp", "--seed", "4", "--init-checkpoint", "c.pt",
            "--pretrained", "--val-fraction", "0.3", "--split-rule", "prefix", "--split-separator", "-", "--out", "o.pt", "--resume", "--max-minutes", "2.5"]
    config = config_from_args(get_args_parser().parse_args(argv))
    assert config == TrainConfig(
        data="d", labels="ferplus", arch="vgg16", arch_args={"fc7": 2048}, epochs=3, batch_size=16, lr=0.1,
        optimizer="adamw", momentum=0.5, weight_decay=0.01, schedule="step", freeze=("conv1", "conv2"),
        lr_multipliers={"head": 10.0, "fc": 2.0}, balance="sampler", augment={"version": 1, "ops": []},
        label_smoothing=0.1, amp=False, seed=4, init_checkpoint="c.pt", pretrained=True, val_fraction=0.3,
        split_rule="prefix", split_separator="-", out="o.pt",
        resume=True, max_minutes=2.5)
    # every field but the step schedule's two differs from its default, so each option was read
    unchanged = {f.name for f in fields(TrainConfig) if getattr(config, f.name) == getattr(TrainConfig(), f.name)}
    assert unchanged == {"step_size", "step_gamma"}


def test_pretrained_for_a_network_without_imagenet_weights_says_so(tmp_path, capsys):
    (tmp_path / "faces.zip").write_bytes(class_zip(per_class=2))
    assert train_main(["--data", str(tmp_path / "faces.zip"), "--arch", "face_vgg", "--pretrained", "--epochs", "1",
                 "--out", str(tmp_path / "model.pt")]) != 0
    message = capsys.readouterr().err
    assert "face_vgg has no ImageNet weights" in message and "Untick" not in message


def test_the_command_line_can_relabel_the_data_before_training(tmp_path, capsys):
    """core.train.main's `relabel` hook (tools/distill_ferplus.py uses it) sees and replaces the splits."""
    (tmp_path / "faces.zip").write_bytes(class_zip(per_class=4))
    seen = []

    def relabel(splits: Splits) -> Splits:
        seen.append(len(splits.train))
        return Splits(splits.train.subset(np.arange(7)), splits.val, splits.test, splits.source)

    assert train_main(["--data", str(tmp_path / "faces.zip"), "--epochs", "1", "--batch-size", "4", "--arch-args",
                 '{"width": 4}', "--out", str(tmp_path / "model.pt")], relabel=relabel) == 0
    assert len(seen) == 1 and seen[0] > 7
    assert ": 7 train," in capsys.readouterr().err, "the relabelled splits are what trains"
