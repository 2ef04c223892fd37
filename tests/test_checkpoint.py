"""Tests for core.checkpoint: round trip, atomic writes, and refusing anything that is not ours.

A checkpoint is read with torch.load(weights_only=True), so a pickle that would run code is
refused without running it; the tests prove that with a marker file.
"""
from __future__ import annotations

import json
import pickle
import re
import time
from pathlib import Path

import pytest
import torch

import core.checkpoint as checkpoint_module
from core.checkpoint import FORMAT, Checkpoint, checkpoint_bytes, load_checkpoint, make_meta, save_checkpoint
from core.errors import CheckpointError
from models.registry import build_model

CLASSES = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
ARCH_ARGS = {"width": 4, "blocks": 2, "depth": 1, "hidden": 16, "dropout": 0.0}
_TECHNICAL = re.compile(r"Traceback|Error\b|Exception|<|>|\\n")


def small_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model("face_vgg", len(CLASSES), **ARCH_ARGS)
    # non-default batch-norm statistics, so buffers are part of the round trip
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.num_batches_tracked.fill_(17)
    return model.eval()


def small_meta(**extra) -> dict:
    extra = {"epoch": 3, "metrics": {"val": {"accuracy": 0.5}}, "config": {"lr": 0.01, "freeze": ["conv1"]}} | extra
    return make_meta("face_vgg", ARCH_ARGS, CLASSES, **extra)


def assert_user_message(error: CheckpointError) -> None:
    english, chinese = str(error), error.message("zh")
    assert english and english != error.key and "\n" not in english
    assert not _TECHNICAL.search(english), english
    assert chinese and chinese != english and re.search(r"[\u4e00-\u9fff]", chinese), chinese


def rejected(source) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(source)
    assert_user_message(info.value)
    return info.value


# --------------------------------------------------------------------------- round trip


def test_round_trip_keeps_meta_classes_and_weights(tmp_path):
    model = small_model()
    meta = small_meta()
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, meta)
    assert path == tmp_path / "sub" / "m.pt" and path.exists()
    loaded = load_checkpoint(path)
    assert isinstance(loaded, Checkpoint)
    assert loaded.meta == meta
    assert loaded.meta["format"] == FORMAT and loaded.meta["input_size"] == 48 and loaded.meta["channels"] == 1
    assert loaded.meta["mean"] == [0.5] and loaded.meta["std"] == [0.25]
    assert loaded.classes == CLASSES
    original = model.state_dict()
    assert set(loaded.state_dict) == set(original)
    for name, tensor in original.items():
        assert torch.equal(loaded.state_dict[name], tensor), name


def test_build_gives_the_same_outputs(tmp_path):
    model = small_model()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "m.pt", model, small_meta()))
    rebuilt = loaded.build()
    assert not rebuilt.training
    x = torch.randn(5, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_load_from_bytes(tmp_path):
    model = small_model()
    loaded = load_checkpoint(checkpoint_bytes(model, small_meta()))
    assert loaded.classes == CLASSES


def test_save_overwrites_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, small_model(0), small_meta())
    save_checkpoint(path, small_model(1), small_meta(epoch=4))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    assert load_checkpoint(path).meta["epoch"] == 4


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    save_checkpoint(path, small_model(0), small_meta())
    before = path.read_bytes()

    def fail(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "checkpoint_bytes", fail)
    with pytest.raises(OSError):
        save_checkpoint(path, small_model(1), small_meta())
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- refusals


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(bytes(range(256)) * 40)
    assert rejected(path).key == "err_ckpt_not_ours"


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    assert rejected(path).key == "err_ckpt_not_ours"


