"""Expression prediction: every face's box and class scores, in the shape of Microsoft's Emotion API.

    python -m core.predict photo.jpg [more.jpg ...] [--checkpoint model.pt] [--tta] [--search thorough]

For one image it prints `[{"faceRectangle": {...}, "scores": {...}}, ...]`; for several, an object
from file name to such a list. The scores' keys are the model's classes: the bundled model, trained on
FER+ votes, gives all 8 of the Emotion API (contempt included); a 7-class FER2013 model gives 7.
"""
from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.attention import attention_map
from core.augment import ten_crops
from core.checkpoint import BUNDLED_CHECKPOINT, Checkpoint, load_checkpoint
from core.errors import UserError
from core.faces import SEARCHES, Face, detect_faces, transform_face
from core.framing import frame_face
from core.gradcam import grad_cam
from core.images import decode_image
from core.presets import to_network_input

# The crop is made this much larger than the network's input, so that the lecture's local crops
# (test-time augmentation) stay on the face; without TTA the centre is used.
CROP_PAD = 1.1
API_DECIMALS = 6  # a float32 network's scores carry no more; the JSON would otherwise show 16 digits


@dataclass(frozen=True)
class FaceScores:
    face: Face
    box: tuple[int, int, int, int]  # left, top, width, height, clipped to the image
    scores: dict[str, float]

    def to_api(self) -> dict:
        left, top, width, height = self.box
        return {"faceRectangle": {"left": left, "top": top, "width": width, "height": height},
                "scores": {name: round(score, API_DECIMALS) for name, score in self.scores.items()}}

    @property
    def top_class(self) -> str:
        return max(self.scores, key=self.scores.get)


