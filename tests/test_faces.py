"""Face detection, 68 landmarks and alignment (dlib), on the built-in sample and the shared photos."""
from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.faces import (Face, align_face, detect_faces, eye_centres, face_frame, load_models, predictor_path,
                        transform_face)
from core.images import decode_image, sample_photo

# (file, faces found, faces annotated in dlib's training.xml/testing.xml). dlib's HOG finds every annotated
# face in these photos; the group photos need the second, upsampled search (their faces are 37-53 px).
# No false positive on the rocket or on the cat either.
SHARED_PHOTOS = [
    ("2007_007763.jpg", 7, 7),
    ("2008_002470.jpg", 6, 6),
    ("2009_004587.jpg", 2, 2),
    ("Tom_Cruise_avp_2014_4.jpg", 1, 1),
    ("rocket.jpg", 0, 0),
    ("chelsea.png", 0, 0),
]


def shared_photo(name: str) -> np.ndarray:
    folder = os.environ.get("FACELAB_PHOTOS_DIR")
    if not folder:
        pytest.skip("FACELAB_PHOTOS_DIR is not set (the folder of real photos, ../shared/photos in CI)")
    path = Path(folder) / name
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    return decode_image(path.read_bytes())


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, Face]:
    photo = sample_photo()
    return photo, detect_faces(photo)[0]


def eye_angle(landmarks: np.ndarray) -> float:
    left, right = eye_centres(landmarks)
    return math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))


def assert_landmarks_in_box(face: Face, slack: float = 0.15) -> None:
    """dlib's box ends about at the chin, so allow a little of the box side around it."""
    left, top, width, height = face.box
    assert face.landmarks.shape == (68, 2)
    x, y = face.landmarks.T
    assert (x >= left - slack * width).all() and (x <= left + width * (1 + slack)).all()
    assert (y >= top - slack * height).all() and (y <= top + height * (1 + slack)).all()


def test_models_load_once_from_the_package_file():
    assert predictor_path().is_file() and predictor_path().name == "shape_predictor_68_face_landmarks.dat"
    assert load_models() is load_models()


def test_sample_photo_has_one_face_with_its_eyes_where_they_are(astronaut):
    photo, face = astronaut
    assert len(detect_faces(photo)) == 1
    assert face.score > 1
    assert_landmarks_in_box(face)
    # Eileen Collins' eyes in the 512x512 portrait, read off the photo: about (203, 101) and (247, 104).
    left, right = eye_centres(face.landmarks)
    assert np.abs(left - (203, 101)).max() < 5 and np.abs(right - (247, 104)).max() < 5
    assert face.landmarks[30][1] > left[1] and face.landmarks[57][1] > face.landmarks[30][1]  # nose, then mouth


@pytest.mark.parametrize("image", [np.zeros((240, 320, 3), np.uint8), np.full((1, 1, 3), 255, np.uint8),
                                   np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)],
                         ids=["black", "one pixel", "noise"])
def test_no_face_is_an_empty_list(image):
    assert detect_faces(image) == []


def test_large_photo_is_searched_shrunk_and_mapped_back(astronaut):
    """The astronaut's head and shoulders enlarged to 4000x3000. (The whole portrait is not used: at some
    sizes HOG scores her mission patch or name tag just above its threshold, 0.03 to 0.2.)"""
    photo, _ = astronaut
    head = photo[0:320, 43:469]
    face = detect_faces(head)[0]
    found = detect_faces(cv2.resize(head, (4000, 3000), interpolation=cv2.INTER_CUBIC))
    assert len(found) == 1
    scale = np.array([4000 / 426, 3000 / 320])
    expected = (face.landmarks + 0.5) * scale - 0.5
    # Fitted on the full-resolution photo, the landmarks agree with the small photo's within 3% of the face.
    assert np.abs(found[0].landmarks - expected).max() < 0.03 * found[0].box[2]
    assert_landmarks_in_box(found[0])


def test_small_photo_is_upsampled_so_a_small_face_is_found(astronaut):
    photo, _ = astronaut
    small = cv2.resize(photo, (200, 200), interpolation=cv2.INTER_AREA)  # the face is now about 35 px wide,
    # below the 80 px HOG needs at the plain size
    found = detect_faces(small)
    assert len(found) == 1 and found[0].box[2] < 45
    assert_landmarks_in_box(found[0])


def test_many_small_faces_in_a_large_photo_all_come_back(astronaut):
    """Twelve 88-pixel faces in a 2048x1536 photo are 34 pixels in the first search's 800-pixel copy, too
    small; the second search (a 1000-pixel copy upsampled to 2000) finds them."""
    photo, _ = astronaut
    grid = np.vstack([np.hstack([photo] * 4)] * 3)
    faces = detect_faces(grid)
    assert len(faces) == 12
    centres = sorted((round(face.box[1] / 512), round(face.box[0] / 512)) for face in faces)
    assert centres == [(row, col) for row in range(3) for col in range(4)]


def test_align_face_turns_a_tilted_face_upright(astronaut):
    photo, _ = astronaut
    tilted = cv2.warpAffine(photo, cv2.getRotationMatrix2D((256, 256), 25, 1.0), (512, 512),
                            borderMode=cv2.BORDER_REFLECT)
    face = detect_faces(tilted)[0]
    assert eye_angle(face.landmarks) < -18  # the head leans by about 22 degrees
    crop = align_face(tilted, face, 224)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    in_crop = detect_faces(crop)
    assert len(in_crop) == 1
    assert abs(eye_angle(in_crop[0].landmarks)) < 2
    eyes_y = np.mean([centre[1] for centre in eye_centres(in_crop[0].landmarks)])
    assert eyes_y < in_crop[0].landmarks[57][1] and eyes_y < 112  # upright: eyes in the upper half, above the mouth
    # Moving the detected landmarks with the same matrix gives level eyes too.
    moved = transform_face(face, face_frame(face.landmarks, face.box, 224, 0.25))
    assert abs(eye_angle(moved.landmarks)) < 1e-9
    assert math.sqrt(moved.box[2] * moved.box[3]) == pytest.approx(224 / 1.5)


@pytest.mark.parametrize("name, found, annotated", SHARED_PHOTOS)
def test_shared_photos(name, found, annotated):
    photo = shared_photo(name)
    faces = detect_faces(photo)
    assert found <= len(faces) <= annotated
    areas = [face.area for face in faces]
    assert areas == sorted(areas, reverse=True), "largest first"
    for face in faces:
        assert_landmarks_in_box(face, slack=0.25)


def test_class_photo_from_a_phone():
    """The two group photos tiled 2x2 (26 faces) and enlarged to 4000x3000, like a phone photo of a class."""
    first, second = shared_photo("2007_007763.jpg"), shared_photo("2008_002470.jpg")
    second = cv2.copyMakeBorder(second, 0, first.shape[0] - second.shape[0], 0, 0, cv2.BORDER_REPLICATE)
    grid = np.vstack([np.hstack([first, second]), np.hstack([second, first])])
    faces = detect_faces(cv2.resize(grid, (4000, 3000), interpolation=cv2.INTER_CUBIC))
    assert len(faces) == 26


def test_group_photo_faces_align():
    photo = shared_photo("2008_002470.jpg")
    for face in detect_faces(photo):
        crop = align_face(photo, face, 96)
        assert crop.shape == (96, 96, 3)
        moved = transform_face(face, face_frame(face.landmarks, face.box, 96, 0.25))
        assert abs(eye_angle(moved.landmarks)) < 1e-9
