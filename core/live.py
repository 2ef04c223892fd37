"""Live camera: every face of every processed frame boxed and labelled, its scores smoothed per face.

streamlit-webrtc hands `LiveSession.on_frames` the camera's frames on a worker thread of its own. Each is
passed to a thread of the session's own unless that is still processing one; then it is counted as
skipped and dropped, so a machine slower than the camera shows fewer processed frames, never older ones.
All faces of a frame are classified in one batch (`Predictor.predict_many`), followed from frame to frame
by the overlap of their boxes (`IouTracker`) and their scores averaged over the last few frames. Grad-CAM
and the EAC-Net attention map of the largest face are refreshed at a lower rate. The page reads
`LiveSession.state()` from its own thread; everything shared is guarded by one lock. No frame is kept
except the last explained face crop, and `reset` drops that too when the stream ends.

Each stream takes about a core for as long as it runs, so a hosted server runs at most
`settings().max_live_streams` at once (`StreamSlots`): a stream that finds them all taken processes nothing
and the page stops it and says why.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

from core.classes import EXPRESSION_KEYS, colour, display_name
from core.faces import overlap
from core.predict import Explanation, FaceScores, Predictor, labels_above
from core.settings import settings

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 5  # frames a face's scores are averaged over
MAX_WINDOW = 30
EXPLAIN_EVERY_S = 1.0  # Grad-CAM and attention of the largest face, at most this often
RATE_SECONDS = 2.0  # frames per second are counted over this much time
TRACK_IOU = 0.3  # a box overlapping a face's last box this much is the same face
MAX_MISSED = 5  # a face not found in this many processed frames in a row is forgotten
SEARCH = "hog"  # the CNN detector takes seconds a frame on a CPU
SLOT_STALE_S = 15.0  # a stream that sent no frame for this long gives up its slot to one that asks
LABEL_PX, LABEL_PAD = 17, 4  # the labels' font size and the margin around them, in pixels
FONT_FOLDERS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts", "/Library/Fonts",
                "/System/Library/Fonts", "C:/Windows/Fonts")
FONT_SUFFIXES = (".ttf", ".ttc", ".otf")
NO_SUCH_CHARACTER = "\U0010ffff"


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
    refused: bool = False  # the latest stream found every live slot of the server taken
    streaming: bool = False  # frames arrive (since the stream started, until it ended)

    @property
    def stopping(self) -> bool:
        """The stream runs without a slot: the page is to stop it."""
        return self.refused and self.streaming


class StreamSlots:
    """How many live streams a server runs at once: each stream takes a slot with its first frame and
    keeps it while its frames come; `release` frees it when the stream ends. A slot whose stream sent
    nothing for `stale_after` seconds is freed for the next stream that asks, so a stream whose end was
    never reported (a closed laptop) cannot hold it for ever. `limit` None: no limit."""

    def __init__(self, limit: int | None, stale_after: float = SLOT_STALE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.stale_after = stale_after
        self.clock = clock
        self._lock = threading.Lock()
        self._last_seen: dict[object, float] = {}

    def take(self, owner: object) -> bool:
        """Whether `owner` holds a slot now: it held one already (its time is renewed), or one was free."""
        with self._lock:
            now = self.clock()
            if owner not in self._last_seen:
                for stale in [o for o, seen in self._last_seen.items() if now - seen >= self.stale_after]:
                    del self._last_seen[stale]
                if self.limit is not None and len(self._last_seen) >= self.limit:
                    return False
            self._last_seen[owner] = now
            return True

    def release(self, owner: object) -> None:
        with self._lock:
            self._last_seen.pop(owner, None)

    def in_use(self) -> int:
        with self._lock:
            now = self.clock()
            return sum(now - seen < self.stale_after for seen in self._last_seen.values())


def server_slots() -> StreamSlots:
    """The live slots every visitor of this server shares."""
    return _slots_for(settings().max_live_streams)


@functools.cache
def _slots_for(limit: int | None) -> StreamSlots:
    return StreamSlots(limit)


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


def face_label(face: TrackedFace, lang: str = "en") -> str:
    """What the video shows above a face."""
    top = face.top_class
    return f"#{face.track} {display_name(top, lang)} {face.scores[top]:.0%}"


@functools.cache
def label_font(lang: str) -> ImageFont.FreeTypeFont | None:
    """A font that draws `lang`'s class names on the video: Pillow's own for English; for another language
    the first font in the system's font folders that has all their glyphs (searched once), or None."""
    names = "".join(display_name(key, lang) for key in EXPRESSION_KEYS)
    if names.isascii():
        return ImageFont.load_default(LABEL_PX)
    for path in sorted(p for folder in FONT_FOLDERS for p in Path(folder).expanduser().glob("**/*")
                       if p.suffix.lower() in FONT_SUFFIXES):
        try:
            font = ImageFont.truetype(str(path), LABEL_PX)
        except OSError:
            continue
        missing = bytes(font.getmask(NO_SUCH_CHARACTER))  # the font's box for a character it lacks
        if all(bytes(font.getmask(character)) != missing for character in set(names)):
            return font
    return None


