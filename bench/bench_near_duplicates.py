"""The near-duplicate check across a split (core.near_duplicates): how fast, and how well it tells frames of one
scene from different faces.

    FACELAB_DATA_DIR=../shared/datasets python -m bench.bench_near_duplicates [--images 3000] [--repeats 5]

1. Speed: the difference hashes of N FER2013 training faces (48×48 grey, the face_vgg input), and of the same
   faces at 224×224 RGB (the torchvision networks' input); then every pair of a training and a validation
   image compared (an 80/20 split), against the same comparison as a Python loop over `int.bit_count` in the
   same process. Synthetic pictures stand in when FER2013 is not there.
2. Quality (FER2013 only): 300 faces against a copy each moved by up to a pixel, re-lit and compressed
   again as JPEG (the share found: recall), and against 2,700 other faces (the pairs found: false pairs, or
   FER2013's own duplicates).
"""
from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from core.data import fer2013_path
from core.near_duplicates import MAX_DISTANCE, dhash, near_duplicates


def median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def python_pairs(train_hashes: np.ndarray, val_hashes: np.ndarray) -> int:
    """The baseline: each pair's 256 bits as one Python int."""
    train = [int.from_bytes(row.tobytes(), "little") for row in train_hashes]
    val = [int.from_bytes(row.tobytes(), "little") for row in val_hashes]
    return sum((a ^ b).bit_count() <= MAX_DISTANCE for a in train for b in val)


def another_frame(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shift = np.float32([[1, 0, rng.uniform(-1, 1)], [0, 1, rng.uniform(-1, 1)]])
    moved = cv2.warpAffine(face, shift, face.shape[::-1], borderMode=cv2.BORDER_REFLECT)
    lit = np.clip(moved * rng.uniform(0.9, 1.1) + rng.uniform(-8, 8), 0, 255).astype(np.uint8)
    return cv2.imdecode(cv2.imencode(".jpg", lit, [cv2.IMWRITE_JPEG_QUALITY, 85])[1], cv2.IMREAD_GRAYSCALE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    path = fer2013_path()
    rng = np.random.default_rng(0)
    if path is not None and path.exists():
        with np.load(path) as data:
            faces = np.asarray(data["x_train"][:max(args.images, 3000)])
        source = f"FER2013 {path}"
    else:
        faces = cv2.GaussianBlur(rng.integers(0, 256, (args.images, 48, 48), dtype=np.uint8), (0, 0), 2)
        source = "synthetic pictures (no FER2013)"
    grey = faces[:args.images, None]
    held = len(grey) * 4 // 5
    print(f"{len(grey)} images from {source}; split {held} / {len(grey) - held}; median of {args.repeats}")

    hashes = dhash(grey)
    seconds = median_seconds(lambda: dhash(grey), args.repeats)
    print(f"dhash, 48x48 grey: {seconds * 1e3:.1f} ms ({seconds / len(grey) * 1e6:.1f} µs an image)")
    rgb = np.repeat(np.stack([cv2.resize(face, (224, 224)) for face in faces[:args.images]])[:, None], 3, axis=1)
    seconds = median_seconds(lambda: dhash(rgb), max(1, args.repeats // 2))
    print(f"dhash, 224x224 RGB: {seconds * 1e3:.0f} ms ({seconds / len(grey) * 1e6:.0f} µs an image)")
    train, val = hashes[:held], hashes[held:]
    found = near_duplicates(train, val)
    ours = median_seconds(lambda: near_duplicates(train, val), args.repeats)
    baseline = median_seconds(lambda: python_pairs(train, val), 1)
    assert python_pairs(train, val) == len(found)
    print(f"pairs compared: {held * (len(grey) - held):,}; ours {ours * 1e3:.1f} ms, Python loop {baseline * 1e3:.0f} ms: "
          f"{baseline / ours:.1f}x faster; {len(found)} pairs within {MAX_DISTANCE} bits")

    if source.startswith("FER2013"):
        base, others = faces[:300], faces[300:3000]
        copies = np.stack([another_frame(face, rng) for face in base])
        apart = np.bitwise_count(dhash(base[:, None]) ^ dhash(copies[:, None])).sum(axis=1)
        strangers = near_duplicates(dhash(base[:, None]), dhash(others[:, None]))
        print(f"quality: {np.mean(apart <= MAX_DISTANCE):.0%} of 300 re-framed copies found (median {np.median(apart):.0f} "
              f"bits apart); {len(strangers)} pairs among {300 * len(others):,} pairs of different faces "
              f"(distances {sorted(strangers.distance.tolist())})")


if __name__ == "__main__":
    main()
