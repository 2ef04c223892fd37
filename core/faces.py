"""Faces and their 68 landmarks (dlib), and the upright face frame of EAC-Net's attention geometry."""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
import os
import queue
import threading
from pathlib import Path

import cv2
import dlib
import numpy as np

# HOG looks for faces of at least 80 pixels. The first search runs on a grey copy at most FIRST_SIDE long,
# so a 4000x3000 phone photo is shrunk 5x and stays fast. When it finds no face, or one under
# RETRY_FACE_SIDE there, smaller faces are likely (a class photo, a small photo), so a second search runs
# on a copy at most RETRY_SIDE long, upsampled once by dlib: faces down to 40 pixels, or 4% of the longer
# side of a large photo.
FIRST_SIDE = 800
RETRY_SIDE = 1000
RETRY_FACE_SIDE = 120
# When HOG finds no face (turned, dark or blurred faces are what it misses), dlib's CNN detector (MMOD)
# searches a copy at most CNN_SIDE long: about a second on a 2-core CPU, so by default it runs only then,
# or on every photo when asked for a thorough search. With dlib built for CUDA it is fast, so it searches
# every photo at CNN_CUDA_SIDE, upsampled once, and adds the faces HOG missed. Below CNN_MIN_CONFIDENCE
# its detections are left out.
SEARCHES = ("hog", "auto", "thorough")
CNN_SIDE = 512
CNN_CUDA_SIDE = 1000
CNN_MIN_CONFIDENCE = 0.3
SAME_FACE_IOU = 0.3  # a CNN box overlapping a HOG box this much is the same face
# The CNN finds no face under about 40 pixels, and dlib fails on thinner images (an 8x400 one crashes the
# process), so such images are not given to it.
CNN_MIN_SIDE = 40
PREDICTOR_FILE = "models/shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR_FILE = "models/mmod_human_face_detector.dat"
# EAC-Net's face crop, the frame of its attention geometry, reaches a quarter of the box side past each edge
# of the box, like get_face.one_big_face in the paper's code: brows, chin and the centres beyond them stay inside.
FACE_MARGIN = 0.25

# dlib's 0-based 68-point order
RIGHT_EYE = slice(36, 42)  # the subject's right eye, on the left of the photo
LEFT_EYE = slice(42, 48)

# dlib's detectors are not safe to call from two threads at once, but dlib releases the GIL while it
# searches: so there is one HOG detector per core, each used by one thread at a time (two visitors' searches
# run in parallel on two cores), and one CNN detector behind a lock of its own, so a visitor's slow CNN
# search holds up no HOG search.
_cnn_lock = threading.Lock()


@dataclasses.dataclass(frozen=True, eq=False)
class Face:
    box: tuple[float, float, float, float]  # left, top, width, height in image pixels; may reach past the edge
    landmarks: np.ndarray  # (68, 2) float x, y in image pixels, dlib's order
    score: float  # the detector's confidence (0 is HOG's threshold, CNN_MIN_CONFIDENCE the CNN's)
    detector: str = "hog"  # "hog" or "cnn"

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


def model_path(name: str = PREDICTOR_FILE) -> Path:
    """A model file shipped by `face-recognition-models`, found without importing that package
    (its `__init__` needs `pkg_resources`)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("face-recognition-models is not installed; pip install -r requirements.txt")
    return Path(next(iter(spec.submodule_search_locations))) / name


@functools.lru_cache(maxsize=1)
def load_models() -> tuple[dlib.fhog_object_detector, dlib.shape_predictor]:
    """dlib's HOG frontal face detector and the 68-point shape predictor, loaded once per process."""
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model_path()))


@functools.lru_cache(maxsize=1)
def load_cnn_detector() -> dlib.cnn_face_detection_model_v1:
    """dlib's CNN face detector (MMOD), loaded once per process, on first need."""
    return dlib.cnn_face_detection_model_v1(str(model_path(CNN_DETECTOR_FILE)))


def _shrunk(image: np.ndarray, side: int) -> tuple[np.ndarray, float, float]:
    """`image` shrunk to at most `side` pixels long, with its x and y scales."""
    height, width = image.shape[:2]
    scale = min(1.0, side / max(height, width))
    if scale < 1:
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
    return image, image.shape[1] / width, image.shape[0] / height


def _mapped_back(rect: dlib.rectangle, scale_x: float, scale_y: float) -> tuple[int, int, int, int]:
    """A box found on a shrunk copy as (left, top, right, bottom) in the original's pixels."""
    return (round(rect.left() / scale_x), round(rect.top() / scale_y),
            round((rect.right() + 1) / scale_x) - 1, round((rect.bottom() + 1) / scale_y) - 1)


@functools.lru_cache(maxsize=1)
def _hog_detectors() -> queue.SimpleQueue:
    """The HOG detectors free for a search, one per core."""
    free = queue.SimpleQueue()
    for _ in range(os.cpu_count() or 1):
        free.put(dlib.get_frontal_face_detector())
    return free


def _search(gray: np.ndarray, side: int, upsample: int) -> tuple[list[tuple[int, int, int, int]], list[float]]:
    """HOG on `gray` shrunk to at most `side`: boxes (left, top, right, bottom) in `gray`'s pixels, and scores."""
    small, scale_x, scale_y = _shrunk(gray, side)
    detector = _hog_detectors().get()
    try:
        rects, scores, _ = detector.run(small, upsample, 0.0)
    finally:
        _hog_detectors().put(detector)
    return [_mapped_back(rect, scale_x, scale_y) for rect in rects], list(scores)