def annotate(rgb: np.ndarray, faces: tuple[TrackedFace, ...] | list[TrackedFace], lang: str = "en") -> np.ndarray:
    """A copy of the frame with each face's box and label, coloured by its top expression; the labels in
    English where the server has no font for `lang`."""
    font = label_font(lang)
    if font is None:
        font, lang = label_font("en"), "en"
    image = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(image)
    texts = [face_label(face, lang) for face in faces]
    text_boxes = [font.getbbox(text) for text in texts]
    label_sizes = [(right - left + 2 * LABEL_PAD, bottom - top + 2 * LABEL_PAD) for left, top, right, bottom in text_boxes]
    sides = labels_above([face.box for face in faces], label_sizes)
    for face, text, text_box, (width, height), above in zip(faces, texts, text_boxes, label_sizes, sides):
        left, top, box_width, box_height = face.box
        paint = _rgb(face.top_class)
        draw.rectangle((left, top, left + box_width - 1, top + box_height - 1), outline=paint, width=2)
        label_top = top - height if above else top + box_height
        draw.rectangle((left, label_top, left + width, label_top + height), fill=paint)
        draw.text((left + LABEL_PAD - text_box[0], label_top + LABEL_PAD - text_box[1]), text, font=font,
                  fill=(255, 255, 255))
    return np.asarray(image)


class LiveSession:
    """One visitor's stream: fed by streamlit-webrtc's worker thread, processed on a thread of its own,
    read by the page."""

    def __init__(self, predictor: Predictor, window: int = DEFAULT_WINDOW, explain: bool = True,
                 explain_every: float = EXPLAIN_EVERY_S, clock: Callable[[], float] = time.monotonic,
                 slots: StreamSlots | None = None) -> None:
        self.predictor = predictor
        self.slots = slots or StreamSlots(None)
        self._refused = False
        self.explain_every = explain_every
        self.clock = clock
        self._lock = threading.Lock()
        self._explain, self._lang = explain, "en"
        self._tracker = IouTracker(window)
        self._generation = 0  # one per stream: what a frame of an ended stream finds is dropped
        # used by streamlit-webrtc's worker thread alone (on_frames), and by reset once that has ended
        self._worker: ThreadPoolExecutor | None = None
        self._busy: Future | None = None
        self._waiting = 0  # frames handed over while one was being processed
        self.reset()

    def configure(self, window: int, explain: bool, lang: str = "en") -> None:
        if not 1 <= window <= MAX_WINDOW:
            raise ValueError(f"window must be 1 to {MAX_WINDOW} frames, not {window}")
        with self._lock:
            self._tracker.set_window(window)
            self._explain, self._lang = explain, lang
            if not explain:
                self._explanation = self._explained = None

    def reset(self) -> None:
        """Forget the faces, counts and explanation: the stream ended (streamlit-webrtc's video-ended
        callback, called after its worker thread has stopped)."""
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
        self._worker, self._busy, self._waiting = None, None, 0
        self.slots.release(self)
        with self._lock:
            self._streaming = False
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
            lang = self._lang
        return annotate(rgb, faces, lang)

    async def on_frames(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        """streamlit-webrtc's queued-frames callback: the frames that came since its last call.

        The newest goes to this session's own thread, unless that is still processing a frame: then they
        are all skipped. It returns the annotated frame once one is ready, else nothing (streamlit-webrtc
        then sends the last one again). So it never waits for the network, and a frame that takes long on a
        busy server costs skipped frames, not the stream: streamlit-webrtc ends a stream whose callback
        takes over 10 s. A stream that finds no free live slot gets nothing processed."""
        with self._lock:
            if not (self._streaming and self._refused):  # a refused stream stays refused until it ends
                self._refused = not self.slots.take(self)
            self._streaming = True
            if self._refused:
                return []
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
                             self._explanation, self._explained, self._refused, self._streaming)