def clip_box(box: tuple[float, float, float, float], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    height, width = shape[:2]
    left, top = max(0, int(round(box[0]))), max(0, int(round(box[1])))
    right = min(width, int(round(box[0] + box[2])))
    bottom = min(height, int(round(box[1] + box[3])))
    return left, top, max(0, right - left), max(0, bottom - top)


@dataclass(frozen=True)
class Explanation:
    crop: np.ndarray  # the face as the network frames it (the face template), RGB
    grad_cam: np.ndarray  # float32 in [0, 1], same height and width
    attention: np.ndarray  # EAC-Net attention over all AUs, same size


class Predictor:
    """A checkpoint's network on the CPU, ready to classify faces framed by the face template."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.model = checkpoint.build()
        self.arch = checkpoint.meta["arch"]
        self.classes = checkpoint.classes
        self.input_size = int(checkpoint.meta["input_size"])
        self.channels = int(checkpoint.meta["channels"])
        # One predictor serves every visitor of the app; Grad-CAM hooks a layer, so calls take turns.
        self._lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, path: str | Path | bytes | None = None) -> Predictor:
        """`None` is the bundled model."""
        return cls(load_checkpoint(BUNDLED_CHECKPOINT if path is None else path))

    def face_crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The face framed by the face template (`core.framing`), a little larger than the network's
        input, as (H, W) grey or (H, W, 3) RGB."""
        crop, _ = frame_face(rgb, face.landmarks, self.input_size, CROP_PAD)
        return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if self.channels == 1 else crop

    def views(self, crop: np.ndarray, tta: bool) -> np.ndarray:
        """(V, C, S, S) uint8: the centre, or the lecture's ten local crops (corners, centre, mirrors)."""
        chosen = ten_crops(crop, self.input_size) if tta else {"center": ten_crops(crop, self.input_size)["center"]}
        stacked = np.stack(list(chosen.values()))
        return stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)

    @torch.no_grad()
    def probabilities(self, crops: list[np.ndarray], tta: bool = False) -> np.ndarray:
        """(N, K) class probabilities for face crops, all in one batch."""
        if not crops:
            return np.zeros((0, len(self.classes)))
        views = [self.views(crop, tta) for crop in crops]
        batch = torch.from_numpy(np.concatenate(views)).float()
        with self._lock:
            logits = self.model(to_network_input(batch, self.arch))
        probabilities = F.softmax(logits.float(), dim=1).reshape(len(crops), -1, len(self.classes)).mean(dim=1)
        return probabilities.numpy().astype(np.float64)

    def stored_crop_probabilities(self, x: np.ndarray, tta: bool = False, batch: int = 256) -> np.ndarray:
        """(N, K) probabilities for crops stored as a data set holds them, (N, C, S, S) at the input size,
        padded by reflection to the predictor's crop size so that the centre view is the stored crop."""
        pad = int(round(self.input_size * CROP_PAD)) - self.input_size
        views = (image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0) for image in x)
        crops = [cv2.copyMakeBorder(view, pad // 2, pad - pad // 2, pad // 2, pad - pad // 2, cv2.BORDER_REFLECT_101)
                 for view in views]
        return np.concatenate([self.probabilities(crops[start:start + batch], tta)
                               for start in range(0, len(crops), batch)])

    def predict_many(self, images: list[np.ndarray], tta: bool = False, search: str = "auto") -> list[list[FaceScores]]:
        """Every face of every image, classified in one batch; faces sorted by size. `search` is
        `core.faces.detect_faces`'s: "thorough" runs the slower CNN detector on every photo."""
        faces = [detect_faces(rgb, search) for rgb in images]
        crops = [self.face_crop(rgb, face) for rgb, found in zip(images, faces) for face in found]
        probabilities = iter(self.probabilities(crops, tta))
        results = []
        for rgb, found in zip(images, faces):
            results.append([FaceScores(face, clip_box(face.box, rgb.shape), self._scores(next(probabilities)))
                            for face in found])
        return results

    def predict(self, rgb: np.ndarray, tta: bool = False, search: str = "auto") -> list[dict]:
        """The Emotion API's list for one image; empty when there is no face."""
        return [face.to_api() for face in self.predict_many([rgb], tta, search)[0]]

    def explain(self, rgb: np.ndarray, face: Face, class_index: int, size: int = 192) -> Explanation:
        """Grad-CAM for `class_index` beside the face's EAC-Net attention map, on the crop the network sees."""
        view = torch.from_numpy(self.views(self.face_crop(rgb, face), tta=False)).float()
        with self._lock:
            cam = grad_cam(self.model, self.arch, to_network_input(view, self.arch), class_index)
        crop, matrix = frame_face(rgb, face.landmarks, size)
        in_crop = transform_face(face, matrix)
        attention = attention_map(in_crop.landmarks, in_crop.box, crop.shape[:2])
        return Explanation(crop, cv2.resize(cam, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1), attention)

    def _scores(self, probabilities: np.ndarray) -> dict[str, float]:
        probabilities = probabilities / probabilities.sum()
        return {name: float(p) for name, p in zip(self.classes, probabilities)}


@functools.lru_cache(maxsize=1)
def bundled_predictor() -> Predictor:
    """The bundled model, loaded once per process and shared by every visitor and the REST route."""
    return Predictor.from_checkpoint()


def faces_table(results: list[tuple[str, list[FaceScores]]]) -> list[dict]:
    """One row per face of several photos: file, face number, box, top expression and scores."""
    rows = []
    for name, faces in results:
        for number, face in enumerate(faces, start=1):
            left, top, width, height = face.box
            rows.append({"file": name, "face": number, "left": left, "top": top, "width": width, "height": height,
                         "top_expression": face.top_class, **{k: round(v, 4) for k, v in face.scores.items()}})
    return rows


FACE_COVER_WEIGHT = 0.25  # covering part of a face matters less than hiding another label's text


def labels_above(boxes: list[tuple[int, int, int, int]], label_sizes: list[tuple[float, float]]) -> list[bool]:
    """Where each face's label goes, in box order: True above its box, False below it.

    A label sits on its box's left edge, `label_sizes` (width, height) in image pixels. It goes above
    unless it would leave the image or cover more of the labels already placed (and, weighted less, of
    the other faces) than it would below.
    """
    faces = [(left, top, left + width, top + height) for left, top, width, height in boxes]
    labels: list[tuple[float, float, float, float]] = []

    def area(rect: tuple[float, float, float, float], others: list[tuple[float, float, float, float]]) -> float:
        x0, y0, x1, y1 = rect
        return sum(max(0.0, min(x1, a1) - max(x0, a0)) * max(0.0, min(y1, b1) - max(y0, b0))
                   for a0, b0, a1, b1 in others)

    def cost(rect: tuple[float, float, float, float]) -> float:
        return area(rect, labels) + FACE_COVER_WEIGHT * area(rect, faces)

    sides = []
    for (left, top, _, height), (label_width, label_height) in zip(boxes, label_sizes):
        above = (left, top - label_height, left + label_width, top)
        below = (left, top + height, left + label_width, top + height + label_height)
        put_above = above[1] >= 0 and cost(above) <= cost(below)
        labels.append(above if put_above else below)
        sides.append(put_above)
    return sides


def table_csv(rows: list[dict]) -> str:
    """CSV text; cells that a spreadsheet would run as a formula (=, +, -, @) are quoted with a '."""
    def safe(value: object) -> object:
        return f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") else value

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows({key: safe(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Expression scores for every face, as Emotion API JSON.")
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--checkpoint", help="one of our checkpoints (default: the bundled model)")
    parser.add_argument("--tta", action="store_true", help="average a flip and the ten local crops")
    parser.add_argument("--search", default="auto", choices=SEARCHES,
                        help="hog: HOG alone; auto: the CNN detector too where HOG finds no face; "
                             "thorough: the CNN detector on every photo (slower on a CPU)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        predictor = Predictor.from_checkpoint(args.checkpoint)
        images = []
        for path in args.images:
            try:
                images.append(decode_image(path.read_bytes()))
            except OSError as error:
                print(f"error: cannot read {path}: {error.strerror}", file=sys.stderr)
                return 2
            except UserError as error:
                print(f"error: {path}: {error}", file=sys.stderr)
                return 2
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = [[face.to_api() for face in faces] for faces in predictor.predict_many(images, args.tta, args.search)]
    output = results[0] if len(images) == 1 else {str(path): result for path, result in zip(args.images, results)}
    print(json.dumps(output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
