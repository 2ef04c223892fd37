"""Benchmark: face detection + 68 landmarks, ours (core.faces.detect_faces) against plain dlib.

Run from the repository root:

    python -m bench.bench_faces [--repeats N]

The photos, made in memory:

* 640x480, one face: the head and shoulders of skimage's astronaut (its 426x320 top, x 43-469, without the
  mission patches that HOG scores near its threshold) enlarged to 640x480 (cv2 INTER_CUBIC).
* 4000x3000, one face: the shared close-up Tom_Cruise_avp_2014_4.jpg (565x800) from $FACELAB_PHOTOS_DIR,
  enlarged to 2119x3000 (cv2 INTER_CUBIC) and padded left and right to 4000 by repeating its edge columns,
  like a phone photo. Without that folder the astronaut is used, enlarged to 3000x3000.
* 4000x3000 class photo (only with $FACELAB_PHOTOS_DIR): the group photos 2007_007763.jpg and
  2008_002470.jpg tiled 2x2 (26 faces of 37-53 px) and enlarged 4x (cv2 INTER_CUBIC). Its faces are too
  small for the first search, so this is the case that pays for the second, upsampled one.

Cases, timed interleaved in one process after a warm-up (models already loaded):

* ours: HOG on a grey copy shrunk to at most 800 px; when that finds no face or a small one, HOG again on a
  copy of at most 1000 px upsampled once by dlib; boxes mapped back, landmarks fitted on the
  full-resolution photo (the shape predictor alone is also timed on the shrunk copy);
* plain dlib: detector(rgb, 0) on the full-resolution RGB photo, then the shape predictor per face;
* plain dlib, upsampled once: detector(rgb, 1) as in dlib's examples (640x480 only: at 4000x3000 it would
  search 48 megapixels).

It prints a table and, last, one JSON line. Timings are reported, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import dlib
import numpy as np

from core.faces import FIRST_SIDE, detect_faces, load_models
from core.images import decode_image, sample_photo

TARGET_MS = 150  # for the 4000x3000 photo, ours


def small_photo() -> np.ndarray:
    """A webcam-like portrait: the sample's head and shoulders filling a 640x480 frame (face about 150 px)."""
    return cv2.resize(sample_photo()[0:320, 43:469], (640, 480), interpolation=cv2.INTER_CUBIC)


