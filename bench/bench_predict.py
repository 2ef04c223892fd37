"""Prediction: what detection and framing cost in accuracy, what TTA adds, and how fast it is.

    FACELAB_DATA_DIR=... FACELAB_PHOTOS_DIR=... python bench/bench_predict.py [--checkpoint C] [--faces 600]

1. Framing. FER2013 validation faces are upscaled 3x, pasted into larger canvases, and sent through
   the whole pipeline (detection, landmarks, alignment, crop). Its accuracy is compared with the
   classifier's on the raw 48x48 crops of the same faces, for several crop margins.
2. Test-time augmentation: accuracy on the raw test crops with and without the ten local crops.
3. Speed, bytes to JSON: a 640x480 photo with one face and a group photo, against a baseline in the
   same run (full-resolution dlib detection and one classifier call per face); and the classifier
   alone per face at batch 1 and 32.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import faces as face_module  # noqa: E402
from core.checkpoint import BUNDLED_CHECKPOINT, load_checkpoint  # noqa: E402
from core.data import fer2013_path, load_npz  # noqa: E402
from core.images import decode_image, encode_jpeg, sample_photo  # noqa: E402
from core.predict import CROP_PAD, FER_MARGIN, Predictor  # noqa: E402

MARGINS = (-0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.3)


def canvas_for(face: np.ndarray, rng: np.random.Generator, scale: int = 3, side: int = 320) -> np.ndarray:
    """The 48x48 grey face upscaled and pasted at a random place on a blurred, noisy background."""
    big = cv2.resize(face, (48 * scale, 48 * scale), interpolation=cv2.INTER_CUBIC)
    background = cv2.GaussianBlur(cv2.resize(face, (side, side)), (0, 0), 25)
    background = np.clip(background + rng.normal(0, 8, background.shape), 0, 255).astype(np.uint8)
    top, left = rng.integers(0, side - big.shape[0], size=2)
    background[top:top + big.shape[0], left:left + big.shape[1]] = big
    return cv2.cvtColor(background, cv2.COLOR_GRAY2RGB)


def raw_probabilities(predictor: Predictor, x: np.ndarray, tta: bool) -> np.ndarray:
    """The classifier on stored crops (N, 1, 48, 48), padded by reflection to the predictor's crop
    size so that the centre view is the stored crop itself."""
    pad = int(round(predictor.input_size * CROP_PAD)) - predictor.input_size
    crops = [cv2.copyMakeBorder(image[0], pad // 2, pad - pad // 2, pad // 2, pad - pad // 2, cv2.BORDER_REFLECT_101)
             for image in x]
    out = []
    for start in range(0, len(crops), 256):
        out.append(predictor.probabilities(crops[start:start + 256], tta))
    return np.concatenate(out)


def framing(predictor: Predictor, splits, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(splits.val), size=min(count, len(splits.val)), replace=False)
    x, y = splits.val.x[picked], splits.val.y[picked]
    raw = raw_probabilities(predictor, x, tta=False).argmax(axis=1)
    canvases = [canvas_for(image[0], rng) for image in x]
    found = [face_module.detect_faces(canvas) for canvas in canvases]
    detected = np.array([len(f) > 0 for f in found])
    result = {"faces": len(picked), "detected": float(detected.mean()),
              "raw_accuracy": float((raw == y).mean()),
              "raw_accuracy_on_detected": float((raw[detected] == y[detected]).mean()), "by_margin": {}}
    for margin in MARGINS:
        predictor.margin = margin
        crops = [predictor.face_crop(canvas, f[0]) for canvas, f in zip(canvases, found) if f]
        predicted = predictor.probabilities(crops).argmax(axis=1)
        result["by_margin"][margin] = float((predicted == y[detected]).mean())
    return result


def tta_gain(predictor: Predictor, splits) -> dict:
    dataset = splits.test if splits.test is not None else splits.val
    plain = raw_probabilities(predictor, dataset.x, tta=False).argmax(axis=1)
    tta = raw_probabilities(predictor, dataset.x, tta=True).argmax(axis=1)
    return {"split": "test" if splits.test is not None else "val", "accuracy": float((plain == dataset.y).mean()),
            "accuracy_tta": float((tta == dataset.y).mean())}


def median_ms(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def baseline_predict(predictor: Predictor, data: bytes) -> list[dict]:
    """The plain way: full-resolution dlib with one upsampling, then one network call per face."""
    rgb = decode_image(data)
    detector, shape_predictor = face_module.load_models()
    results = []
    for rect in detector(rgb, 1):
        shape = shape_predictor(rgb, rect)
        landmarks = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        face = face_module.Face((rect.left(), rect.top(), rect.width(), rect.height()), landmarks, 0.0)
        results.append(predictor.probabilities([predictor.face_crop(rgb, face)]))
    return results


def speed(predictor: Predictor, photos: Path | None, repeats: int) -> dict:
    # a webcam-like portrait: the sample's head and shoulders filling a 640x480 frame (face about 150 px),
    # as in bench_faces.py
    one_bytes = encode_jpeg(cv2.resize(sample_photo()[0:320, 43:469], (640, 480), interpolation=cv2.INTER_CUBIC))
    group_path = photos / "2007_007763.jpg" if photos else None
    group_bytes = group_path.read_bytes() if group_path and group_path.exists() else one_bytes
    result = {}
    for name, data in (("one_face_640x480", one_bytes), ("group_photo", group_bytes)):
        faces = len(predictor.predict(decode_image(data)))
        ours = median_ms(lambda: json.dumps(predictor.predict(decode_image(data))), repeats)
        base = median_ms(lambda: baseline_predict(predictor, data), max(3, repeats // 3))
        result[name] = {"faces": faces, "ours_ms": ours, "baseline_ms": base, "speedup": base / ours}
    crop = predictor.face_crop(sample_photo(), predictor.predict_many([sample_photo()])[0][0].face)
    for batch in (1, 32):
        ms = median_ms(lambda: predictor.probabilities([crop] * batch), repeats)
        result[f"classifier_batch{batch}_ms_per_face"] = ms / batch
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--faces", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed-only", action="store_true", help="skip the accuracy measurements")
    args = parser.parse_args()
    path = fer2013_path()
    if path is None or not path.exists():
        print("set FACELAB_DATA_DIR to the folder holding fer2013.npz", file=sys.stderr)
        return 2
    predictor = Predictor(load_checkpoint(args.checkpoint or BUNDLED_CHECKPOINT))
    photos = Path(os.environ["FACELAB_PHOTOS_DIR"]) if os.environ.get("FACELAB_PHOTOS_DIR") else None
    report = {"cpu_count": os.cpu_count()}
    if not args.speed_only:
        splits = load_npz(path)
        report["framing"] = framing(predictor, splits, args.faces, args.seed)
        by_margin = report["framing"]["by_margin"]
        print(f"framing on {report['framing']['faces']} FER2013 val faces in 320x320 canvases: detected "
              f"{report['framing']['detected']:.1%}; raw-crop accuracy {report['framing']['raw_accuracy_on_detected']:.1%}")
        for margin, accuracy in by_margin.items():
            print(f"  margin {margin:.2f}: pipeline accuracy {accuracy:.1%}")
        predictor.margin = FER_MARGIN
        report["tta"] = tta_gain(predictor, splits)
        print(f"TTA on {report['tta']['split']}: {report['tta']['accuracy']:.2%} -> {report['tta']['accuracy_tta']:.2%}")
    report["speed"] = speed(predictor, photos, args.repeats)
    for name, values in report["speed"].items():
        print(f"  {name}: {values}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
