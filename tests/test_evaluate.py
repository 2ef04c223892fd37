"""Tests for scoring a network on a data set (core.evaluate): the engine's validation and the CLI's metrics."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from core.checkpoint import Checkpoint, make_meta, save_checkpoint
from core.classes import EXPRESSION_KEYS, FER2013_KEYS
from core.data import read_class_folders, split_indices
from core.evaluate import evaluate_model, predict, scored_set, shared_class_predictions, validation_sample
from core.images import encode_png
from models.registry import build_model
from tests.test_data import make_zip, people_files
from tests.test_train import draw_pattern, pattern_dataset

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]


def test_evaluation_does_not_need_the_training_engine():
    """Imports flow one way: core.train uses core.evaluate, never the reverse."""
    code = "import sys, core.evaluate; print('core.train' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_predict_gives_probabilities_and_the_mean_loss():
    dataset = pattern_dataset(2, seed=0)
    torch.manual_seed(0)
    model = build_model("face_vgg", 7, width=4, blocks=2, depth=1, hidden=16)
    probabilities, loss = predict(model, "face_vgg", dataset, CPU, batch_size=5)
    assert probabilities.shape == (14, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    expected = -np.log(probabilities[np.arange(14), dataset.y]).mean()
    assert abs(loss - expected) < 1e-4
    assert predict(model, "face_vgg", dataset, CPU, with_loss=False)[1] == 0.0


def test_scoring_on_the_classes_two_label_sets_share():
    """An 8-class model on 7 labels ignores contempt; a 7-class model on 8 labels misses contempt faces."""
    eight = np.array([[0.15, 0.6, 0.1, 0.0, 0.05, 0.1, 0.0, 0.0],  # contempt most likely, then anger
                      [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.7]])
    assert shared_class_predictions(eight, EXPRESSION_KEYS, FER2013_KEYS).tolist() == [0, 6]
    seven = np.array([[0.0, 0.0, 0.0, 0.9, 0.1, 0.0, 0.0]])
    assert shared_class_predictions(seven, FER2013_KEYS, EXPRESSION_KEYS).tolist() == [EXPRESSION_KEYS.index("happiness")]


def test_validation_checks_stop_between_batches():
    dataset = pattern_dataset(4, seed=0)  # 28 images
    model, stop = build_model("face_vgg", 7, width=8), threading.Event()
    model.register_forward_hook(lambda *_: stop.set())  # Stop pressed while the first batch runs
    metrics, _, probabilities = evaluate_model(model, "face_vgg", dataset, CPU, batch_size=4, stop=stop)
    assert len(probabilities) == 4 and sum(m.support for m in metrics.per_class.values()) == 4


def test_a_validation_sample_spans_every_class():
    dataset = pattern_dataset(4, seed=0)  # sorted by class
    sample = validation_sample(dataset, 7)
    assert len(sample) == 7 and set(sample.y.tolist()) == set(range(7))
    assert validation_sample(dataset, 100) is dataset


# --------------------------------------------------------------------------- the command line on a whole test set


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained 7-class face_vgg checkpoint: scoring it checks what is scored, not how well."""
    torch.manual_seed(0)
    arch_args = {"width": 4, "blocks": 2, "depth": 1, "hidden": 16}
    path = tmp_path_factory.mktemp("eval") / "tiny.pt"
    return save_checkpoint(path, build_model("face_vgg", 7, **arch_args), make_meta("face_vgg", arch_args, FER2013_KEYS))


def pattern_files(classes: dict[str, int], folder: str = "") -> dict[str, bytes]:
    """`count` pattern pictures for each class folder name."""
    rng = np.random.default_rng(0)
    return {f"{folder}{name}/{index}.png": encode_png(draw_pattern(label % 7, rng))
            for label, (name, count) in enumerate(classes.items()) for index in range(count)}


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    path.write_bytes(make_zip(files))
    return path


