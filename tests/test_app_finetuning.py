"""AppTest for the fine-tuning page: a short run shows its metrics; a second start meets the busy message."""
from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.images import encode_png
from core.jobs import server_runner
from tests.test_app import APP

FER_CLASSES = np.array(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"])


def _tiny_fer(folder, per_class: int = 20) -> None:
    """A learnable FER2013-shaped .npz: each class is a bright band at its own height."""
    rng = np.random.default_rng(0)

    def split(count: int):
        y = np.repeat(np.arange(7), count)
        x = (rng.random((len(y), 48, 48)) * 60).astype(np.uint8)
        for index, label in enumerate(y):
            x[index, 6 * label:6 * label + 6] = 230
        return x, y

    (xt, yt), (xv, yv) = split(per_class), split(4)
    np.savez(folder / "fer2013.npz", x_train=xt, y_train=yt, x_val=xv, y_val=yv, classes=FER_CLASSES)
    # FER+ votes: 9 for the file's own class, except contempt for every fourth image
    columns = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]
    own = {"angry": "anger", "happy": "happiness", "sad": "sadness"}

    def votes(labels):
        table = np.zeros((len(labels), 10), np.uint8)
        for row, label in enumerate(labels):
            name = "contempt" if row % 4 == 0 else own.get(FER_CLASSES[label], FER_CLASSES[label])
            table[row, columns.index(name)] = 9
        return table

    np.savez(folder / "ferplus.npz", votes_train=votes(yt), votes_val=votes(yv), columns=np.array(columns))


