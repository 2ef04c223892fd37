"""Near-identical images on both sides of a split, found by their difference hash (dHash).

A dHash keeps, for a small grey thumbnail, whether each pixel is brighter than its right-hand
neighbour: a change of brightness or contrast, or another JPEG compression, leaves it nearly the same,
so two frames of one video lie a few bits apart, and different faces far apart. On FER2013's aligned
48×48 faces, a 16×16 hash (256 bits) with at most 44 bits differing found 94 % of 300 copies moved by
up to a pixel, re-lit and JPEG-compressed again, and 6 pairs among the 810,000 pairs of those 300 faces
and 2,700 others: 5 of them FER2013's own duplicates, 1 two nearly blank pictures
(`python -m bench.bench_near_duplicates`).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

HASH_SIDE = 16
MAX_DISTANCE = 44  # of HASH_SIDE² bits
_BLOCK = 256  # training images compared at once: bounds the memory of the pairwise table


@dataclass(frozen=True)
class NearDuplicates:
    """Pairs of a training and a validation image whose hashes differ in at most `MAX_DISTANCE` bits,
    closest first."""

    train: np.ndarray  # index into the training set
    val: np.ndarray  # index into the validation set
    distance: np.ndarray  # differing bits

    def __len__(self) -> int:
        return len(self.distance)

    @property
    def val_images(self) -> int:
        """How many validation images have a near-copy in training."""
        return len(np.unique(self.val))


def dhash(x: np.ndarray) -> np.ndarray:
    """Difference hashes of (N, C, H, W) uint8 images, as (N, HASH_SIDE² / 64) uint64 words."""
    thumbnails = np.zeros((len(x), HASH_SIDE, HASH_SIDE + 1), np.uint16)
    for index, image in enumerate(x):  # grey as the sum of the channels: only comparisons matter
        thumbnails[index] = cv2.resize(image.sum(axis=0, dtype=np.uint16), (HASH_SIDE + 1, HASH_SIDE),
                                       interpolation=cv2.INTER_AREA)
    bits = (thumbnails[:, :, 1:] > thumbnails[:, :, :-1]).reshape(len(x), HASH_SIDE * HASH_SIDE)
    return np.packbits(bits, axis=1).view(np.uint64)


def near_duplicates(train_hashes: np.ndarray, val_hashes: np.ndarray,
                    max_distance: int = MAX_DISTANCE) -> NearDuplicates:
    """Every pair of a training and a validation image whose `dhash`es are near (all pairs compared at
    once, a block of training images at a time). Hash a data set once, then compare any split of it."""
    found = [np.zeros((0, 3), np.int64)]
    for start in range(0, len(train_hashes), _BLOCK):
        block = train_hashes[start:start + _BLOCK]
        distance = np.zeros((len(block), len(val_hashes)), np.uint16)
        for word in range(block.shape[1]):
            distance += np.bitwise_count(block[:, word, None] ^ val_hashes[None, :, word])
        rows, columns = np.nonzero(distance <= max_distance)
        found.append(np.stack([rows + start, columns, distance[rows, columns]], axis=1))
    pairs = np.concatenate(found)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0], pairs[:, 2]))]
    return NearDuplicates(pairs[:, 0], pairs[:, 1], pairs[:, 2])


def pair_picture(train_image: np.ndarray, val_image: np.ndarray) -> np.ndarray:
    """A training and a validation image (C, H, W) side by side as one RGB picture, a white gap between."""
    pair = [np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image for image in (train_image, val_image)]
    gap = np.full((3, pair[0].shape[1], max(2, pair[0].shape[2] // 16)), 255, np.uint8)
    return np.ascontiguousarray(np.concatenate([pair[0], gap, pair[1]], axis=2).transpose(1, 2, 0))
