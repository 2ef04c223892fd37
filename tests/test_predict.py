"""Prediction: the Emotion API shape, the bundled model on real faces, the command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.checkpoint import BUNDLED_CHECKPOINT, make_meta, save_checkpoint
from core.classes import EXPRESSION_KEYS, FER2013_KEYS
from core.errors import ImageError
from core.images import encode_png, sample_photo
from core.predict import Predictor, labels_above
from core.predict import main as predict_main
from models.registry import build_model
from tests.conftest import ROOT

PHOTOS = Path(os.environ.get("FACELAB_PHOTOS_DIR", "/nonexistent"))
GROUPS = {"2007_007763.jpg": 7, "2008_002470.jpg": 6, "2009_004587.jpg": 2, "Tom_Cruise_avp_2014_4.jpg": 1,
          "rocket.jpg": 0}


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory) -> Path:
    """A small untrained model: enough to check shapes without depending on the bundled weights."""
    args = {"width": 8}
    model = build_model("face_vgg", len(EXPRESSION_KEYS), **args)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "random.pt", model,
                           make_meta("face_vgg", args, EXPRESSION_KEYS))


@pytest.fixture(scope="module")
def predictor(random_checkpoint) -> Predictor:
    return Predictor.from_checkpoint(random_checkpoint)


def _group_photo() -> np.ndarray:
    """Three copies of the astronaut's face at different sizes on one canvas."""
    face = sample_photo()[40:260, 140:320]
    canvas = np.full((480, 900, 3), 200, np.uint8)
    import cv2

    for left, side in ((20, 300), (360, 220), (640, 160)):
        canvas[40:40 + side, left:left + round(side * 180 / 220)] = cv2.resize(face, (round(side * 180 / 220), side))
    return canvas


def test_emotion_api_shape(predictor):
    image = _group_photo()
    faces = predictor.predict(image)
    assert len(faces) == 3
    for face in faces:
        assert set(face) == {"faceRectangle", "scores"}
        assert set(face["faceRectangle"]) == {"left", "top", "width", "height"}
        assert list(face["scores"]) == list(EXPRESSION_KEYS)
        assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-5)
        assert all(0 <= v <= 1 for v in face["scores"].values())
        assert all(len(repr(v)) <= 8 for v in face["scores"].values()), "at most 6 decimals, not 16 digits"
        box = face["faceRectangle"]
        assert all(isinstance(v, int) for v in box.values())
        assert box["left"] >= 0 and box["top"] >= 0
        assert box["left"] + box["width"] <= image.shape[1] and box["top"] + box["height"] <= image.shape[0]
    areas = [f["faceRectangle"]["width"] * f["faceRectangle"]["height"] for f in faces]
    assert areas == sorted(areas, reverse=True), "faces come largest first"


def test_a_7_class_fer2013_checkpoint_still_predicts_its_7_keys(tmp_path):
    model = build_model("face_vgg", 7, width=8)
    path = save_checkpoint(tmp_path / "seven.pt", model, make_meta("face_vgg", {"width": 8}, FER2013_KEYS))
    faces = Predictor.from_checkpoint(path).predict(sample_photo())
    assert len(faces) == 1 and list(faces[0]["scores"]) == list(FER2013_KEYS)
    assert sum(faces[0]["scores"].values()) == pytest.approx(1.0, abs=1e-5)


def test_boxes_are_clipped_at_the_edge(predictor):
    image = sample_photo()[60:, 200:]  # the face touches the top-left corner
    for face in predictor.predict(image):
        box = face["faceRectangle"]
        assert box["left"] >= 0 and box["top"] >= 0
        assert box["left"] + box["width"] <= image.shape[1] and box["top"] + box["height"] <= image.shape[0]


def test_no_face_is_an_empty_list(predictor):
    assert predictor.predict(np.full((240, 320, 3), 127, np.uint8)) == []


def test_several_images_in_one_batch_match_one_by_one(predictor):
    images = [sample_photo(), _group_photo()]
    together = predictor.predict_many(images)
    alone = [predictor.predict_many([image])[0] for image in images]
    assert [len(faces) for faces in together] == [1, 3]
    for batch_faces, single_faces in zip(together, alone):
        for a, b in zip(batch_faces, single_faces):
            assert a.box == b.box
            assert np.allclose(list(a.scores.values()), list(b.scores.values()), atol=1e-5)


