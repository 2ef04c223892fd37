"""core.runs: the lecture's comparison as three configs, and what is kept of a run."""
from __future__ import annotations

import threading

import pytest

from core.jobs import Job
from core.runs import COMPARISON, PlannedRun, augmentation_kind, comparison_plan, inits, record_run
from core.starting_point import starting_point
from core.train import EpochRecord, TrainConfig


def _plan(**changes) -> PlannedRun:
    config = TrainConfig(data="upload.zip", arch="vgg16", arch_args={"fc7": 2048}, epochs=3, batch_size=16, lr=0.01,
                         seed=7, balance="sampler", augment={"version": 1, "ops": []}, freeze=("conv1",),
                         lr_multipliers={"conv1": 0.1, "conv5": 2.0, "head": 10.0}, pretrained=True)
    return PlannedRun("imagenet", config, "zip", (40, 10), **changes)


def _epoch(epoch: int, accuracy: float, f1: float = 0.5) -> EpochRecord:
    return EpochRecord(epoch, 1.0, 0.5, 1.2, accuracy, f1, 100.0, 2.0, 10)


@pytest.fixture(scope="module")
def bundled():
    return starting_point("bundled", "face_vgg", {})


def test_the_comparison_is_the_lectures_three_rows_on_the_bundled_network(bundled):
    plans = comparison_plan(_plan(), bundled)
    assert [plan.name_key for plan in plans] == [f"runs_compare_{kind}" for kind in COMPARISON]
    assert [plan.start for plan in plans] == ["scratch", "bundled", "bundled"]
    scratch, fc, whole = (plan.config for plan in plans)
    for config in (scratch, fc, whole):  # one network, the page's settings, the same epochs and seed
        assert config.arch == "face_vgg" and config.arch_args == bundled.arch_args and not config.pretrained
        assert (config.epochs, config.seed, config.lr, config.batch_size, config.balance) == (3, 7, 0.01, 16, "sampler")
        assert config.augment == {"version": 1, "ops": []} and config.data == "upload.zip"
        assert config.lr_multipliers == {"conv1": 0.1, "head": 10.0}  # vgg16's conv5 is not in face_vgg
    assert scratch.init_checkpoint is None and scratch.freeze == ()
    assert fc.init_checkpoint == whole.init_checkpoint == "models/checkpoints/fer_face_vgg.pt"
    assert fc.freeze == ("conv1", "conv2", "conv3", "conv4") and whole.freeze == ()
    assert all(plan.data == "zip" and plan.images == (40, 10) for plan in plans)
    assert inits(plans, bundled) == [None, bundled.init, bundled.init]


def test_only_the_fc_layers_train_whatever_the_network(bundled):
    """resnet18 has no fc group: "only the FC layers" is its head."""
    resnet = type(bundled)("resnet18", {}, init=bundled.init, init_checkpoint=None)
    assert comparison_plan(_plan(), resnet)[1].config.freeze == ("conv1", "layer1", "layer2", "layer3", "layer4")


def test_no_comparison_without_the_bundled_model():
    missing = starting_point("bundled", "face_vgg", {}, bundled=b"not a checkpoint")
    assert missing.init is None
    with pytest.raises(ValueError):
        comparison_plan(_plan(), missing)


def test_a_kept_run_has_its_curves_best_epoch_and_minutes():
    job = Job(TrainConfig(), owner="visitor", started=100.0, ended=220.0)
    job.progress.epochs.extend([_epoch(1, 0.4), _epoch(2, 0.7, 0.65), _epoch(3, 0.7), _epoch(4, 0.6)])
    job.progress.finish(stopped=False)
    record = record_run(3, _plan(), job)
    assert record.number == 3 and record.status == "finished" and record.minutes == 2.0
    assert [e.epoch for e in record.epochs] == [1, 2, 3, 4]
    assert record.best.epoch == 2 and record.best.macro_f1 == 0.65  # the first of equal accuracies
    job.progress.epochs.clear()
    assert record.epochs[-1].epoch == 4, "the record keeps its own curves"


def test_a_run_without_a_validated_epoch_is_not_kept():
    skipped = Job(TrainConfig(), owner="visitor", started=None, ended=5.0)
    assert skipped.skipped and record_run(1, _plan(), skipped) is None


def test_a_running_job_is_not_a_record():
    job = Job(TrainConfig(), owner="visitor", thread=threading.current_thread())
    with pytest.raises(ValueError):
        record_run(1, _plan(), job)


@pytest.mark.parametrize("spec, kind", [(None, "default"), ({"version": 1, "ops": []}, "none"),
                                        ({"version": 1, "ops": [{"op": "hflip", "p": 0.5}]}, "page")])
def test_augmentation_is_named_as_the_page_names_it(spec, kind):
    assert augmentation_kind(spec) == kind
