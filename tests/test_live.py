"""The live camera's logic (core.live) on synthetic frames made from the sample photo: boxes and labels
drawn, one network batch per frame, smoothing, tracking, frame skipping, frames per second, the
low-rate explanation; and the ICE-server setting it is served with."""
from __future__ import annotations

import asyncio
import threading
import time

import av
import numpy as np
import pytest

import core.live as live_module
from bench.bench_faces import small_photo
from bench.bench_live import newest_only, stream
from core.classes import EXPRESSION_KEYS, colour
from core.live import (
    MAX_MISSED,
    IouTracker,
    LiveSession,
    RateCounter,
    StreamSlots,
    TrackedFace,
    annotate,
    face_label,
    label_font,
    server_slots,
)
from core.predict import bundled_predictor
from core.settings import load_settings, read_secrets_table


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    """640x480, one face of about 150 px."""
    return small_photo()


@pytest.fixture(scope="module")
def two_faces(portrait) -> np.ndarray:
    """640x480, the portrait's middle twice side by side: two faces."""
    return np.ascontiguousarray(np.hstack([portrait[:, 160:480], portrait[:, 160:480]]))


@pytest.fixture()
def predictor_calls(monkeypatch):
    """Counts the network's batches and Grad-CAM runs of the shared bundled predictor."""
    predictor = bundled_predictor()
    calls = {"probabilities": [], "explain": 0}
    probabilities, explain = predictor.probabilities, predictor.explain

    def counted_probabilities(crops, tta=False):
        calls["probabilities"].append(len(crops))
        return probabilities(crops, tta)

    def counted_explain(*args, **kwargs):
        calls["explain"] += 1
        return explain(*args, **kwargs)

    monkeypatch.setattr(predictor, "probabilities", counted_probabilities)
    monkeypatch.setattr(predictor, "explain", counted_explain)
    return calls


