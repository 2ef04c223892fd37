"""Benchmark: our augmentation pipeline against torchvision.transforms.v2.

Run from the repository root:

    python -m bench.bench_augment [--quick] [--repeats N]

It times 16 draws of motion blur -> affine -> colour jitter (+gamma) -> random resized
crop to 224 on a 512x512 RGB photo (skimage's astronaut), three ways, interleaved:

* ours:              core.augment.augment_many (parameters drawn, then applied on a thread pool)
* torchvision (PIL): v2.Compose on a PIL image, 16 sequential calls, as a Dataset would
* torchvision (tensor): the same v2.Compose on a uint8 CHW tensor, for information

then each of our operators alone (16 draws) to show where our time goes, and last the
drawing of parameters alone for a training batch (256 images of 48x48, the default training
augmentation plus noise): `sample_batch` once for the whole batch, against a loop of
`sample_params`, one call per image, in the same run. It prints a table and, last, one JSON
line. Timings are reported, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as torch_f
from PIL import Image, ImageFilter
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as tv_f

from core.augment import PipelineSpec, augment_many, default_op, fspecial, sample_batch, sample_params
from core.presets import default_augmentation

DRAWS = 16
SIZE = 512
CROP = 224
TARGET_MS = 50
OPS = ("motion_blur", "affine", "color", "crop")
SAMPLING_BATCH = 256


# --------------------------------------------------------------------------- input


def load_photo() -> np.ndarray:
    """skimage's astronaut (a real photo), as a 512x512 RGB uint8 array."""
    from skimage import data

    photo = data.astronaut()[..., :3]
    return np.ascontiguousarray(cv2.resize(photo, (SIZE, SIZE), interpolation=cv2.INTER_AREA))


# --------------------------------------------------------------------------- baseline


def _motion_bank_5x5() -> list[np.ndarray]:
    """5x5 motion-like kernels (a 5-pixel line) at 8 angles, zero-padded to 5x5 and centred.

    PIL's ImageFilter.Kernel only takes 3x3 or 5x5, so the blur length is fixed at 5 and
    only the direction is random (ours draws length 3..9 and any angle)."""
    bank = []
    for angle in np.arange(0.0, 180.0, 22.5):
        kernel = fspecial("motion", 5, float(angle))
        rows, cols = kernel.shape
        padded = np.zeros((5, 5))
        top, left = (5 - rows) // 2, (5 - cols) // 2
        padded[top : top + rows, left : left + cols] = kernel
        bank.append(padded / padded.sum())
    return bank


MOTION_BANK = _motion_bank_5x5()
PIL_MOTION_FILTERS = [ImageFilter.Kernel((5, 5), k.ravel().tolist(), scale=1.0) for k in MOTION_BANK]
# Depthwise conv2d weights for the tensor variant; conv2d correlates, like PIL's Kernel.
TENSOR_MOTION_WEIGHTS = [torch.from_numpy(k.astype(np.float32)).expand(3, 1, 5, 5).contiguous() for k in MOTION_BANK]


def _pil_motion_blur(img: Image.Image) -> Image.Image:
    return img.filter(random.choice(PIL_MOTION_FILTERS))


def _tensor_motion_blur(img: torch.Tensor) -> torch.Tensor:
    weight = random.choice(TENSOR_MOTION_WEIGHTS)
    padded = torch_f.pad(img.unsqueeze(0).float(), (2, 2, 2, 2), mode="replicate")
    out = torch_f.conv2d(padded, weight, groups=3)[0]
    return out.round_().clamp_(0, 255).to(torch.uint8)


def _random_gamma(img):
    return tv_f.adjust_gamma(img, random.uniform(0.8, 1.25))


def torchvision_pipeline(motion: Callable) -> v2.Compose:
    return v2.Compose([
        v2.Lambda(motion),
        v2.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10,
                        interpolation=v2.InterpolationMode.BILINEAR),
        v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05),
        v2.Lambda(_random_gamma),
        v2.RandomResizedCrop(CROP, scale=(0.5, 1.0), antialias=True),
    ])


# --------------------------------------------------------------------------- timing


def _ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def run_interleaved(cases: dict[str, Callable[[int], object]], warmup: int, repeats: int) -> dict[str, list[float]]:
    """Warm each case up, then time them round-robin so drift hits all cases alike.
    Each case gets the repeat index (used as a seed where it matters)."""
    for fn in cases.values():
        for i in range(warmup):
            fn(10_000 + i)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(repeats):
        for name, fn in cases.items():
            times[name].append(_ms(lambda: fn(i)))
    return times