def test_tta_averages_ten_views(predictor):
    crop = predictor.face_crop(sample_photo(), predictor.predict_many([sample_photo()])[0][0].face)
    assert predictor.views(crop, tta=True).shape == (10, 1, 48, 48)
    assert predictor.views(crop, tta=False).shape == (1, 1, 48, 48)
    faces = predictor.predict(sample_photo(), tta=True)
    assert sum(faces[0]["scores"].values()) == pytest.approx(1.0, abs=1e-5)


def test_explanation_maps(predictor):
    face = predictor.predict_many([sample_photo()])[0][0]
    explanation = predictor.explain(sample_photo(), face.face, 3)
    assert explanation.crop.shape == (192, 192, 3)
    for heatmap in (explanation.grad_cam, explanation.attention):
        assert heatmap.shape == (192, 192)
        assert 0 <= heatmap.min() and heatmap.max() <= 1


@pytest.mark.skipif(not BUNDLED_CHECKPOINT.exists(), reason="the bundled checkpoint is not installed")
def test_bundled_model_sees_the_astronaut_smile():
    faces = Predictor.from_checkpoint().predict(sample_photo())
    assert len(faces) == 1
    scores = faces[0]["scores"]
    assert list(scores) == list(EXPRESSION_KEYS), "all 8 keys of the Emotion API, contempt included"
    assert max(scores, key=scores.get) == "happiness", scores


@pytest.mark.parametrize("name,count", GROUPS.items())
def test_real_photos_give_their_faces(predictor, name, count):
    path = PHOTOS / name
    if not path.exists():
        pytest.skip("set FACELAB_PHOTOS_DIR to the folder of shared photos")
    from core.images import decode_image

    assert len(predictor.predict(decode_image(path.read_bytes()))) == count


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.predict", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def _cli_in_process(capsys, *args: str) -> tuple[int, str, str]:
    """`core.predict.main` as the command line runs it, without the cost of a new Python process."""
    code = predict_main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_cli_one_and_several_files_and_errors(tmp_path, random_checkpoint, capsys):
    photo = tmp_path / "astronaut.png"
    photo.write_bytes(encode_png(sample_photo()))
    blank = tmp_path / "blank.png"
    blank.write_bytes(encode_png(np.full((100, 100, 3), 90, np.uint8)))
    one = _cli(str(photo), "--checkpoint", str(random_checkpoint))  # once as a user runs it
    assert one.returncode == 0, one.stderr
    faces = json.loads(one.stdout)
    assert isinstance(faces, list) and len(faces) == 1 and set(faces[0]) == {"faceRectangle", "scores"}

    code, out, err = _cli_in_process(capsys, str(photo), str(blank), "--checkpoint", str(random_checkpoint), "--tta",
                                     "--search", "thorough")
    assert code == 0, err
    by_file = json.loads(out)
    assert set(by_file) == {str(photo), str(blank)}
    assert len(by_file[str(photo)]) == 1 and by_file[str(blank)] == []

    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello")
    for bad in (not_image, tmp_path / "missing.jpg"):
        code, _, err = _cli_in_process(capsys, str(bad), "--checkpoint", str(random_checkpoint))
        assert code != 0
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), err
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(b"not a checkpoint")
    code, _, err = _cli_in_process(capsys, str(photo), "--checkpoint", str(foreign))
    assert code != 0 and "not a checkpoint of this app" in err


def test_bad_bytes_raise_image_error():
    from core.images import decode_image

    with pytest.raises(ImageError):
        decode_image(b"definitely not an image")


def test_labels_go_above_their_boxes_unless_that_covers_a_face_or_label_or_leaves_the_image():
    size = (100, 20)
    apart = [(0, 100, 40, 40), (200, 100, 40, 40)]
    assert labels_above(apart, [size, size]) == [True, True]
    side_by_side = [(0, 100, 40, 40), (60, 100, 40, 40)]  # their labels would overlap above the boxes
    assert labels_above(side_by_side, [size, size]) == [True, False]
    under_another_face = [(0, 100, 40, 40), (50, 60, 40, 30)]  # the first label would cover the second face
    assert labels_above(under_another_face, [size, size]) == [False, True]
    at_the_top = [(0, 5, 40, 40)]
    assert labels_above(at_the_top, [size]) == [False]
    crowded = [(0, 100, 40, 40), (60, 100, 40, 40), (10, 100, 40, 40)]  # both sides taken: the lesser overlap
    assert labels_above(crowded, [size, size, size]) == [True, False, False]