@pytest.fixture()
def page_factory(tmp_path, monkeypatch):
    _tiny_fer(tmp_path)
    monkeypatch.setenv("FACELAB_DATA_DIR", str(tmp_path))
    # AppTest gives every app the same session id: give each its own, and count them all as connected
    monkeypatch.setattr("app_pages._shared.session_id", lambda: st.session_state.setdefault("test_id", uuid.uuid4().hex))
    monkeypatch.setattr("app_pages._shared.session_alive", lambda session: True)

    def open_page() -> AppTest:
        at = AppTest.from_file(APP, default_timeout=180)
        at.run()
        at.switch_page("app_pages/finetuning.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        at.select_slider(key="ft_width").set_value(8).run()
        at.select_slider(key="ft_batch").set_value(16).run()
        return at

    yield open_page
    for job in server_runner().running():  # never leave a job behind for the next test
        job.stop.set()
        job.thread.join(timeout=60)


def _wait(at: AppTest, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while at.session_state["ft_job"].running and time.monotonic() < deadline:
        time.sleep(0.5)
    at.run()


def test_short_run_shows_metrics_and_a_checkpoint(page_factory):
    at = page_factory()
    at.slider(key="ft_epochs").set_value(2).run()
    at.button(key="ft_train_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    _wait(at)
    job = at.session_state["ft_job"]
    assert job.progress.status == "finished", job.progress.error
    assert len(job.progress.epochs) == 2
    assert [m.label for m in at.metric] == ["Throughput", "Time left", "Server memory (peak)", "Best validation accuracy"]
    kept = job.progress.best_epoch  # a finished run shows the epoch whose weights it kept
    assert any(s.value.startswith(f"Epoch {kept}, the best, whose weights the run kept: validation accuracy")
               for s in at.subheader)
    assert any("Best validation accuracy" in s.value for s in at.success)
    layouts = {layout["title"]["text"]: layout for layout in
               (json.loads(chart.proto.spec)["layout"] for chart in at.get("plotly_chart"))}
    accuracy = layouts["Accuracy and macro-F1 per epoch"]
    assert accuracy["xaxis"]["dtick"] == 1, "whole epochs only, no tick at 0.5"
    assert accuracy["legend"]["y"] >= 1 and accuracy["legend"]["yanchor"] == "bottom", "legend clear of the axis title"
    at.button(key="ft_use").click().run()
    assert at.session_state["prediction_checkpoint"] == job.checkpoint
    assert not Path(job.config.out).parent.exists()  # the job's folder went with the job


def test_fer_plus_votes_train_an_8_class_model(page_factory):
    at = page_factory()
    at.radio(key="ft_source_en").set_value("ferplus").run()
    assert not at.exception, [e.value for e in at.exception]
    at.slider(key="ft_epochs").set_value(1).run()
    at.button(key="ft_train_button").click().run()
    _wait(at)
    job = at.session_state["ft_job"]
    assert job.progress.status == "finished", job.progress.error
    assert "contempt" in job.progress.classes and len(job.progress.classes) == 8
    assert job.config.labels == "ferplus"


def test_second_start_sees_busy_message_then_stop(page_factory):
    first = page_factory()
    first.slider(key="ft_epochs").set_value(50).run()
    first.button(key="ft_train_button").click().run()
    job = first.session_state["ft_job"]
    try:
        assert job.running
        while job.progress.eta_s is None and job.running:  # its first batch gives the time it will take
            time.sleep(0.05)
        second = page_factory()
        assert second.button(key="ft_train_button").disabled
        warnings = " ".join(w.value for w in second.warning)
        assert "Another visitor's training job is using this server's training slot" in warnings
        assert "min" in warnings and "Running job (" in " ".join(p.text for p in second.get("progress"))
        assert not second.get("button") or "ft_stop_orphan" not in [b.key for b in second.button]
        assert "ft_job" not in second.session_state
    finally:
        first.button(key="ft_stop_button").click().run()
    _wait(first, 60)
    assert job.progress.status == "stopped"


def test_hosted_mode_shows_no_server_path_and_no_oversized_network(page_factory, monkeypatch, tmp_path):
    monkeypatch.setenv("FACELAB_HOSTED", "1")
    at = page_factory()
    assert [t.key for t in at.text_input] == []  # no data-folder box
    page_text = " ".join(str(e.value) for kind in ("markdown", "caption", "warning", "info") for e in at.get(kind))
    assert str(tmp_path) not in page_text
    assert "vgg16" not in at.selectbox(key="ft_arch_en").options and "Face VGG" in " ".join(at.selectbox(key="ft_arch_en").options)
    assert at.slider(key="ft_epochs").max == 30
    at.radio(key="ft_source_en").set_value("ferplus").run()  # the host's FER2013 is still offered
    assert not at.exception and not at.warning


def test_a_data_folder_that_cannot_exist_is_a_message(page_factory):
    at = page_factory()
    at.text_input(key="ft_data_dir").input("x" * 5000).run()
    assert not at.exception
    assert "not a folder name that can exist" in " ".join(e.value for e in at.error)


def test_a_batch_over_the_memory_limit_disables_train(page_factory, monkeypatch):
    monkeypatch.setenv("FACELAB_HOSTED", "1")
    at = page_factory()
    at.select_slider(key="ft_batch").set_value(512).run()
    at.select_slider(key="ft_width").set_value(64).run()
    assert "needs about" in " ".join(e.value for e in at.error)
    assert at.button(key="ft_train_button").disabled


def test_a_job_whose_visitor_left_can_be_stopped_by_another(page_factory, monkeypatch):
    first = page_factory()
    first.slider(key="ft_epochs").set_value(50).run()
    first.button(key="ft_train_button").click().run()
    job = first.session_state["ft_job"]
    try:
        monkeypatch.setattr("app_pages._shared.session_alive", lambda session: session != job.owner)
        second = page_factory()
        assert "has left" in " ".join(c.value for c in second.caption)
        second.button(key="ft_stop_orphan").click().run()
        job.thread.join(timeout=60)
        assert job.progress.status == "stopped"
    finally:
        job.stop.set()
        job.thread.join(timeout=60)


def test_imagenet_weights_are_offered_only_for_networks_that_have_them(page_factory):
    at = page_factory()
    assert "ImageNet weights" not in at.radio(key="ft_start_en").options  # face_vgg has none
    at.selectbox(key="ft_arch_en").set_value("vgg16").run()
    assert "ImageNet weights" in at.radio(key="ft_start_en").options


# --------------------------------------------------------------------------- comparing runs


def _class_zip(per_class: int = 5) -> bytes:
    """Two classes of 48×48 faces-to-be: a bright band at the top for happy, at the bottom for sad."""
    rng = np.random.default_rng(1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, rows in (("happy", slice(4, 14)), ("sad", slice(34, 44))):
            for index in range(per_class):
                image = (rng.random((48, 48)) * 60).astype(np.uint8)
                image[rows] = 230
                archive.writestr(f"{label}/{index}.png", encode_png(np.repeat(image[:, :, None], 3, axis=2)))
    return buffer.getvalue()


def _zip_page(page_factory) -> AppTest:
    at = page_factory()
    at.radio(key="ft_source_en").set_value("zip").run()
    next(u for u in at.get("file_uploader") if u.key == "ft_zip").set_value(
        ("faces.zip", _class_zip(), "application/zip")).run()
    at.slider(key="ft_epochs").set_value(1).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _wait_for_all(at: AppTest) -> None:
    """Until every run this session started has ended and is kept."""
    deadline = time.monotonic() + 180
    while at.session_state["runs_pending"] and time.monotonic() < deadline:
        _wait(at)
    assert not at.exception, [e.value for e in at.exception]


def _train(at: AppTest) -> None:
    at.button(key="ft_train_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    _wait_for_all(at)


def _runs_table(at: AppTest):
    return next(frame.value for frame in at.dataframe if "#" in frame.value.columns)


def _legends(at: AppTest) -> dict[str, list[tuple[str, str]]]:
    """(name, colour) of each curve, by chart title, of the shared run charts."""
    charts = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec["layout"].get("title", {}).get("text", "")
        charts[title] = [(trace.get("name"), trace.get("line", {}).get("color")) for trace in spec["data"]]
    return charts


def test_runs_are_kept_renamed_and_shown_on_shared_charts(page_factory):
    at = _zip_page(page_factory)
    _train(at)
    at.number_input(key="ft_lr_sgd").set_value(0.01).run()
    _train(at)
    kept = at.session_state["runs_kept"]
    assert [record.number for record in kept] == [1, 2] and [r.plan.config.lr for r in kept] == [0.05, 0.01]
    assert all(r.plan.data == "zip" and r.plan.images == (8, 2) and len(r.epochs) == 1 for r in kept)
    table = _runs_table(at)
    assert list(table["Name"]) == ["Run 1", "Run 2"] and list(table["Learning rate"]) == ["0.05", "0.01"]
    assert list(table["Data set"]) == ["my zip: 8 train, 2 validation"] * 2
    assert list(table["Start from"]) == ["random weights"] * 2 and list(table["Outcome"]) == ["finished, 1 epoch"] * 2
    accuracy = _legends(at)["Validation accuracy per epoch"]
    assert [name for name, _ in accuracy] == ["Run 1", "Run 2"] and accuracy[0][1] != accuracy[1][1]
    loss = _legends(at)["Loss per epoch (solid: validation, dotted: train)"]
    assert {colour for name, colour in loss if name.startswith("Run 1")} == {accuracy[0][1]}, "one colour per run"

    at.text_input(key="runs_name_1").input("fast rate").run()
    at.checkbox(key="runs_shown_2").uncheck().run()
    assert list(_runs_table(at)["Name"]) == ["fast rate", "Run 2"]
    assert [name for name, _ in _legends(at)["Validation macro-F1 per epoch"]] == ["fast rate"]
    at.sidebar.radio(key="lang").set_value("zh").run()
    assert not at.exception, [e.value for e in at.exception]
    assert list(_runs_table(at)["名称"]) == ["fast rate", "第 2 次训练"]


def test_the_drill_down_shows_a_cells_faces_with_their_scores(page_factory):
    at = _zip_page(page_factory)
    _train(at)
    validation = at.session_state["ft_job"].progress.best_validation
    assert validation.probabilities.shape == (2, 2) and (validation.labels == [0, 1]).all()
    confusion = validation.metrics.confusion  # until the visitor picks, the pickers show the commonest mistake
    mistakes = np.where(np.eye(2, dtype=bool), 0, confusion)
    fullest = np.unravel_index(mistakes.argmax(), (2, 2)) if mistakes.any() else (confusion.diagonal().argmax(),) * 2
    assert (at.selectbox(key="ft_cm_true_en").value, at.selectbox(key="ft_cm_pred_en").value) == tuple(fullest)
    for true_class in (0, 1):
        at.selectbox(key="ft_cm_true_en").set_value(true_class).run()
        predicted = int(validation.probabilities[true_class].argmax())
        at.selectbox(key="ft_cm_pred_en").set_value(predicted).run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("1 face is" in c.value for c in at.caption)
        faces = at.get("image")[-1].captions
        assert len(faces) == 1 and faces[0].startswith(f"predicted {validation.probabilities[true_class].max():.0%}")
        at.selectbox(key="ft_cm_pred_en").set_value(1 - predicted).run()
        assert any(c.value.startswith("No face is") for c in at.caption)


def test_the_comparison_runs_the_lectures_three_starts_one_after_another(page_factory):
    at = _zip_page(page_factory)
    at.button(key="runs_compare_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    pending = at.session_state["runs_pending"]
    assert [job.place for _, _, job in pending] == [(1, 3), (2, 3), (3, 3)]
    configs = [plan.config for _, plan, _ in pending]
    assert [c.freeze for c in configs] == [(), ("conv1", "conv2", "conv3", "conv4"), ()]
    assert [c.init_checkpoint for c in configs] == [None] + ["models/checkpoints/fer_face_vgg.pt"] * 2
    assert {(c.epochs, c.seed, c.arch) for c in configs} == {(1, 0, "face_vgg")}
    assert any("Comparison: run 1 of 3" in i.value for i in at.info)
    started = time.perf_counter()
    _wait_for_all(at)
    print(f"\ncomparison of 3 one-epoch runs on 10 images: {time.perf_counter() - started:.1f} s")
    kept = at.session_state["runs_kept"]
    assert [record.plan.start for record in kept] == ["scratch", "bundled", "bundled"]
    table = _runs_table(at)
    assert list(table["Name"]) == ["Random initialisation", "Bundled model, only the FC layers trained",
                                   "Bundled model, whole network fine-tuned"]
    assert list(table["Frozen layer groups"]) == ["–", "conv1, conv2, conv3, conv4", "–"]
