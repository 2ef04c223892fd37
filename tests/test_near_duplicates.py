"""Tests for core.near_duplicates: difference hashes and the near-identical pairs across a split."""
from __future__ import annotations

import cv2
import numpy as np

from core.near_duplicates import HASH_SIDE, MAX_DISTANCE, dhash, near_duplicates, pair_picture
from tests.test_train import draw_pattern


def faces(count: int, seed: int) -> np.ndarray:
    """(count, 1, 48, 48) distinct random pictures (shapes on noise, smoothed like a photo), one per index."""
    rng = np.random.default_rng(seed)
    return np.stack([cv2.GaussianBlur(draw_pattern(index % 7, rng), (0, 0), 1.5)[None] for index in range(count)])


def frame_of(image: np.ndarray, shift: float, gain: float) -> np.ndarray:
    """Another frame of the same scene: moved by a fraction of a pixel, re-lit, compressed again."""
    moved = cv2.warpAffine(image[0], np.float32([[1, 0, shift], [0, 1, -shift]]), (48, 48), borderMode=cv2.BORDER_REFLECT)
    lit = np.clip(moved * gain + 5, 0, 255).astype(np.uint8)
    _, jpeg = cv2.imencode(".jpg", lit, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)[None]


def bits_apart(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.bitwise_count(dhash(a[None]) ^ dhash(b[None])).sum())


def test_a_hash_is_256_bits_and_ignores_brightness():
    images = faces(3, seed=0)
    hashes = dhash(images)
    assert hashes.shape == (3, HASH_SIDE * HASH_SIDE // 64) and hashes.dtype == np.uint64
    brighter = np.clip(images[0].astype(int) * 1.2 + 10, 0, 255).astype(np.uint8)
    assert bits_apart(images[0], brighter) <= 8
    rgb = np.repeat(images, 3, axis=1)  # grey copies in three channels hash alike, up to rounding
    assert np.all(np.bitwise_count(dhash(rgb) ^ hashes).sum(axis=1) <= 8)
    assert dhash(images[:0]).shape == (0, 4)


def test_frames_of_one_scene_are_near_and_other_pictures_far():
    images = faces(40, seed=1)
    for index, image in enumerate(images[:10]):
        assert bits_apart(image, frame_of(image, 0.5, 1.1)) <= MAX_DISTANCE, index
    far = [bits_apart(images[i], images[j]) for i in range(20) for j in range(20, 40)]
    assert min(far) > MAX_DISTANCE


def test_pairs_across_the_split_closest_first():
    train = faces(30, seed=2)
    val = faces(10, seed=3)
    val[4] = frame_of(train[7], 0.3, 1.05)
    val[8] = train[12]  # the same file twice
    val[9] = train[12]
    found = near_duplicates(dhash(train), dhash(val))
    assert list(zip(found.train.tolist(), found.val.tolist())) == [(12, 8), (12, 9), (7, 4)]
    assert found.distance.tolist()[:2] == [0, 0] and 0 < found.distance[2] <= MAX_DISTANCE
    assert len(found) == 3 and found.val_images == 3
    assert len(near_duplicates(dhash(train), dhash(val[:0]))) == 0


def test_many_images_are_compared_block_by_block():
    train, val = faces(600, seed=4), faces(50, seed=5)
    val[-1] = train[-1]  # beyond the first block of training images
    found = near_duplicates(dhash(train), dhash(val))
    assert (599, 49, 0) in set(zip(found.train.tolist(), found.val.tolist(), found.distance.tolist()))


def test_a_pair_picture_sets_the_two_side_by_side():
    grey = faces(2, seed=6)
    picture = pair_picture(grey[0], grey[1])
    assert picture.shape == (48, 48 + 3 + 48, 3) and picture.dtype == np.uint8
    np.testing.assert_array_equal(picture[:, :48, 0], grey[0, 0])
    np.testing.assert_array_equal(picture[:, -48:, 2], grey[1, 0])
    assert np.all(picture[:, 48:51] == 255)
    rgb = np.repeat(grey, 3, axis=1)
    np.testing.assert_array_equal(pair_picture(rgb[0], rgb[1]), picture)
