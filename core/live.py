"""Live camera: every face of every processed frame boxed and labelled, its scores smoothed per face.

streamlit-webrtc hands `LiveSession.on_frames` the camera's frames on a worker thread of its own. Each is
passed to a thread of the session's own unless that is still processing one; then it is counted as
skipped and dropped, so a machine slower than the camera shows fewer processed frames, never older ones.
All faces of a frame are classified in one batch (`Predictor.predict_many`), followed from frame to frame
by the overlap of their boxes (`IouTracker`) and their scores averaged over the last few frames. Grad-CAM
and the EAC-Net attention map of the largest face are refreshed at a lower rate. The page reads
`LiveSession.state()` from its own thread; everything shared is guarded by one lock. No frame is kept
except the last explained face crop, and `reset` drops that too when the stream ends.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import av
import cv2
import numpy as np
from PIL import ImageColor

from core.classes import colour, display_name
from core.faces import overlap
from core.predict import Explanation, FaceScores, Predictor, labels_above

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 5  # frames a face's scores are averaged over
MAX_WINDOW = 30
EXPLAIN_EVERY_S = 1.0  # Grad-CAM and attention of the largest face, at most this often
RATE_SECONDS = 2.0  # frames per second are counted over this much time
TRACK_IOU = 0.3  # a box overlapping a face's last box this much is the same face
MAX_MISSED = 5  # a face not found in this many processed frames in a row is forgotten
SEARCH = "hog"  # the CNN detector takes seconds a frame on a CPU
FONT, FONT_SCALE, FONT_THICKNESS, LABEL_PAD = cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2, 4


@dataclass(frozen=True)
class TrackedFace:
    track: int  # the same number while the face stays in view
    box: tuple[int, int, int, int]  # left, top, width, height in the frame's pixels
    scores: dict[str, float]  # averaged over the face's last `frames` processed frames
    frames: int

    @property
    def top_class(self) -> str:
        return max(self.scores, key=self.scores.get)


@dataclass(frozen=True)
class LiveState:
    processed: int  # frames processed since the stream started
    skipped: int  # frames that arrived while another was processed, and were dropped
    fps: float  # frames processed per second, over the last RATE_SECONDS
    camera_fps: float  # frames arrived per second, processed or skipped
    window: int
    faces: tuple[TrackedFace, ...]  # of the last processed frame, largest first
    explanation: Explanation | None  # of the largest face, refreshed every EXPLAIN_EVERY_S
    explained: TrackedFace | None  # the face it explains, as it was then


class RateCounter:
    """Events per second: those after the last event at least `seconds` old (or after the first event,
    until one is that old), over the time since it. So a frame processed every 5 s, handed the 150 camera
    frames that came meanwhile, gives 0.2 processed and 30 camera frames a second, where a plain 2-second
    window would give 0 or 0.5, and 0 or 75."""

    def __init__(self, seconds: float = RATE_SECONDS) -> None:
        self.seconds = seconds
        self._events: deque[tuple[float, int]] = deque()

    def add(self, now: float, count: int = 1) -> None:
        self._events.append((now, count))
        while len(self._events) > 1 and self._events[1][0] <= now - self.seconds:
            self._events.popleft()

    def rate(self, now: float) -> float:
        if not self._events:
            return 0.0
        events = list(self._events)
        anchor = max((index for index, (when, _) in enumerate(events) if when <= now - self.seconds), default=0)
        span = now - events[anchor][0]
        counted = sum(count for _, count in events[anchor + 1:])
        return counted / span if span > 0 else 0.0


@dataclass
class _Track:
    box: tuple[int, int, int, int]
    history: deque  # the face's last probability vectors, newest last
    missed: int = 0


class IouTracker:
    """Follows faces from frame to frame: each box goes to the face whose last box it overlaps most (at
    least TRACK_IOU, greedily, best overlap first), or starts a new face; each face averages its last
    `window` score vectors."""

    def __init__(self, window: int = DEFAULT_WINDOW, max_missed: int = MAX_MISSED) -> None:
        self.window = window
        self.max_missed = max_missed
        self._tracks: dict[int, _Track] = {}
        self._next = 1

    def set_window(self, window: int) -> None:
        self.window = window
        for track in self._tracks.values():
            track.history = deque(track.history, maxlen=window)

    def update(self, boxes: list[tuple[int, int, int, int]], probabilities: np.ndarray) -> list[tuple[int, np.ndarray, int]]:
        """(track number, smoothed probabilities, frames averaged) for each box, in the boxes' order."""
        corners = [_corners(box) for box in boxes]
        pairs = sorted(((overlap(_corners(track.box), box), number, index)
                        for number, track in self._tracks.items() for index, box in enumerate(corners)), reverse=True)
        assigned: dict[int, int] = {}
        for iou, number, index in pairs:
            if iou >= TRACK_IOU and index not in assigned and number not in assigned.values():
                assigned[index] = number
        for index in range(len(boxes)):
            if index not in assigned:
                assigned[index] = self._next
                self._tracks[self._next] = _Track(boxes[index], deque(maxlen=self.window))
                self._next += 1
        for number in [n for n in self._tracks if n not in assigned.values()]:
            self._tracks[number].missed += 1
            if self._tracks[number].missed > self.max_missed:
                del self._tracks[number]
        results = []
        for index, box in enumerate(boxes):
            track = self._tracks[assigned[index]]
            track.box, track.missed = box, 0
            track.history.append(probabilities[index])
            results.append((assigned[index], np.mean(track.history, axis=0), len(track.history)))
        return results