def test_every_face_gets_its_box_and_label_drawn_in_its_expression_colour(portrait):
    live = LiveSession(bundled_predictor(), explain=False)
    out = live.process(portrait)
    (face,) = live.state().faces
    assert out.shape == portrait.shape and not np.shares_memory(out, portrait)
    assert face.top_class == "happiness" and list(face.scores) == list(EXPRESSION_KEYS)
    assert sum(face.scores.values()) == pytest.approx(1.0)
    left, top, width, height = face.box
    paint = np.array([int(colour("happiness")[i:i + 2], 16) for i in (1, 3, 5)])
    assert (out[top + height // 2, left] == paint).all() and (out[top + height - 1, left + width // 2] == paint).all()
    label = out[max(0, top - 20):top, left:left + 100]
    assert (label == paint).all(axis=2).mean() > 0.3, "a label filled with the colour sits above the box"
    assert (label == 255).all(axis=2).any(), "with white text in it"
    untouched = np.ones(portrait.shape[:2], bool)
    untouched[max(0, top - 30):top + height + 2, max(0, left - 2):left + width + 120] = False
    assert (out[untouched] == portrait[untouched]).all(), "nothing else is drawn"


def test_several_faces_are_classified_in_one_batch_per_frame(two_faces, predictor_calls):
    live = LiveSession(bundled_predictor(), explain=False)
    for _ in range(2):
        live.process(two_faces)
    assert predictor_calls["probabilities"] == [2, 2], "one batch of both faces per frame"
    faces = live.state().faces
    assert len(faces) == 2 and faces[0].box[2] * faces[0].box[3] >= faces[1].box[2] * faces[1].box[3]
    assert [face.frames for face in faces] == [2, 2] and len({face.track for face in faces}) == 2


def test_scores_are_averaged_over_the_window_and_the_window_can_change():
    tracker = IouTracker(window=3)
    box = (10, 10, 100, 100)
    results = [tracker.update([box], np.array([p]))[0] for p in ([1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0])]
    assert [frames for _, _, frames in results] == [1, 2, 3, 3]
    assert results[1][1] == pytest.approx([0.5, 0.5]) and results[3][1] == pytest.approx([0.0, 1.0])
    tracker.set_window(5)
    [(_, smoothed, frames)] = tracker.update([box], np.array([[1.0, 0.0]]))
    assert frames == 4 and smoothed == pytest.approx([0.25, 0.75]), "a wider window keeps what it had"
    tracker.set_window(1)
    assert tracker.update([box], np.array([[0.2, 0.8]]))[0][1:] == (pytest.approx([0.2, 0.8]), 1)


def test_the_tracker_follows_a_moving_face_tells_faces_apart_and_forgets_a_lost_one():
    tracker = IouTracker(window=4)
    scores = np.array([[0.5, 0.5]])
    first = tracker.update([(100, 100, 80, 80)], scores)[0][0]
    assert tracker.update([(110, 104, 80, 80)], scores)[0][0] == first, "moved a little: the same face"
    both = tracker.update([(400, 100, 80, 80), (115, 106, 80, 80)], np.array([[1.0, 0.0], [0.5, 0.5]]))
    assert both[1][0] == first and both[1][2] == 3 and both[0][0] != first and both[0][2] == 1
    for _ in range(MAX_MISSED):
        tracker.update([(400, 100, 80, 80)], np.array([[1.0, 0.0]]))
    assert tracker.update([(115, 106, 80, 80)], scores)[0][0] == first, "back within MAX_MISSED frames"
    for _ in range(MAX_MISSED + 1):
        tracker.update([], np.zeros((0, 2)))
    assert tracker.update([(115, 106, 80, 80)], scores)[0][0] not in (first, both[0][0]), "gone too long: new"


def wait_until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture()
def gated(portrait, monkeypatch):
    """A session whose network waits for `gate`, and 6 numbered frames."""
    live, gate = LiveSession(bundled_predictor(), explain=False), threading.Event()
    predict_many = live.predictor.predict_many

    def after_the_gate(*args, **kwargs):
        assert gate.wait(30)
        return predict_many(*args, **kwargs)

    monkeypatch.setattr(live.predictor, "predict_many", after_the_gate)
    frames = [av.VideoFrame.from_ndarray(portrait, format="rgb24") for _ in range(6)]
    for number, frame in enumerate(frames):
        frame.pts = number
    return live, gate, frames


def test_frames_that_arrive_during_processing_are_skipped_not_queued(gated, portrait):
    live, gate, frames = gated
    assert asyncio.run(live.on_frames(frames[:3])) == [], "the newest goes to the session's thread"
    assert asyncio.run(live.on_frames(frames[3:5])) == [], "that thread is busy: skipped"
    gate.set()
    live._busy.result(timeout=30)  # the session's thread has finished the frame
    assert (live.state().processed, live.state().skipped) == (1, 2)
    (out,) = asyncio.run(live.on_frames(frames[5:]))
    assert out.pts == 2 and (out.width, out.height) == (640, 480), "the annotated frame of the newest"
    assert not (out.to_ndarray(format="rgb24") == portrait).all()
    wait_until(lambda: live.state().processed == 2)
    assert live.state().skipped == 4, "the 2 frames handed over while busy, counted with the next"


def test_a_frame_still_processed_when_the_stream_ends_leaves_nothing(gated):
    live, gate, frames = gated
    asyncio.run(live.on_frames(frames[:1]))
    busy = live._busy
    time.sleep(0.2)  # the session's thread is in the network now
    live.reset()
    gate.set()
    busy.result(timeout=30)
    state = live.state()
    assert (state.processed, state.faces) == (0, ())


def test_a_camera_faster_than_the_machine_gets_skipped_frames_and_no_growing_delay(portrait):
    """streamlit-webrtc's own track, fed at 30 fps, with frames that take at least 0.1 s each."""
    live, ages = LiveSession(bundled_predictor(), explain=False), []
    process = live.process

    def slow(rgb, skipped=0):
        started = time.monotonic()
        out = process(rgb, skipped)
        time.sleep(max(0.0, started + 0.1 - time.monotonic()))
        return out

    live.process = slow
    run = stream(newest_only(live, ages), portrait, seconds=1.5)
    state = live.state()
    assert run["error"] is None and run["sent"] >= 40 and max(run["handed"]) < 10
    assert 1 <= state.processed <= run["sent"] / 3 and len(ages) >= state.processed - 1
    assert state.skipped > 0 and state.processed + state.skipped <= run["sent"]
    assert max(ages) < 1.0, f"no queue: every annotated frame is fresh ({max(ages):.2f} s)"


def test_frames_per_second_count_processed_and_arrived_frames():
    clock = Clock()
    counter = RateCounter(seconds=2.0)
    assert counter.rate(clock.now) == 0.0
    counter.add(clock.now)
    for _ in range(8):
        clock.now += 0.125
        counter.add(clock.now)
    assert counter.rate(clock.now) == 8.0, "8 frames after the first in 1 s"
    for _ in range(16):
        clock.now += 0.125
        counter.add(clock.now, count=3)
    assert counter.rate(clock.now) == 24.0, "16 calls of 3 frames in the last 2 s"
    assert counter.rate(clock.now + 5) == 0.0, "the stream stopped"
    sparse = RateCounter(seconds=2.0)
    for second in (0, 5, 10):
        sparse.add(clock.now + second, count=150)
    assert sparse.rate(clock.now + 10) == 30.0, "150 frames handed every 5 s: 30 a second, not 75"


def test_the_explanation_is_refreshed_about_once_a_second_and_can_be_turned_off(portrait, predictor_calls):
    clock = Clock()
    live = LiveSession(bundled_predictor(), explain=True, explain_every=1.0, clock=clock)
    for step in (0.0, 0.4, 0.4, 0.4):
        clock.now += step
        live.process(portrait)
    assert predictor_calls["explain"] == 2, "at 0 s and 1.2 s"
    state = live.state()
    assert state.explanation is not None and state.explained.top_class == "happiness"
    assert state.explanation.grad_cam.shape == state.explanation.attention.shape == state.explanation.crop.shape[:2]
    assert state.fps == pytest.approx(3 / 1.2)
    live.configure(window=3, explain=False)
    clock.now += 2
    live.process(portrait)
    assert predictor_calls["explain"] == 2 and live.state().explanation is None and live.state().window == 3
    live.reset()
    state = live.state()
    assert (state.processed, state.faces, state.explanation) == (0, (), None), "nothing kept after Stop"
    with pytest.raises(ValueError, match="window"):
        live.configure(window=0, explain=True)


def test_a_frame_without_a_face_is_sent_back_as_it_is_and_the_faces_go(portrait):
    live = LiveSession(bundled_predictor(), explain=True)
    live.process(portrait)
    wall = np.full_like(portrait, 128)
    assert (live.process(wall) == wall).all()
    state = live.state()
    assert state.faces == () and state.processed == 2 and state.explained is not None, "the last explanation stays"


def test_labels_of_faces_at_the_top_edge_go_below_the_box(portrait):
    face = TrackedFace(1, (200, 0, 150, 150), dict.fromkeys(EXPRESSION_KEYS, 0.0) | {"surprise": 1.0}, 1)
    out = annotate(portrait, [face])
    paint = np.array([int(colour("surprise")[i:i + 2], 16) for i in (1, 3, 5)])
    assert (out[152:165, 205:260] == paint).all(axis=2).mean() > 0.3


def test_labels_speak_the_visitors_language_where_the_server_has_a_font_for_it(monkeypatch):
    frame = np.full((240, 320, 3), 90, np.uint8)
    face = TrackedFace(3, (100, 80, 90, 90), dict.fromkeys(EXPRESSION_KEYS, 0.0) | {"happiness": 0.93}, 4)
    assert face_label(face, "zh") == "#3 高兴 93%" and face_label(face) == "#3 happiness 93%"
    english = annotate(frame, [face])
    assert label_font("en") is not None, "Pillow's own font draws English everywhere"
    if label_font("zh") is None:
        pytest.skip("no font with Chinese glyphs on this machine (fonts-wqy-zenhei, say)")
    chinese = annotate(frame, [face], "zh")
    assert not np.array_equal(chinese, english)
    monkeypatch.setattr(live_module, "label_font", lambda lang: None if lang == "zh" else label_font(lang))
    np.testing.assert_array_equal(annotate(frame, [face], "zh"), english, err_msg="no font: the English label")


def test_ice_servers_come_from_the_secrets_table(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[facelab]\nice_servers = [\n  { urls = "stun:stun.example.org:3478" },\n'
                       '  { urls = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:443"],'
                       ' username = "lab", credential = "s3cret" },\n]\n')
    servers = load_settings({}, read_secrets_table(secrets)).ice_servers
    assert servers[0] == {"urls": "stun:stun.example.org:3478"} and servers[1]["credential"] == "s3cret"
    assert load_settings({}, {}).ice_servers == (), "locally none: the browser and the server on one machine"


@pytest.mark.parametrize("servers", [
    "stun:stun.example.org", [{"url": "stun:x"}], [{"urls": "http://x"}], [{"urls": []}],
    [{"urls": "turn:x", "username": "lab", "credential": 5}], [{"urls": "turn:x", "password": "s3cret"}],
])
def test_a_bad_ice_server_is_an_error_that_does_not_show_the_credential(servers):
    with pytest.raises(ValueError, match="not a valid list of ICE servers") as error:
        load_settings({}, {"ice_servers": servers})
    assert "s3cret" not in str(error.value)


def test_a_server_runs_only_so_many_streams_and_a_silent_one_gives_its_slot_up():
    now = [0.0]
    slots = StreamSlots(2, stale_after=15, clock=lambda: now[0])
    first, second, third = object(), object(), object()
    assert slots.take(first) and slots.take(second) and not slots.take(third)
    assert slots.take(first), "a stream that holds a slot keeps it, and its time is renewed"
    slots.release(second)
    assert slots.take(third) and slots.in_use() == 2
    now[0] = 10.0
    assert slots.take(third)  # the first stream has sent nothing since 0 s, the third renewed at 10 s
    now[0] = 16.0
    assert slots.in_use() == 1 and slots.take(second), "the first one's slot went stale at 15 s"
    assert not slots.take(first), "and it is someone else's now"
    assert all(StreamSlots(None).take(object()) for _ in range(100)), "locally no limit"


def test_a_stream_that_finds_every_slot_taken_processes_nothing_until_it_ends(portrait, predictor_calls):
    slots = StreamSlots(1)
    frames = [av.VideoFrame.from_ndarray(portrait, format="rgb24") for _ in range(3)]
    watching, refused = (LiveSession(bundled_predictor(), explain=False, slots=slots) for _ in range(2))
    asyncio.run(watching.on_frames(frames[:1]))
    watching._busy.result(timeout=30)
    assert asyncio.run(refused.on_frames(frames[1:2])) == []
    state = refused.state()
    assert state.refused and state.streaming and state.stopping and refused._busy is None, \
        "no frame went to the network"
    assert predictor_calls["probabilities"] == [1], "the watching stream's one face only"
    watching.reset()
    assert asyncio.run(refused.on_frames(frames[2:])) == [] and refused._busy is None, \
        "refused until this stream ends, though a slot is free now: the page is stopping it"
    refused.reset()
    assert refused.state().refused and not refused.state().streaming, "the page still says why it stopped"
    asyncio.run(refused.on_frames(frames[:1]))
    refused._busy.result(timeout=30)
    assert not refused.state().refused and refused.state().processed == 1, "a new stream, a free slot"
    assert slots.in_use() == 1
    refused.reset()
    assert slots.in_use() == 0


def test_hosted_servers_share_two_live_streams_by_default(monkeypatch):
    assert server_slots().limit is None
    monkeypatch.setenv("FACELAB_HOSTED", "1")
    from core.settings import settings

    settings.cache_clear()
    assert server_slots().limit == 2 and server_slots() is server_slots()
