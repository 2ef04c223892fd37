"""Prediction: what framing and detection cost in accuracy, how well faces are found, and how fast it is.

    FACELAB_DATA_DIR=... FACELAB_PHOTOS_DIR=... python -m bench.bench_predict [--checkpoint C] [--faces 600]

1. Framing. FER2013 validation faces are upscaled, pasted into 320x320 canvases and changed by one
   condition at a time (face size, rotation, brightness, blur), then sent through the whole pipeline:
   detection, landmarks, the face template's crop (`core.framing`). Its accuracy on the faces found is
   compared with the classifier's on the raw 48x48 crops of the same faces; the previous framing (the
   detector's box turned upright, no margin) runs in the same pass as the baseline.
2. Detection. The faces HOG finds in the shared photos and the sample portrait are the reference; the
   photos are turned, darkened, blurred and shrunk, and each search (`core.faces.SEARCHES`: HOG alone,
   HOG then the CNN where HOG found nothing, HOG and the CNN on every photo) is scored by the reference
   faces it finds again, the false faces it adds (on the photos without faces too), and its time per
   photo.
3. Test accuracy of the checkpoint on FER+ majority labels and on FER2013's own labels, without and
   with test-time augmentation (a flip and the lecture's ten local crops).
4. Speed, bytes to JSON: a 640x480 photo with one face and a group photo, against a baseline in the
   same run (full-resolution dlib detection and one classifier call per face); and the classifier
   alone per face at batch 1 and 32.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from bench.bench_faces import small_photo
from core import faces as face_module
from core.checkpoint import BUNDLED_CHECKPOINT, load_checkpoint
from core.data import LABEL_SOURCES, fer2013_path, load_npz
from core.errors import DatasetError
from core.evaluate import shared_class_predictions
from core.images import decode_image, encode_jpeg, sample_photo
from core.predict import CROP_PAD, Predictor

CANVAS = 320
BASE_SCALE = 3
# name: (upscale of the 48-px face, rotation in degrees, brightness factor, blur sigma in canvas pixels)
CONDITIONS = {
    "base (3x, 144 px)": (3, 0, 1.0, 0),
    "2x (96 px)": (2, 0, 1.0, 0),
    "5x (240 px)": (5, 0, 1.0, 0),
    "rotated -20°": (3, -20, 1.0, 0),
    "rotated -10°": (3, -10, 1.0, 0),
    "rotated +10°": (3, 10, 1.0, 0),
    "rotated +20°": (3, 20, 1.0, 0),
    "dark ×0.4": (3, 0, 0.4, 0),
    "bright ×1.6": (3, 0, 1.6, 0),
    "blur σ 2": (3, 0, 1.0, 2),
    "blur σ 4": (3, 0, 1.0, 4),
}


def canvas_for(face: np.ndarray, rng: np.random.Generator, scale: int, angle: float, brightness: float,
               blur: float) -> np.ndarray:
    """The 48x48 grey face upscaled and pasted at a random place on a blurred, noisy background, then
    turned about its centre, brightened or darkened, and blurred."""
    big = cv2.resize(face, (48 * scale, 48 * scale), interpolation=cv2.INTER_CUBIC)
    background = cv2.GaussianBlur(cv2.resize(face, (CANVAS, CANVAS)), (0, 0), 25)
    background = np.clip(background + rng.normal(0, 8, background.shape), 0, 255).astype(np.uint8)
    margin = int(big.shape[0] * 0.21) if angle else 0  # a turned face's corners stay on the canvas
    top, left = rng.integers(margin, CANVAS - big.shape[0] - margin + 1, size=2)
    background[top:top + big.shape[0], left:left + big.shape[1]] = big
    if angle:
        centre = (left + big.shape[1] / 2, top + big.shape[0] / 2)
        background = cv2.warpAffine(background, cv2.getRotationMatrix2D(centre, angle, 1.0), (CANVAS, CANVAS),
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    image = background.astype(np.float32) * brightness
    if blur:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    return cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)


def box_crop(predictor: Predictor, rgb: np.ndarray, face: face_module.Face) -> np.ndarray:
    """The previous framing, kept as the baseline: the detector's box turned upright, no margin."""
    side = int(round(predictor.input_size * CROP_PAD))
    matrix = face_module.face_frame(face.landmarks, face.box, side, (CROP_PAD - 1) / 2)
    crop = cv2.warpAffine(rgb, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)