def pad_to(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to `height`, then pad left and right to `width` by repeating the edge columns."""
    scale = height / rgb.shape[0]
    size = (round(rgb.shape[1] * scale), height)
    resized = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    left = (width - resized.shape[1]) // 2
    return cv2.copyMakeBorder(resized, 0, 0, left, width - resized.shape[1] - left, cv2.BORDER_REPLICATE)


def large_source() -> tuple[np.ndarray, str]:
    folder = os.environ.get("FACELAB_PHOTOS_DIR")
    path = Path(folder) / "Tom_Cruise_avp_2014_4.jpg" if folder else None
    if path is not None and path.is_file():
        return decode_image(path.read_bytes()), "Tom_Cruise_avp_2014_4.jpg (565x800)"
    return sample_photo(), "the astronaut (512x512; FACELAB_PHOTOS_DIR not set)"


def class_photo() -> np.ndarray | None:
    folder = os.environ.get("FACELAB_PHOTOS_DIR")
    paths = [Path(folder) / name for name in ("2007_007763.jpg", "2008_002470.jpg")] if folder else []
    if not paths or not all(path.is_file() for path in paths):
        return None
    first, second = (decode_image(path.read_bytes()) for path in paths)
    second = cv2.copyMakeBorder(second, 0, first.shape[0] - second.shape[0], 0, 0, cv2.BORDER_REPLICATE)
    grid = np.vstack([np.hstack([first, second]), np.hstack([second, first])])
    return cv2.resize(grid, (4000, 3000), interpolation=cv2.INTER_CUBIC)


def landmarks_of(predictor, image: np.ndarray, rects) -> list[np.ndarray]:
    return [np.array([(p.x, p.y) for p in predictor(image, rect).parts()], float) for rect in rects]


def plain_dlib(rgb: np.ndarray, upsample: int) -> list[np.ndarray]:
    detector, predictor = load_models()
    return landmarks_of(predictor, rgb, detector(rgb, upsample))


def predictor_on_shrunk_copy(rgb: np.ndarray, face) -> tuple[float, float, float]:
    """The shape predictor on the full-resolution photo and on the grey copy the first search used:
    (ms full, ms shrunk, mean landmark shift in full-resolution pixels)."""
    predictor = load_models()[1]
    height, width = rgb.shape[:2]
    scale = min(1.0, FIRST_SIDE / max(height, width))
    gray = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (round(width * scale), round(height * scale)),
                      interpolation=cv2.INTER_AREA)
    left, top, box_width, box_height = face.box
    full_rect = dlib.rectangle(left, top, left + box_width - 1, top + box_height - 1)
    small_rect = dlib.rectangle(round(left * scale), round(top * scale), round((left + box_width) * scale) - 1,
                                round((top + box_height) * scale) - 1)
    times = time_cases({"full": lambda: landmarks_of(predictor, rgb, [full_rect]),
                        "shrunk": lambda: landmarks_of(predictor, gray, [small_rect])}, 20)
    shrunk = (landmarks_of(predictor, gray, [small_rect])[0] + 0.5) / scale - 0.5
    return (float(np.median(times["full"])), float(np.median(times["shrunk"])),
            float(np.abs(shrunk - face.landmarks).mean()))


def ours(rgb: np.ndarray) -> list[np.ndarray]:
    return [face.landmarks for face in detect_faces(rgb)]


def time_cases(cases: dict[str, Callable[[], list]], repeats: int) -> dict[str, list[float]]:
    """One warm-up each, then round-robin so drift hits all cases alike."""
    for run in cases.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case (default 7)")
    args = parser.parse_args(argv)
    load_models()

    source, source_name = large_source()
    photos = {"640x480": small_photo(), "4000x3000": pad_to(source, 4000, 3000)}
    if (group := class_photo()) is not None:
        photos["4000x3000 class photo"] = group
    print("Face detection + 68 landmarks: ours (core.faces.detect_faces) against plain dlib")
    print("  640x480    the astronaut's head and shoulders (x 43-469, y 0-320) enlarged to 640x480")
    print(f"  4000x3000  {source_name}, enlarged to a height of 3000, edge-padded to 4000x3000")
    print("  class      2007_007763 and 2008_002470 tiled 2x2 (26 faces), enlarged to 4000x3000"
          if "4000x3000 class photo" in photos else "  class      skipped: FACELAB_PHOTOS_DIR not set")
    print(f"  machine    {os.cpu_count()} CPUs ({platform.machine()}, {platform.system()}); python "
          f"{platform.python_version()}, dlib {dlib.__version__}, opencv {cv2.__version__}")
    print(f"  method     1 warm-up, then {args.repeats} runs per case interleaved; median and max in ms")
    print()
    header = f"  {'photo':<23}{'case':<36}{'faces':>6}{'median':>9}{'max':>9}{'vs ours':>9}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    result: dict = {"repeats": args.repeats, "cpu_count": os.cpu_count(), "large_source": source_name}
    for label, rgb in photos.items():
        cases = {"ours": lambda rgb=rgb: ours(rgb),
                 "plain dlib, detector(rgb, 0)": lambda rgb=rgb: plain_dlib(rgb, 0)}
        if label == "640x480":
            cases["plain dlib, detector(rgb, 1)"] = lambda rgb=rgb: plain_dlib(rgb, 1)
        found = {name: run() for name, run in cases.items()}
        times = time_cases(cases, args.repeats)
        ours_median = float(np.median(times["ours"]))
        result[label] = {}
        for name, values in times.items():
            median = float(np.median(values))
            print(f"  {label:<23}{name:<36}{len(found[name]):>6}{median:>9.1f}{max(values):>9.1f}"
                  f"{median / ours_median:>8.1f}x")
            result[label][name] = round(median, 1)
        if label == "4000x3000":
            full_ms, shrunk_ms, shift = predictor_on_shrunk_copy(rgb, detect_faces(rgb)[0])
            print(f"  {'':<23}shape predictor alone: {full_ms:.1f} ms on the full photo, {shrunk_ms:.1f} ms on the "
                  f"{FIRST_SIDE}-px copy, whose landmarks are {shift:.1f} px off")
            result[label]["predictor_full_ms"] = round(full_ms, 2)
            result[label]["predictor_shrunk_ms"] = round(shrunk_ms, 2)
            result[label]["predictor_shrunk_shift_px"] = round(shift, 2)
        print()
    large = result["4000x3000"]["ours"]
    print(f"  ours on 4000x3000: {large:.1f} ms, target {TARGET_MS} ms -> {'met' if large <= TARGET_MS else 'NOT met'}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
