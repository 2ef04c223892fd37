"""Which start gives which weights and network (core.starting_point), as the fine-tuning page offers them."""
from __future__ import annotations

import pytest

from core.checkpoint import BUNDLED_CHECKPOINT, checkpoint_bytes, load_checkpoint, make_meta
from core.classes import FER2013_KEYS
from core.i18n import LANGUAGES, strings, translate
from core.starting_point import STARTS, starting_point
from models.registry import COURSE_RECIPE, build_model
from tests.conftest import ROOT

SMALL = {"width": 4, "blocks": 2, "depth": 1, "hidden": 16, "dropout": 0.0}


@pytest.fixture(scope="module")
def small_checkpoint() -> bytes:
    return checkpoint_bytes(build_model("face_vgg", 7, **SMALL), make_meta("face_vgg", SMALL, FER2013_KEYS))


def assert_known_notes(point) -> None:
    for note in point.notes:
        assert note.level in ("caption", "info", "warning")
        for code in LANGUAGES:
            assert note.key in strings(code), (note.key, code)
            translate(note.key, code, **note.params)  # every parameter the text needs is there


def test_scratch_keeps_the_page_network():
    point = starting_point("scratch", "face_vgg", {"width": 8})
    assert (point.arch, point.arch_args, point.init, point.init_checkpoint) == ("face_vgg", {"width": 8}, None, None)
    assert point.can_train and not point.pretrained and point.notes == () and point.error is None


def test_the_course_recipe_adds_its_network_arguments():
    point = starting_point("scratch", COURSE_RECIPE["arch"], {}, course=True)
    assert point.course and point.arch_args == COURSE_RECIPE["arch_args"]


def test_imagenet_without_cached_weights_trains_from_scratch_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr("core.starting_point.pretrained_path", lambda arch: tmp_path / "missing.pth")
    point = starting_point("imagenet", "resnet18", {})
    assert point.can_train and not point.pretrained
    assert [(n.level, n.key) for n in point.notes] == [("warning", "ft_imagenet_missing")]
    assert point.notes[0].params == {"path": str(tmp_path / "missing.pth")}
    hosted = starting_point("imagenet", "resnet18", {}, hosted=True)
    assert [(n.key, n.params) for n in hosted.notes] == [("ft_imagenet_missing_hosted", {})]  # no server folder
    assert_known_notes(point)
    assert_known_notes(hosted)


def test_imagenet_with_cached_weights(monkeypatch, tmp_path):
    weights = tmp_path / "resnet18.pth"
    weights.write_bytes(b"weights")
    monkeypatch.setattr("core.starting_point.pretrained_path", lambda arch: weights)
    point = starting_point("imagenet", "resnet18", {})
    assert point.pretrained and point.init is None and point.notes == ()


@pytest.mark.parametrize("start", ["bundled", "session", "upload"])
def test_a_checkpoint_decides_the_network(small_checkpoint, start):
    point = starting_point(start, "vgg16", {"fc7": 2048}, course=True, session_checkpoint=small_checkpoint,
                           upload=small_checkpoint, bundled=small_checkpoint)
    assert point.init is not None and point.init.classes == FER2013_KEYS
    assert (point.arch, point.arch_args, point.course, point.pretrained) == ("face_vgg", SMALL, False, False)
    assert [n.key for n in point.notes] == ["ft_init_info", "ft_arch_from_checkpoint"]
    assert point.can_train and point.error is None
    assert_known_notes(point)


def test_the_config_names_the_start_never_a_translated_label(small_checkpoint):
    point = starting_point("upload", "face_vgg", {}, upload=small_checkpoint)
    assert point.init_checkpoint is None, "an upload lived only in memory: nothing to load again"
    labels = {translate(f"ft_start_{start}", code) for start in STARTS for code in LANGUAGES}
    assert point.init_checkpoint not in labels
    assert [n.key for n in point.notes] == ["ft_init_info"]  # the same network as the page's: nothing to say


@pytest.mark.parametrize("start", ["session", "upload"])
def test_no_checkpoint_yet_cannot_train(start):
    point = starting_point(start, "face_vgg", {})
    assert not point.can_train and point.init is None and point.error is None
    assert [n.key for n in point.notes] == ["ft_no_checkpoint"]
    assert point.arch == "face_vgg"


def test_an_unreadable_upload_is_an_error_and_cannot_train():
    point = starting_point("upload", "face_vgg", {}, upload=b"not a checkpoint" * 100)
    assert not point.can_train and point.init is None
    assert point.error is not None and point.error.key == "err_ckpt_not_ours"
    assert not point.notes, "only the error: not also 'no checkpoint yet'"


@pytest.mark.skipif(not BUNDLED_CHECKPOINT.exists(), reason="the bundled checkpoint is not in this checkout")
def test_the_bundled_checkpoint():
    point = starting_point("bundled", "face_vgg", {})
    assert point.init is not None and point.arch == point.init.meta["arch"] and point.init_checkpoint == "models/checkpoints/fer_face_vgg.pt"
    assert load_checkpoint(ROOT / point.init_checkpoint).meta == point.init.meta  # the command line can load it


def test_an_unknown_start_is_a_programming_error():
    with pytest.raises(ValueError):
        starting_point("imagenet21k", "face_vgg", {})