def run_main(*argv: str, capsys) -> tuple[int, str, str]:
    from core.evaluate import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_whole_zip_or_folder_is_one_test_set(tiny_checkpoint, tmp_path, capsys):
    files = pattern_files({"happy": 3, "sad": 2, "angry": 4})
    data = write_zip(tmp_path / "people_it_never_saw.zip", files)
    code, out, _ = run_main("--checkpoint", str(tiny_checkpoint), "--data", str(data), "--split", "all", "--json",
                            capsys=capsys)
    report = json.loads(out)
    assert code == 0 and report["split"] == "all" and report["images"] == 9
    assert report["classes"] == ["anger", "happiness", "sadness"]
    assert [values["support"] for values in report["per_class"].values()] == [4, 3, 2]
    for name, payload in files.items():  # the same images as a folder
        (tmp_path / "folder" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "folder" / name).write_bytes(payload)
    code, out, _ = run_main("--checkpoint", str(tiny_checkpoint), "--data", str(tmp_path / "folder"), "--split", "all",
                            capsys=capsys)
    assert code == 0 and out.startswith("all: accuracy ") and "(9 images)" in out


def test_a_split_zip_gives_its_test_folder_or_all_of_it(tiny_checkpoint, tmp_path, capsys):
    files = (pattern_files({"happy": 4, "sad": 4}, "train/") | pattern_files({"happy": 1, "sad": 1}, "val/")
             | pattern_files({"happy": 2, "sad": 3}, "test/"))
    data = write_zip(tmp_path / "split.zip", files)
    for split, images in (("test", 5), ("val", 2), ("train", 8), ("all", 15)):
        code, out, _ = run_main("--checkpoint", str(tiny_checkpoint), "--data", str(data), "--split", split, "--json",
                                capsys=capsys)
        assert code == 0 and json.loads(out)["images"] == images, split


def test_the_validation_split_is_rebuilt_by_the_rule_the_run_recorded(tmp_path):
    """A run split by file-name prefix is scored on the same people it was judged on, not a random split."""
    data = write_zip(tmp_path / "people.zip", people_files(people=10, classes=("happy", "sad")))
    config = {"seed": 3, "val_fraction": 0.2, "split_rule": "prefix", "split_separator": "_"}
    arch_args = {"width": 4, "blocks": 2, "depth": 1, "hidden": 16}
    checkpoint = Checkpoint(build_model("face_vgg", 7, **arch_args).state_dict(),
                            make_meta("face_vgg", arch_args, FER2013_KEYS, config=config))
    folders = read_class_folders(data, 48, 1)
    _, val, _ = split_indices(folders, "prefix", 0.2, seed=3, separator="_")
    scored = scored_set(checkpoint, str(data), "val", None)
    np.testing.assert_array_equal(scored.x, folders.dataset.x[val])
    random_val = split_indices(folders, "random", 0.2, seed=3)[1]
    assert not np.array_equal(val, random_val), "the random rule would have scored other images"


def test_a_class_the_checkpoint_does_not_know_is_a_clear_error(tiny_checkpoint, tmp_path, capsys):
    data = write_zip(tmp_path / "zoo.zip", pattern_files({"happy": 2, "zebra": 2}))
    for split in ("all", "val"):
        code, out, err = run_main("--checkpoint", str(tiny_checkpoint), "--data", str(data), "--split", split,
                                  capsys=capsys)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
        assert err.startswith("error: The data has a class the checkpoint does not know: zebra.")
    contempt = write_zip(tmp_path / "contempt.zip", pattern_files({"happy": 2, "contempt": 2}))
    _, _, err = run_main("--checkpoint", str(tiny_checkpoint), "--data", str(contempt), "--split", "all", capsys=capsys)
    assert "does not know: contempt." in err


def test_split_all_is_for_class_folders_only(tiny_checkpoint, tmp_path, capsys):
    npz = tmp_path / "fer2013.npz"
    npz.write_bytes(b"")
    code, _, err = run_main("--checkpoint", str(tiny_checkpoint), "--data", str(npz), "--split", "all", capsys=capsys)
    assert code == 2 and "--split all is for a zip or folder" in err
    data = write_zip(tmp_path / "faces.zip", pattern_files({"happy": 2, "sad": 2}))
    code, _, err = run_main("--checkpoint", str(tiny_checkpoint), "--data", str(data), "--split", "all", "--labels",
                            "ferplus", capsys=capsys)
    assert code == 2 and '"ferplus" labels exist only for FER2013' in err