def _cnn_search(rgb: np.ndarray, side: int, upsample: int) -> tuple[list[tuple[int, int, int, int]], list[float]]:
    """The CNN detector on `rgb` shrunk to at most `side`: boxes in `rgb`'s pixels, and confidences."""
    small, scale_x, scale_y = _shrunk(rgb, side)
    if min(small.shape[:2]) < CNN_MIN_SIDE:
        return [], []
    with _cnn_lock:
        found = load_cnn_detector()(np.ascontiguousarray(small), upsample)
    found = [d for d in found if d.confidence >= CNN_MIN_CONFIDENCE]
    return [_mapped_back(d.rect, scale_x, scale_y) for d in found], [float(d.confidence) for d in found]


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0]) + 1
    height = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if width <= 0 or height <= 0:
        return 0.0
    areas = [(box[2] - box[0] + 1) * (box[3] - box[1] + 1) for box in (a, b)]
    return width * height / (sum(areas) - width * height)


def find_boxes(rgb: np.ndarray, search: str = "auto") -> list[tuple[tuple[int, int, int, int], float, str]]:
    """Face boxes (left, top, right, bottom) with their confidences and detectors. HOG always; then
    the CNN adds the faces HOG missed: in "auto" where HOG found nothing (on every photo when dlib uses
    CUDA), in "thorough" on every photo; "hog" is HOG alone."""
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, not {search!r}")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes, scores = _search(gray, FIRST_SIDE, 0)
    first_scale = min(1.0, FIRST_SIDE / max(gray.shape))
    if min((right - left + 1 for left, _, right, _ in boxes), default=0) * first_scale < RETRY_FACE_SIDE:
        # The upsampled search finds the small faces and drops some false ones, but on some photos it finds
        # nothing where the first search found a face: then the first search's faces stand.
        retry_boxes, retry_scores = _search(gray, RETRY_SIDE, 1)
        if retry_boxes or not boxes:
            boxes, scores = retry_boxes, retry_scores
    found = [(box, score, "hog") for box, score in zip(boxes, scores)]
    cuda = bool(dlib.DLIB_USE_CUDA)
    if search == "hog" or (search == "auto" and found and not cuda):
        return found
    cnn_boxes, cnn_scores = _cnn_search(rgb, CNN_CUDA_SIDE, 1) if cuda else _cnn_search(rgb, CNN_SIDE, 0)
    return found + [(box, score, "cnn") for box, score in zip(cnn_boxes, cnn_scores)
                    if all(overlap(box, other) < SAME_FACE_IOU for other in boxes)]


def detect_faces(rgb: np.ndarray, search: str = "auto") -> list[Face]:
    """Every face with its 68 landmarks, largest first; an empty list when there is none. `search`
    says when the CNN detector looks too (`find_boxes`)."""
    # The landmarks are fitted on the full-resolution photo: about a millisecond more than on the shrunk
    # copy, and a few pixels more precise on a large photo (bench/bench_faces.py).
    full = np.ascontiguousarray(rgb)
    predictor = load_models()[1]
    faces = []
    for (left, top, right, bottom), score, detector in find_boxes(rgb, search):
        shape = predictor(full, dlib.rectangle(left, top, right, bottom))
        landmarks = np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float64)
        landmarks.setflags(write=False)
        faces.append(Face((left, top, right - left + 1, bottom - top + 1), landmarks, score, detector))
    return sorted(faces, key=lambda face: (-face.area, -face.score))


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the eye on the left of the photo and of the one on the right."""
    return landmarks[RIGHT_EYE].mean(axis=0), landmarks[LEFT_EYE].mean(axis=0)


def face_frame(landmarks: np.ndarray, box: tuple[float, ...], size: float, margin: float = 0.0) -> np.ndarray:
    """The 2x3 similarity matrix from image pixels to an upright size x size face frame.

    It turns the face so the eyes are level (so "up" is toward the top of the face, even when the head is
    tilted), puts the centre of the box at the frame centre and scales the box side, plus `margin` of it
    on each side, to `size`.
    """
    left_eye, right_eye = eye_centres(np.asarray(landmarks, dtype=np.float64))
    angle = math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0])
    left, top, width, height = box
    scale = size / (math.sqrt(width * height) * (1 + 2 * margin))
    cos, sin = scale * math.cos(angle), scale * math.sin(angle)
    linear = np.array([[cos, sin], [-sin, cos]])  # rotate by -angle, then scale
    centre = np.array([left + (width - 1) / 2, top + (height - 1) / 2])
    return np.hstack([linear, ((size - 1) / 2 - linear @ centre)[:, None]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


def transform_face(face: Face, matrix: np.ndarray) -> Face:
    """The face as seen after the similarity `matrix`: landmarks moved, the box scaled about its new centre."""
    left, top, width, height = face.box
    centre = transform_points([[left + (width - 1) / 2, top + (height - 1) / 2]], matrix)[0]
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    new_width, new_height = width * scale, height * scale
    landmarks = transform_points(face.landmarks, matrix)
    landmarks.setflags(write=False)
    box = (centre[0] - (new_width - 1) / 2, centre[1] - (new_height - 1) / 2, new_width, new_height)
    return dataclasses.replace(face, box=box, landmarks=landmarks)
