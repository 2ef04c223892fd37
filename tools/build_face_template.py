"""Rebuild models/face_template.json: the typical place of each of dlib's 68 landmarks in a FER2013 crop.

    FACELAB_DATA_DIR=... python -m tools.build_face_template [--faces 3000] [--seed 0]

Training faces are upscaled 4x (48 -> 192 px, bicubic) and edge-padded, found with dlib's HOG detector and
fitted with the 68-point shape predictor; the landmarks are mapped back to the 48x48
crop. Each point's template position is its median over the faces found, as a fraction of the crop side.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys

import cv2
import numpy as np

from core.data import fer2013_path, load_npz
from core.faces import detect_faces
from core.framing import TEMPLATE_FILE

SCALE = 4
PAD = 48  # pixels of the upscaled face repeated on each side, so the detector sees the whole head


def landmarks_in_crop(face: np.ndarray) -> np.ndarray | None:
    """The 68 landmarks of a 48x48 grey face in its own pixels (x, y; pixel centres at integers), or
    None unless exactly one face is found."""
    big = cv2.resize(face, (48 * SCALE, 48 * SCALE), interpolation=cv2.INTER_CUBIC)
    padded = cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
    found = detect_faces(cv2.cvtColor(padded, cv2.COLOR_GRAY2RGB), "hog")
    if len(found) != 1:
        return None
    return (found[0].landmarks - PAD + 0.5) / SCALE - 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    path = fer2013_path()
    if path is None or not path.exists():
        print("set FACELAB_DATA_DIR to the folder holding fer2013.npz", file=sys.stderr)
        return 2
    train = load_npz(path).train
    picked = np.random.default_rng(args.seed).choice(len(train), size=min(args.faces, len(train)), replace=False)
    fitted = [points for points in (landmarks_in_crop(train.x[i, 0]) for i in picked) if points is not None]
    # As fractions of the side, with the crop running from -0.5 to 47.5 in pixel coordinates.
    template = (np.median(np.stack(fitted), axis=0) + 0.5) / 48
    record = {"source": "FER2013 Training, upscaled 4x, dlib HOG + shape_predictor_68_face_landmarks",
              "built": datetime.date.today().isoformat(), "faces_tried": len(picked), "faces_fitted": len(fitted),
              "seed": args.seed, "units": "fraction of the crop side (x, y), dlib's 68-point order",
              "points": [[round(float(x), 4), round(float(y), 4)] for x, y in template]}
    TEMPLATE_FILE.write_text(json.dumps(record, indent=1).replace("\n   ", " ").replace("\n  ]", "]") + "\n")
    print(f"{len(fitted)} of {len(picked)} faces fitted; wrote {TEMPLATE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