def stats(values: list[float]) -> tuple[float, float]:
    return float(np.median(values)), float(np.percentile(values, 90))


def bench_sampling(warmup: int, repeats: int) -> dict:
    """Drawing the parameters of one training batch: all at once against one image at a time."""
    spec = PipelineSpec((*default_augmentation(48).ops, default_op("noise", 0.3)))
    shape = (48, 48, 1)

    def per_image(seed: int):
        rng = np.random.default_rng(seed)
        return [sample_params(spec, rng, shape) for _ in range(SAMPLING_BATCH)]

    cases = {
        "sample_batch, whole batch": lambda seed: sample_batch(spec, np.random.default_rng(seed), shape,
                                                               SAMPLING_BATCH),
        "sample_params, one per image": per_image,
    }
    times = run_interleaved(cases, warmup, repeats)
    batch_med, batch_p90 = stats(times["sample_batch, whole batch"])
    loop_med, loop_p90 = stats(times["sample_params, one per image"])
    print(f"  drawing parameters for a batch of {SAMPLING_BATCH} ({', '.join(op.op for op in spec.ops)}; "
          f"{repeats} repeats interleaved)")
    header = f"  {'sampler':<32}{'median ms':>11}{'p90 ms':>10}{'us/image':>10}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for name, (med, p90) in (("sample_batch, whole batch", (batch_med, batch_p90)),
                             ("sample_params, one per image", (loop_med, loop_p90))):
        print(f"  {name:<32}{med:>11.2f}{p90:>10.2f}{1000 * med / SAMPLING_BATCH:>10.1f}")
    print(f"  the whole-batch draw is {loop_med / batch_med:.1f}x faster than the per-image loop (median)")
    print()
    return {"batch": SAMPLING_BATCH, "whole_batch_ms_median": round(batch_med, 3),
            "per_image_loop_ms_median": round(loop_med, 3), "speedup": round(loop_med / batch_med, 1)}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer warm-ups and repeats (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per case (default 30, quick 6)")
    args = parser.parse_args(argv)
    warmup = 1 if args.quick else 3
    repeats = args.repeats or (6 if args.quick else 30)
    op_repeats = max(3, repeats // 2)

    random.seed(0)
    torch.manual_seed(0)
    photo = load_photo()
    photo_pil = Image.fromarray(photo)
    photo_tensor = torch.from_numpy(photo).permute(2, 0, 1).contiguous()

    spec = PipelineSpec(tuple(default_op(op) for op in OPS))
    tv_pil = torchvision_pipeline(_pil_motion_blur)
    tv_tensor = torchvision_pipeline(_tensor_motion_blur)

    def ours(seed: int):
        return augment_many(photo, spec, DRAWS, seed)

    def baseline_pil(seed: int):
        return [tv_pil(photo_pil) for _ in range(DRAWS)]

    def baseline_tensor(seed: int):
        return [tv_tensor(photo_tensor) for _ in range(DRAWS)]

    # Sanity (not timing): every variant yields 16 images of 224x224x3.
    got = ours(0)
    assert len(got) == DRAWS and all(img.shape == (CROP, CROP, 3) and img.dtype == np.uint8 for img, _ in got)
    assert all(img.size == (CROP, CROP) and img.mode == "RGB" for img in baseline_pil(0))
    assert all(tuple(t.shape) == (3, CROP, CROP) and t.dtype == torch.uint8 for t in baseline_tensor(0))

    cpu_count = os.cpu_count() or 1
    print("Augmentation benchmark: 16 draws of motion blur -> affine -> colour(+gamma) -> crop to 224")
    print(f"  image     skimage.data.astronaut(), resized with cv2 to {photo.shape[1]}x{photo.shape[0]} RGB uint8")
    print(f"  machine   {cpu_count} CPUs ({platform.machine()}, {platform.system()}); python {platform.python_version()}")
    print(f"  threads   torch {torch.get_num_threads()} (default), cv2 {cv2.getNumThreads()}")
    print(f"  versions  torch {torch.__version__}, torchvision {__import__('torchvision').__version__}, "
          f"opencv {cv2.__version__}, numpy {np.__version__}")
    print("  baseline  torchvision.transforms.v2, 16 sequential calls; motion-blur stand-in: "
          "v2.Lambda(PIL ImageFilter.Kernel((5,5), 5-px motion line, random of 8 angles))")
    print("            [tensor variant: same 5x5 kernels via depthwise torch conv2d], RandomAffine(15, (0.1,0.1), "
          "(0.9,1.1), shear=10, bilinear), ColorJitter(0.2,0.2,0.2,0.05), Lambda(adjust_gamma U[0.8,1.25]), "
          "RandomResizedCrop(224, scale=(0.5,1))")
    print(f"  method    warm-up {warmup}x each, then {repeats} repeats interleaved; times are for all 16 draws")
    print()

    cases = {
        "ours (augment_many)": ours,
        "torchvision v2, PIL": baseline_pil,
        "torchvision v2, uint8 tensor": baseline_tensor,
    }
    times = run_interleaved(cases, warmup, repeats)
    ours_med, ours_p90 = stats(times["ours (augment_many)"])
    pil_med, pil_p90 = stats(times["torchvision v2, PIL"])
    ten_med, ten_p90 = stats(times["torchvision v2, uint8 tensor"])

    header = f"  {'pipeline (16 draws)':<32}{'median ms':>11}{'p90 ms':>10}{'ms/draw':>10}{'vs ours':>10}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for name, (med, p90) in (("ours (augment_many)", (ours_med, ours_p90)),
                             ("torchvision v2, PIL", (pil_med, pil_p90)),
                             ("torchvision v2, uint8 tensor", (ten_med, ten_p90))):
        print(f"  {name:<32}{med:>11.1f}{p90:>10.1f}{med / DRAWS:>10.2f}{med / ours_med:>9.2f}x")
    print()
    print(f"  ours is {pil_med / ours_med:.2f}x faster than torchvision/PIL and "
          f"{ten_med / ours_med:.2f}x faster than torchvision/tensor (median); "
          f"target {TARGET_MS} ms -> {'met' if ours_med <= TARGET_MS else 'NOT met'} (informational)")
    print()

    # Where our time goes: each operator alone, 16 draws, plus the pipeline without the pool.
    single = {op: PipelineSpec((default_op(op),)) for op in OPS}
    op_cases: dict[str, Callable[[int], object]] = {
        op: (lambda seed, s=single[op]: augment_many(photo, s, DRAWS, seed)) for op in OPS
    }
    from core.augment import augment  # sequential reference, same code path per draw

    def ours_sequential(seed: int):
        rng = np.random.default_rng(seed)
        return [augment(photo, spec, rng) for _ in range(DRAWS)]

    op_cases["full pipeline, no thread pool"] = ours_sequential
    op_times = run_interleaved(op_cases, warmup, op_repeats)
    op_sum = sum(stats(op_times[op])[0] for op in OPS)
    print(f"  ours, one operator alone on the 512x512 photo (16 draws, {op_repeats} repeats interleaved)")
    header = f"  {'operator':<32}{'median ms':>11}{'p90 ms':>10}{'share':>10}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    breakdown = {}
    for op in OPS:
        med, p90 = stats(op_times[op])
        breakdown[op] = round(med, 2)
        print(f"  {op:<32}{med:>11.1f}{p90:>10.1f}{100 * med / op_sum:>9.0f}%")
    print(f"  {'sum of the four':<32}{op_sum:>11.1f}")
    seq_med, seq_p90 = stats(op_times["full pipeline, no thread pool"])
    print(f"  {'full pipeline, no thread pool':<32}{seq_med:>11.1f}{seq_p90:>10.1f}")
    print("  (alone, each op works at 512x512 except crop, which resamples straight to 224; in the pipeline,"
          " colour sits between affine and crop, so affine is resampled at 512x512 and crop once more)")
    print()

    sampling = bench_sampling(warmup, repeats)

    result = {
        "sampling": sampling,
        "ours_ms_median": round(ours_med, 2),
        "ours_ms_p90": round(ours_p90, 2),
        "torchvision_pil_ms_median": round(pil_med, 2),
        "torchvision_pil_ms_p90": round(pil_p90, 2),
        "torchvision_tensor_ms_median": round(ten_med, 2),
        "torchvision_tensor_ms_p90": round(ten_p90, 2),
        "speedup_vs_pil": round(pil_med / ours_med, 2),
        "speedup_vs_tensor": round(ten_med / ours_med, 2),
        "ours_sequential_ms_median": round(seq_med, 2),
        "ours_op_alone_ms_median": breakdown,
        "draws": DRAWS,
        "repeats": repeats,
        "quick": bool(args.quick),
        "target_ms": TARGET_MS,
        "machine": {"cpu_count": cpu_count, "torch_threads": torch.get_num_threads(),
                    "cv2_threads": cv2.getNumThreads(), "arch": platform.machine()},
    }
    print(json.dumps(result, sort_keys=False))
    return result


if __name__ == "__main__":
    main()