def _corners(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """(left, top, width, height) as `core.faces.overlap` takes boxes: (left, top, right, bottom)."""
    left, top, width, height = box
    return left, top, left + width - 1, top + height - 1


def _rgb(key: str) -> tuple[int, int, int]:
    red, green, blue = ImageColor.getrgb(colour(key))[:3]
    return red, green, blue


def face_label(face: TrackedFace) -> str:
    """What the video shows above a face. OpenCV's fonts draw only ASCII, so the names are English;
    the page's chart beside the video speaks the visitor's language."""
    top = face.top_class
    return f"#{face.track} {display_name(top, 'en')} {face.scores[top]:.0%}"


def annotate(rgb: np.ndarray, faces: tuple[TrackedFace, ...] | list[TrackedFace]) -> np.ndarray:
    """A copy of the frame with each face's box and label, coloured by its top expression."""
    out = np.ascontiguousarray(rgb).copy()
    texts = [face_label(face) for face in faces]
    text_sizes = [cv2.getTextSize(text, FONT, FONT_SCALE, FONT_THICKNESS) for text in texts]
    label_sizes = [(width + 2 * LABEL_PAD, height + baseline + 2 * LABEL_PAD) for (width, height), baseline in text_sizes]
    sides = labels_above([face.box for face in faces], label_sizes)
    for face, text, ((_, text_height), _), (width, height), above in zip(faces, texts, text_sizes, label_sizes, sides):
        left, top, box_width, box_height = face.box
        paint = _rgb(face.top_class)
        cv2.rectangle(out, (left, top), (left + box_width - 1, top + box_height - 1), paint, 2)
        label_top = top - height if above else top + box_height
        cv2.rectangle(out, (left, label_top), (left + width, label_top + height), paint, cv2.FILLED)
        cv2.putText(out, text, (left + LABEL_PAD, label_top + LABEL_PAD + text_height), FONT, FONT_SCALE,
                    (255, 255, 255), FONT_THICKNESS, cv2.LINE_AA)
    return out


class LiveSession:
    """One visitor's stream: fed by streamlit-webrtc's worker thread, processed on a thread of its own,
    read by the page."""

    def __init__(self, predictor: Predictor, window: int = DEFAULT_WINDOW, explain: bool = True,
                 explain_every: float = EXPLAIN_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.predictor = predictor
        self.explain_every = explain_every
        self.clock = clock
        self._lock = threading.Lock()
        self._explain = explain
        self._tracker = IouTracker(window)
        self._generation = 0  # one per stream: what a frame of an ended stream finds is dropped
        # used by streamlit-webrtc's worker thread alone (on_frames), and by reset once that has ended
        self._worker: ThreadPoolExecutor | None = None
        self._busy: Future | None = None
        self._waiting = 0  # frames handed over while one was being processed
        self.reset()

    def configure(self, window: int, explain: bool) -> None:
        if not 1 <= window <= MAX_WINDOW:
            raise ValueError(f"window must be 1 to {MAX_WINDOW} frames, not {window}")
        with self._lock:
            self._tracker.set_window(window)
            self._explain = explain
            if not explain:
                self._explanation = self._explained = None

    def reset(self) -> None:
        """Forget the faces, counts and explanation: the stream ended (streamlit-webrtc's video-ended
        callback, called after its worker thread has stopped)."""
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
        self._worker, self._busy, self._waiting = None, None, 0
        with self._lock:
            self._generation += 1
            self._tracker = IouTracker(self._tracker.window)
            self._processed = self._skipped = 0
            self._processed_rate, self._arrived_rate = RateCounter(), RateCounter()
            self._faces: tuple[TrackedFace, ...] = ()
            self._explanation: Explanation | None = None
            self._explained: TrackedFace | None = None
            self._explained_at = -float("inf")

    def process(self, rgb: np.ndarray, skipped: int = 0) -> np.ndarray:
        """The frame annotated: every face found, classified in one batch, tracked and smoothed.
        `skipped` frames arrived after the previous processed one and were dropped."""
        with self._lock:
            generation = self._generation
        found: list[FaceScores] = self.predictor.predict_many([rgb], search=SEARCH)[0]
        scores = [list(face.scores.values()) for face in found]
        probabilities = np.array(scores, dtype=np.float64).reshape(len(found), len(self.predictor.classes))
        with self._lock:
            if generation != self._generation:
                return rgb
            tracked = self._tracker.update([face.box for face in found], probabilities)
            faces = tuple(TrackedFace(number, face.box, dict(zip(self.predictor.classes, smoothed.tolist())), frames)
                          for face, (number, smoothed, frames) in zip(found, tracked))
            now = self.clock()
            explain_now = bool(faces) and self._explain and now - self._explained_at >= self.explain_every
            if explain_now:
                self._explained_at = now
        if explain_now:
            explanation = self.predictor.explain(rgb, found[0].face, self.predictor.classes.index(faces[0].top_class))
        with self._lock:
            if generation != self._generation:
                return rgb
            if explain_now and self._explain:
                self._explanation, self._explained = explanation, faces[0]
            self._faces = faces
            self._processed += 1
            self._skipped += skipped
            now = self.clock()
            self._processed_rate.add(now)
            self._arrived_rate.add(now, skipped + 1)
        return annotate(rgb, faces)

    async def on_frames(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        """streamlit-webrtc's queued-frames callback: the frames that came since its last call.

        The newest goes to this session's own thread, unless that is still processing a frame: then they
        are all skipped. It returns the annotated frame once one is ready, else nothing (streamlit-webrtc
        then sends the last one again). So it never waits for the network, and a frame that takes long on a
        busy server costs skipped frames, not the stream: streamlit-webrtc ends a stream whose callback
        takes over 10 s."""
        ready = []
        if self._busy is not None and self._busy.done():
            ready, self._busy = [self._busy.result()], None
        if self._busy is None:
            self._worker = self._worker or ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-camera")
            self._busy = self._worker.submit(self._annotated, frames[-1], self._waiting + len(frames) - 1)
            self._waiting = 0
        else:
            self._waiting += len(frames)
        return ready

    def _annotated(self, frame: av.VideoFrame, skipped: int) -> av.VideoFrame:
        """`process` for a video frame. A frame that fails is logged (never its pixels) and sent on
        unannotated, so the stream goes on."""
        rgb = frame.to_ndarray(format="rgb24")
        try:
            annotated = self.process(rgb, skipped)
        except Exception:
            logger.exception("live frame processing failed")
            annotated = rgb
        out = av.VideoFrame.from_ndarray(annotated, format="rgb24")
        out.pts = frame.pts  # the camera frame it shows
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out

    def state(self) -> LiveState:
        with self._lock:
            now = self.clock()
            return LiveState(self._processed, self._skipped, self._processed_rate.rate(now),
                             self._arrived_rate.rate(now), self._tracker.window, self._faces,
                             self._explanation, self._explained)