def test_plain_state_dict_is_refused(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(small_model().state_dict(), path)
    assert rejected(path).key == "err_ckpt_not_ours"
    torch.save({"weights": torch.zeros(3), "format": "something else"}, path)
    assert rejected(path).key == "err_ckpt_not_ours"


class _Marker:
    """Unpickling this creates a file: it stands for any code a hostile pickle would run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_pickle_that_runs_code_is_refused_without_running(tmp_path):
    # the payload is live: plain pickle would create the marker
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Marker(proof)))
    assert proof.exists()

    marker = tmp_path / "marker"
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"format": FORMAT, "meta_json": "{}", "state_dict": _Marker(marker)}, protocol=2))
    assert rejected(raw).key == "err_ckpt_not_ours"
    assert not marker.exists()

    saved = tmp_path / "saved.pt"
    torch.save({"format": FORMAT, "meta_json": json.dumps(small_meta()), "state_dict": _Marker(marker)}, saved)
    assert rejected(saved).key == "err_ckpt_not_ours"
    assert rejected(saved.read_bytes()).key == "err_ckpt_not_ours"
    assert not marker.exists()


def test_truncated_checkpoint_is_refused(tmp_path):
    data = checkpoint_bytes(small_model(), small_meta())
    for cut in (len(data) // 2, len(data) - 100, 40):
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(data[:cut])
        assert rejected(path).key == "err_ckpt_not_ours"


def test_unknown_architecture_is_refused(tmp_path):
    meta = small_meta() | {"arch": "alexnet_9000"}
    path = tmp_path / "unknown.pt"
    torch.save({"format": FORMAT, "meta_json": json.dumps(meta), "state_dict": small_model().state_dict()}, path)
    error = rejected(path)
    assert error.key == "err_ckpt_unknown_arch"
    assert "alexnet_9000" in str(error) and "alexnet_9000" in error.message("zh")


@pytest.mark.parametrize("change", ["version", "missing_key", "bad_json"])
def test_other_versions_and_broken_meta_are_refused(tmp_path, change):
    meta = small_meta()
    if change == "version":
        meta_json = json.dumps(meta | {"version": 99})
    elif change == "missing_key":
        meta_json = json.dumps({k: v for k, v in meta.items() if k != "classes"})
    else:
        meta_json = "{not json"
    path = tmp_path / "x.pt"
    torch.save({"format": FORMAT, "meta_json": meta_json, "state_dict": {}}, path)
    assert rejected(path).key == "err_ckpt_not_ours"


def test_weights_that_do_not_fit_are_refused_before_any_build(tmp_path, monkeypatch):
    other = build_model("face_vgg", len(CLASSES), **(ARCH_ARGS | {"width": 8}))
    path = save_checkpoint(tmp_path / "m.pt", other, small_meta())  # meta says width 4
    monkeypatch.setattr(Checkpoint, "build", lambda self: pytest.fail("built a network from a bad checkpoint"))
    assert rejected(path).key == "err_ckpt_mismatch"


def crafted(tmp_path, meta_json: str, state_dict=None) -> Path:
    path = tmp_path / "crafted.pt"
    torch.save({"format": FORMAT, "meta_json": meta_json, "state_dict": state_dict or {}}, path)
    return path


def test_a_tiny_fake_vgg16_is_refused_quickly_without_building_it(tmp_path):
    path = crafted(tmp_path, json.dumps(make_meta("vgg16", {}, CLASSES)), {"features.0.weight": torch.zeros(2)})
    started = time.perf_counter()
    assert rejected(path).key == "err_ckpt_mismatch"
    assert time.perf_counter() - started < 5  # building VGG16 for real takes seconds and 700 MB


def test_deeply_nested_metadata_is_refused(tmp_path):
    assert rejected(crafted(tmp_path, "[" * 100_000 + "]" * 100_000)).key == "err_ckpt_not_ours"


@pytest.mark.parametrize("change", [
    {"input_size": "abc"}, {"input_size": 4096}, {"input_size": True}, {"channels": 3}, {"arch_args": []},
    {"arch_args": {"width": "wide"}}, {"arch_args": {"width": 10_000}}, {"arch_args": {"evil": 1}},
    {"classes": "anger"}, {"classes": ["a"]}, {"classes": ["a", "a"]}, {"classes": [1, 2]},
    {"classes": ["x" * 100, "y"]}, {"mean": ["a"]}, {"std": [0.1, 0.2]}, {"arch": ["face_vgg"]},
])
def test_metadata_of_the_wrong_type_or_range_is_refused(tmp_path, change):
    meta = small_meta() | change
    path = crafted(tmp_path, json.dumps(meta), small_model().state_dict())
    assert rejected(path).key in ("err_ckpt_not_ours", "err_ckpt_unknown_arch")


def test_missing_file(tmp_path):
    assert rejected(tmp_path / "nowhere.pt").key == "err_ckpt_missing"


def test_messages_in_both_languages():
    error = CheckpointError("err_ckpt_not_ours")
    assert ".pt" in str(error) and "fine-tuning page" in str(error)
    assert_user_message(error)
