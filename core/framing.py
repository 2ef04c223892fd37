"""The face template: where FER2013's crops put the 68 landmarks, and the crop that matches it.

FER2013's faces were registered by its authors before they were shrunk to 48x48, so a face's landmarks
sit at nearly the same place in every crop. `models/face_template.json` holds those typical places,
measured with dlib's shape predictor on upscaled FER2013 training faces (rebuilt by
`tools/build_face_template.py`). At prediction a face's landmarks are mapped onto the template with a
similarity transform, so a photo's face is framed the way the training faces were, whatever the
detector's box.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

TEMPLATE_FILE = Path(__file__).resolve().parents[1] / "models" / "face_template.json"
# Brows, nose, eyes and mouth (dlib points 17-67): the jaw line moves with the head's turn and with the
# detector's box, so it is left out of the fit.
FIT_POINTS = slice(17, 68)
# The face is warped this many times larger than the crop, then shrunk with area interpolation, so that a
# large face is averaged rather than sampled at a few pixels.
OVERSAMPLE = 4


@functools.lru_cache(maxsize=1)
def face_template() -> np.ndarray:
    """(68, 2) landmark positions as fractions of the crop side, x then y, dlib's order."""
    points = np.array(json.loads(TEMPLATE_FILE.read_text())["points"], dtype=np.float64)
    points.setflags(write=False)
    return points


def template_matrix(landmarks: np.ndarray, size: float, pad: float = 1.0) -> np.ndarray:
    """The 2x3 similarity matrix from image pixels to a square frame of `round(size * pad)` pixels in
    whose centre a `size` crop holds the template: pad 1.1 leaves 5 % of the crop around it on each
    side. Pixel centres are at integer coordinates, as in OpenCV and dlib."""
    offset = (round(size * pad) - size) / 2
    target = face_template()[FIT_POINTS] * size + offset - 0.5
    source = np.asarray(landmarks, dtype=np.float64)[FIT_POINTS]
    estimate = SimilarityTransform.from_estimate(source, target)
    if not estimate:  # landmarks all on one point (a face of a pixel or two): centre them, unscaled
        return np.hstack([np.eye(2), (target.mean(axis=0) - source.mean(axis=0))[:, None]])
    return estimate.params[:2]


def frame_face(rgb: np.ndarray, landmarks: np.ndarray, size: int, pad: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The face framed like a FER2013 crop, `round(size * pad)` pixels square, and the matrix from
    image pixels to it. Edge pixels are repeated past the photo's border rather than filled with
    black, whose sharp edge a CNN would respond to."""
    side = int(round(size * pad))
    matrix = template_matrix(landmarks, size, pad)
    # Pixel x of the crop covers OVERSAMPLE pixels of the large warp, centred at OVERSAMPLE * x + (OVERSAMPLE - 1) / 2.
    large = np.array([[OVERSAMPLE, 0, (OVERSAMPLE - 1) / 2], [0, OVERSAMPLE, (OVERSAMPLE - 1) / 2], [0, 0, 1]])
    warped = cv2.warpAffine(rgb, (large @ np.vstack([matrix, [0, 0, 1]]))[:2], (side * OVERSAMPLE,) * 2,
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(warped, (side, side), interpolation=cv2.INTER_AREA), matrix
