"""Face detection (HOG and the CNN), 68 landmarks and template framing, on the sample and the shared photos."""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.faces import Face, detect_faces, eye_centres, load_models, model_path, transform_face
from core.framing import FIT_POINTS, face_template, frame_face
from core.images import decode_image, sample_photo

# (file, faces found, faces annotated in dlib's training.xml/testing.xml). dlib's HOG finds every annotated
# face in these photos; the group photos need the second, upsampled search (their faces are 37-53 px).
# No false positive on the rocket or on the cat either, from HOG or from the CNN detector.
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
    assert model_path().is_file() and model_path().name == "shape_predictor_68_face_landmarks.dat"
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
                                   np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8),
                                   np.zeros((400, 8, 3), np.uint8), np.zeros((8, 4000, 3), np.uint8)],
                         ids=["black", "one pixel", "noise", "thin", "a line"])
def test_no_face_is_an_empty_list(image):
    """Also for images too thin for the CNN detector, which crashes the process on some (8x400)."""
    assert detect_faces(image) == []
    assert detect_faces(image, "thorough") == []


def test_the_cnn_finds_a_blurred_face_that_hog_misses(astronaut):
    photo, sharp = astronaut
    blurred = cv2.GaussianBlur(photo, (0, 0), 512 / 120)
    assert detect_faces(blurred, "hog") == []
    found = detect_faces(blurred)
    assert len(found) == 1 and found[0].detector == "cnn" and found[0].score >= 0.3
    # Its landmarks are those of the sharp face, within a few pixels (the face is about 110 px).
    assert np.median(np.linalg.norm(found[0].landmarks - sharp.landmarks, axis=1)) < 6


def test_a_thorough_search_adds_only_the_faces_hog_missed(astronaut):
    photo, sharp = astronaut
    faces = detect_faces(photo, "thorough")
    assert len(faces) == 1 and faces[0].detector == "hog"  # the CNN's box of the same face is not added
    np.testing.assert_array_equal(faces[0].landmarks, sharp.landmarks)
    with pytest.raises(ValueError):
        detect_faces(photo, "everything")


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


def test_a_face_the_first_search_finds_is_kept_when_the_upsampled_search_loses_it(astronaut):
    # Shrunk to 640x480 the face is 104 px, under RETRY_FACE_SIDE: the retry runs, and on this photo it
    # finds nothing; the first search's face must still come back, from HOG alone.
    photo = cv2.resize(astronaut[0], (640, 480), interpolation=cv2.INTER_AREA)
    faces = detect_faces(photo, "hog")
    assert len(faces) == 1 and 90 < faces[0].box[2] < 120


def test_searches_from_several_threads_at_once_agree(astronaut):
    """Each thread takes its own HOG detector from the pool, so concurrent searches do not share one."""
    photo, sharp = astronaut
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: detect_faces(photo, "hog"), range(8)))
    assert all(len(found) == 1 and found[0].box == sharp.box for found in results)


def test_many_small_faces_in_a_large_photo_all_come_back(astronaut):
    """Twelve 88-pixel faces in a 2048x1536 photo are 34 pixels in the first search's 800-pixel copy, too
    small; the second search (a 1000-pixel copy upsampled to 2000) finds them."""
    photo, _ = astronaut
    grid = np.vstack([np.hstack([photo] * 4)] * 3)
    faces = detect_faces(grid)
    assert len(faces) == 12
    centres = sorted((round(face.box[1] / 512), round(face.box[0] / 512)) for face in faces)
    assert centres == [(row, col) for row in range(3) for col in range(4)]


def test_frame_face_puts_a_tilted_face_on_the_template(astronaut):
    photo, _ = astronaut
    tilted = cv2.warpAffine(photo, cv2.getRotationMatrix2D((256, 256), 25, 1.0), (512, 512),
                            borderMode=cv2.BORDER_REFLECT)
    face = detect_faces(tilted)[0]
    assert eye_angle(face.landmarks) < -18  # the head leans by about 22 degrees
    crop, matrix = frame_face(tilted, face.landmarks, 192)
    assert crop.shape == (192, 192, 3) and crop.dtype == np.uint8
    moved = transform_face(face, matrix)
    assert abs(eye_angle(moved.landmarks)) < 3
    # The inner face lands on the template, within a few percent of the crop side.
    error = np.linalg.norm((moved.landmarks[FIT_POINTS] + 0.5) / 192 - face_template()[FIT_POINTS], axis=1)
    assert np.median(error) < 0.03
    # The landmarks found again in the crop agree: the crop shows the face upright where the template says.
    again = detect_faces(crop)
    assert len(again) == 1 and abs(eye_angle(again[0].landmarks)) < 3
    assert np.median(np.linalg.norm(again[0].landmarks[FIT_POINTS] / 192 - face_template()[FIT_POINTS], axis=1)) < 0.04


def test_frame_face_pads_around_the_template(astronaut):
    photo, face = astronaut
    plain, _ = frame_face(photo, face.landmarks, 48)
    padded, matrix = frame_face(photo, face.landmarks, 48, pad=1.1)
    assert plain.shape == (48, 48, 3) and padded.shape == (53, 53, 3)
    moved = transform_face(face, matrix)
    centre = moved.landmarks[FIT_POINTS].mean(axis=0)
    # 53 px: the 48-px crop starts 2.5 px in, and pixel centres are half a pixel past pixel edges
    assert np.allclose(centre, face_template()[FIT_POINTS].mean(axis=0) * 48 + 2.5 - 0.5, atol=1e-6)


def test_frame_face_samples_the_right_pixels():
    """A face whose landmarks sit on the template in a 480-px image is framed at 48 px as that image
    shrunk 10x: crop pixel x averages image pixels 10x to 10x + 9 (a horizontal ramp tells)."""
    ramp = np.tile(np.arange(480, dtype=np.float32), (480, 1))
    image = np.dstack([ramp / 2] * 3).astype(np.float32)
    landmarks = face_template() * 480 - 0.5
    crop, matrix = frame_face(image, landmarks, 48)
    np.testing.assert_allclose(matrix, [[0.1, 0, -0.45], [0, 0.1, -0.45]], atol=1e-9)  # (x + 0.5) / 10 - 0.5
    np.testing.assert_allclose(crop[24, 1:-1, 0], (10 * np.arange(1, 47) + 4.5) / 2, atol=0.05)


def test_template_is_a_fer2013_face():
    """The template's eyes are level and above its mouth, inside the 48x48 crop, the chin just below it."""
    template = face_template()
    assert template.shape == (68, 2)
    assert abs(eye_angle(template)) < 2
    left, right = eye_centres(template)
    assert 0.25 < left[1] < 0.45 and 0.2 < left[0] < 0.4 and 0.6 < right[0] < 0.8
    assert template[57, 1] > left[1] + 0.3  # lower lip well below the eyes
    assert 0.95 < template[8, 1] < 1.15  # FER2013 crops cut at the chin


@pytest.mark.parametrize("name, found, annotated", SHARED_PHOTOS)
@pytest.mark.parametrize("search", ["auto", "thorough"])
def test_shared_photos(name, found, annotated, search):
    photo = shared_photo(name)
    faces = detect_faces(photo, search)
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