def framing(predictor: Predictor, dataset, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(dataset), size=min(count, len(dataset)), replace=False)
    x, y = dataset.x[picked], dataset.y[picked]

    def labels(probabilities: np.ndarray) -> np.ndarray:
        return shared_class_predictions(probabilities, predictor.classes, dataset.classes)

    def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float | None:
        return float((predicted == truth).mean()) if len(truth) else None

    raw = labels(predictor.stored_crop_probabilities(x))
    result = {"faces": len(picked), "raw_accuracy": accuracy(raw, y), "conditions": {}}
    for name, (scale, angle, brightness, blur) in CONDITIONS.items():
        canvases = [canvas_for(image[0], rng, scale, angle, brightness, blur) for image in x]
        found = [face_module.detect_faces(canvas) for canvas in canvases]
        detected = np.array([len(f) > 0 for f in found])
        faces = [(canvas, f[0]) for canvas, f in zip(canvases, found) if f]
        template = labels(predictor.probabilities([predictor.face_crop(c, f) for c, f in faces]))
        box = labels(predictor.probabilities([box_crop(predictor, c, f) for c, f in faces]))
        result["conditions"][name] = {
            "detected": float(detected.mean()), "raw": accuracy(raw[detected], y[detected]),
            "template": accuracy(template, y[detected]), "box": accuracy(box, y[detected])}
    return result


# --------------------------------------------------------------------------- detection


def hard_cases(rgb: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each hard version of a photo, with the 2x3 matrix that moves the clean photo's points onto it."""
    height, width = rgb.shape[:2]
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    cases = {"clean": (rgb, identity)}
    for angle in (30, -40):
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        cases[f"turned {angle:+d}°"] = (cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_CONSTANT),
                                        matrix)
    cases["dark (gamma 3)"] = (np.clip((rgb / 255.0) ** 3 * 255, 0, 255).astype(np.uint8), identity)
    cases["dark ×0.1"] = ((rgb * 0.1).astype(np.uint8), identity)
    for share in (0.005, 0.01):
        cases[f"blurred σ {share:.1%}"] = (cv2.GaussianBlur(rgb, (0, 0), share * max(height, width)), identity)
    cases["small ×0.5"] = (cv2.resize(rgb, (width // 2, height // 2), interpolation=cv2.INTER_AREA),
                           identity * 0.5)
    return cases


def matched(found: list[face_module.Face], centres: np.ndarray, sides: np.ndarray) -> tuple[int, int]:
    """(reference faces found again, detections that are none of them): a detection is a reference
    face when its centre lies within half that face's side of the face's centre."""
    hits, false = set(), 0
    for face in found:
        left, top, width, height = face.box
        centre = np.array([left + width / 2, top + height / 2])
        near = [i for i, (c, s) in enumerate(zip(centres, sides)) if np.abs(centre - c).max() < s / 2]
        hits.update(near)
        false += not near
    return len(hits), false


def detection(photos: Path | None) -> dict:
    sources = {"sample portrait": sample_photo()}
    if photos:
        for name in ("2007_007763.jpg", "2008_002470.jpg", "2009_004587.jpg", "Tom_Cruise_avp_2014_4.jpg",
                     "chelsea.png", "rocket.jpg"):
            if (photos / name).exists():
                sources[name] = decode_image((photos / name).read_bytes())
    result: dict[str, dict] = {}
    for rgb in sources.values():
        reference = face_module.detect_faces(rgb, "hog")
        centres = np.array([[f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2] for f in reference]).reshape(-1, 2)
        sides = np.array([math.sqrt(f.area) for f in reference])
        for case, (image, matrix) in hard_cases(rgb).items():
            moved = centres @ matrix[:, :2].T + matrix[:, 2]
            scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
            row = result.setdefault(case, {})
            for setting in face_module.SEARCHES:
                started = time.perf_counter()
                found = face_module.detect_faces(image, setting)
                seconds = time.perf_counter() - started
                hits, false = matched(found, moved, sides * scale)
                totals = row.setdefault(setting, {"reference": 0, "found": 0, "false": 0, "seconds": []})
                totals["reference"] += len(reference)
                totals["found"] += hits
                totals["false"] += false
                totals["seconds"].append(seconds)
    for row in result.values():
        for totals in row.values():
            times = totals.pop("seconds")
            totals["recall"] = totals["found"] / max(1, totals["reference"])
            totals["median_ms"] = 1000 * float(np.median(times))
            totals["max_ms"] = 1000 * float(np.max(times))
    return {"photos": list(sources), "cases": result}


# --------------------------------------------------------------------------- accuracy and speed


def test_accuracy(predictor: Predictor, path: Path) -> dict:
    result = {}
    for labels in LABEL_SOURCES:
        try:
            dataset = load_npz(path, labels).test
        except DatasetError as error:  # ferplus.npz missing: report what can be measured
            result[labels] = {"error": str(error)}
            continue
        plain, tta = (shared_class_predictions(predictor.stored_crop_probabilities(dataset.x, augmented), predictor.classes,
                                               dataset.classes) for augmented in (False, True))
        result[labels] = {"images": len(dataset), "accuracy": float((plain == dataset.y).mean()),
                          "accuracy_tta": float((tta == dataset.y).mean())}
    return result


def median_ms(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def baseline_predict(predictor: Predictor, data: bytes) -> list[np.ndarray]:
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
    one_bytes = encode_jpeg(small_photo())
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


def print_report(report: dict) -> None:
    """What has been measured so far; called after each part, so that a long run shows its figures early."""
    if "framing" in report:
        framed = report["framing"]
        print(f"framing, {framed['faces']} FER2013 val faces, raw-crop accuracy {framed['raw_accuracy']:.1%}")
        print(f"  {'condition':<18} {'found':>6} {'raw':>6} {'template':>9} {'gap':>6} {'box':>6} {'gap':>6}")
        for name, row in framed["conditions"].items():
            if row["raw"] is None:
                print(f"  {name:<18} no face found")
                continue
            print(f"  {name:<18} {row['detected']:>6.1%} {row['raw']:>6.1%} {row['template']:>9.1%} "
                  f"{row['template'] - row['raw']:>+6.1%} {row['box']:>6.1%} {row['box'] - row['raw']:>+6.1%}")
    if "detection" in report:
        print(f"detection on {', '.join(report['detection']['photos'])}")
        for case, row in report["detection"]["cases"].items():
            cells = "  ".join(f"{setting} {t['found']}/{t['reference']} false {t['false']} "
                              f"median {t['median_ms']:.0f} ms max {t['max_ms']:.0f} ms" for setting, t in row.items())
            print(f"  {case:<18} {cells}")
    for labels, row in report.get("test_accuracy", {}).items():
        if "error" in row:
            print(f"test accuracy, {labels} labels: {row['error']}")
        else:
            print(f"test accuracy, {labels} labels ({row['images']} images): {row['accuracy']:.2%}, "
                  f"with TTA {row['accuracy_tta']:.2%}")
    for name, values in report.get("speed", {}).items():
        print(f"  {name}: {values}")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--faces", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed-only", action="store_true", help="skip the accuracy and detection measurements")
    args = parser.parse_args()
    path = fer2013_path()
    if path is None or not path.exists():
        print("set FACELAB_DATA_DIR to the folder holding fer2013.npz", file=sys.stderr)
        return 2
    checkpoint = load_checkpoint(args.checkpoint or BUNDLED_CHECKPOINT)
    predictor = Predictor(checkpoint)
    photos = Path(os.environ["FACELAB_PHOTOS_DIR"]) if os.environ.get("FACELAB_PHOTOS_DIR") else None
    report: dict = {"cpu_count": os.cpu_count()}
    if not args.speed_only:
        labels = checkpoint.meta.get("config", {}).get("labels", "fer2013")
        for part, measure in (("framing", lambda: framing(predictor, load_npz(path, labels).val, args.faces, args.seed)),
                              ("detection", lambda: detection(photos)),
                              ("test_accuracy", lambda: test_accuracy(predictor, path))):
            report[part] = measure()
            print_report({part: report[part]})
    report["speed"] = speed(predictor, photos, args.repeats)
    print_report({"speed": report["speed"]})
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
