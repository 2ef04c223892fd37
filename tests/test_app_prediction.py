"""AppTest for the prediction page: the example photos, an uploaded photo, a photo without a face, a non-image, the
faces table, and the model card tab with and without the data set."""
from __future__ import annotations

import base64
import gc
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from app_pages._shared import MODEL_FOR_PREDICTION
from core.checkpoint import BUNDLED_CARD, card_test_accuracy, make_meta, save_checkpoint
from core.classes import EXPRESSION_KEYS
from core.data import FER2013_FILE, FERPLUS_FILE
from core.gallery import GALLERY
from core.i18n import translate
from core.images import decode_image, encode_png, sample_photo
from core.metrics import cell_examples
from core.model_card import bundled_card_confusion, score_test_split
from core.predict import Predictor, bundled_predictor
from core.settings import Settings, settings
from models.registry import build_model
from tests.test_app import APP
from tests.test_data import write_fer_npz, write_ferplus_npz


@pytest.fixture()
def page(tmp_path) -> AppTest:
    checkpoint = save_checkpoint(tmp_path / "m.pt", build_model("face_vgg", len(EXPRESSION_KEYS), width=8),
                                 make_meta("face_vgg", {"width": 8}, EXPRESSION_KEYS))
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state[MODEL_FOR_PREDICTION] = checkpoint.read_bytes()
    at.run()
    at.switch_page("app_pages/prediction.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _upload(at: AppTest, *files: tuple[str, bytes, str]) -> None:
    at.segmented_control(key="pred_source_en").set_value("upload").run()
    at.file_uploader(key="pred_upload").set_value(list(files)).run()
    assert not at.exception, [e.value for e in at.exception]


def test_sample_photo_gets_one_face_with_scores(page):
    faces = json.loads(page.json[0].value)
    assert len(faces) == 1
    assert list(faces[0]["scores"]) == list(EXPRESSION_KEYS)
    assert sum(faces[0]["scores"].values()) == pytest.approx(1.0, abs=1e-5)


def test_uploaded_photos_no_face_and_not_an_image(page):
    _upload(page, ("astronaut.png", encode_png(sample_photo()), "image/png"),
            ("wall.png", encode_png(np.full((200, 300, 3), 128, np.uint8)), "image/png"),
            ("notes.png", b"this is not an image", "image/png"))
    errors = " ".join(e.value for e in page.error)
    assert "notes.png" in errors and "not an image we can read" in errors
    assert any("No face was found" in w.value for w in page.warning)
    assert any(s.value == "1 face in 2 photos" for s in page.subheader), [s.value for s in page.subheader]
    assert page.json, "the photo with a face shows its JSON"


def test_model_choice_survives_a_language_switch_and_an_empty_upload_says_what_to_do(page):
    assert page.radio(key="pred_model_en").value == "session", "a model handed over by the fine-tuning page is chosen"
    page.radio(key="pred_model_en").set_value("upload").run()
    assert any("Upload a checkpoint saved by this app" in info.value for info in page.info)
    assert not page.json, "no predictions until a checkpoint is uploaded"
    page.session_state["lang"] = "zh"
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    assert page.radio(key="pred_model_zh").value == "upload"
    assert any("上传本应用保存的检查点" in info.value for info in page.info)


def test_the_explanation_opens_on_the_first_photo_with_faces(page):
    _upload(page, ("wall.png", encode_png(np.full((200, 300, 3), 128, np.uint8)), "image/png"),
            ("astronaut.png", encode_png(sample_photo()), "image/png"))
    assert page.toggle(key="pred_why_1").value is True
    assert len(page.dataframe) == 1


def test_a_thorough_search_finds_the_same_sample_face(page):
    before = json.loads(page.json[0].value)
    page.toggle(key="pred_thorough").set_value(True).run()
    assert not page.exception, [e.value for e in page.exception]
    after = json.loads(page.json[0].value)
    assert len(after) == 1 and after[0]["faceRectangle"] == before[0]["faceRectangle"]


def _sample_upload() -> tuple[str, bytes, str]:
    return ("astronaut.png", encode_png(sample_photo()), "image/png")


def test_hosted_rate_limit_says_when_to_try_again(page, monkeypatch):
    monkeypatch.setattr("core.settings.settings", lambda: Settings(predictions_per_minute=1))
    page.toggle(key="pred_tta").set_value(True).run()  # the one new prediction allowed this minute
    assert page.json
    page.toggle(key="pred_thorough").set_value(True).run()  # another one
    assert not page.json and "Try again in about" in " ".join(e.value for e in page.error)
    page.toggle(key="pred_thorough").set_value(False).run()  # the last one again costs nothing
    assert page.json and not page.error


def test_photos_over_the_pixel_budget_of_a_run_are_refused(page, monkeypatch):
    monkeypatch.setattr("core.settings.settings", lambda: Settings(max_megapixels_per_run=0.5))
    _upload(page, _sample_upload(), ("second.png", encode_png(sample_photo()), "image/png"))
    assert "the limit per run is 0" in " ".join(e.value for e in page.error)
    assert len(page.json) == 1  # the first photo (0.26 MP) is still shown


def test_a_huge_photo_is_shrunk_and_not_kept_after_the_run(page):
    _upload(page, ("huge.png", encode_png(np.zeros((6000, 5000, 3), np.uint8)), "image/png"))
    assert any("No face was found" in w.value for w in page.warning)
    gc.collect()
    alive = [o for o in gc.get_objects() if type(o) is np.ndarray and o.ndim == 3 and max(o.shape) > 2048]
    assert alive == [], [o.shape for o in alive]


def test_each_uploaded_checkpoint_shows_its_own_scores(page, tmp_path):
    """Caches are keyed by the checkpoint's digest: after B, going back to A shows A's scores again."""
    checkpoints = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = build_model("face_vgg", len(EXPRESSION_KEYS), width=8)
        checkpoints.append(save_checkpoint(tmp_path / f"{seed}.pt", model,
                                           make_meta("face_vgg", {"width": 8}, EXPRESSION_KEYS)).read_bytes())
    expected = [Predictor.from_checkpoint(data).predict(sample_photo()) for data in checkpoints]
    assert expected[0] != expected[1]
    page.radio(key="pred_model_en").set_value("upload").run()
    for index in (0, 1, 0, 1):
        page.file_uploader(key="pred_ckpt").set_value((f"{index}.pt", checkpoints[index], "application/octet-stream")).run()
        assert not page.exception, [e.value for e in page.exception]
        assert page.json[0].value is not None
        assert json.loads(page.json[0].value) == expected[index]


# --------------------------------------------------------------------------- the gallery and the faces table


def _pick(at: AppTest, name: str) -> None:
    at.button(key=f"pred_gallery_{name}").click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_the_gallery_offers_every_example_photo_with_its_credit(page):
    assert [b.label for b in page.button if b.key.startswith("pred_gallery_")] == \
        [translate(f"gallery_{photo.name}", "en") for photo in GALLERY]
    assert any(c.value == translate("gallery_credit_astronaut", "en") for c in page.caption)
    _pick(page, "cat")
    assert [s.value for s in page.subheader] == ["Cat (no face)"]
    assert any("No face was found" in w.value for w in page.warning)
    assert any(c.value == translate("gallery_credit_cat", "en") for c in page.caption)


def test_a_group_photo_gets_a_faces_table_with_a_thumbnail_per_face(page):
    _pick(page, "group")
    assert [s.value for s in page.subheader] == ["4 faces in 1 photo", "Group (4 faces)"]
    table = page.dataframe[0].value
    assert list(table.columns[:2]) == ["thumbnail", "file"] and len(table) == 4
    for uri, width in zip(table["thumbnail"], table["width"]):
        assert uri.startswith("data:image/jpeg;base64,")
        face = decode_image(base64.b64decode(uri.split(",", 1)[1]))
        assert max(face.shape[:2]) == min(64, width)  # the face's box, shrunk to at most 64 px


def test_the_chosen_example_survives_leaving_the_page_and_a_language_switch(page):
    _pick(page, "cat")
    page.switch_page("app_pages/augmentation.py").run()
    page.switch_page("app_pages/prediction.py").run()
    assert [s.value for s in page.subheader] == ["Cat (no face)"]
    page.session_state["lang"] = "zh"
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    assert [s.value for s in page.subheader] == ["猫（没有人脸）"]
    assert page.button(key="pred_gallery_cat").proto.type == "primary"


# --------------------------------------------------------------------------- the model card tab


def _open_card(at: AppTest, data_dir: Path | None, monkeypatch) -> None:
    if data_dir is None:
        monkeypatch.delenv("FACELAB_DATA_DIR", raising=False)
    else:
        monkeypatch.setenv("FACELAB_DATA_DIR", str(data_dir))
    settings.cache_clear()
    at.session_state["pred_tab"] = "card"  # in a browser, a click on the tab
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_without_the_data_set_the_card_shows_its_stated_matrix_and_says_why_there_are_no_faces(page, monkeypatch):
    _open_card(page, None, monkeypatch)
    stated = card_test_accuracy(BUNDLED_CARD.read_text(encoding="utf-8"))
    assert [m.value for m in page.metric][:2] == [f"{stated['FER+ majority']:.2%}", f"{stated['FER2013 PrivateTest']:.2%}"]
    assert any("The faces behind each cell need the data set" in i.value for i in page.info)
    chart = json.loads(next(c for c in page.get("plotly_chart") if "card_cm_stated" in c.proto.id).proto.spec)
    z = chart["data"][0]["z"]  # plotly sends arrays as base64 with their dtype and shape
    shown = np.frombuffer(base64.b64decode(z["bdata"]), z["dtype"]).reshape(8, 8)
    assert np.array_equal(shown, bundled_card_confusion(EXPRESSION_KEYS))
    assert not page.get("image"), "no faces without the data set"
    assert not page.json, "the prediction tab's work is not done while the card is open"


def test_with_the_data_set_a_cell_of_the_card_opens_on_its_faces(page, monkeypatch, tmp_path):
    """A tiny FER2013 + FER+ pair in the data folder: the card scores its test split and shows a cell's faces,
    and the cell and the open tab survive a language switch and leaving the page."""
    write_fer_npz(tmp_path / FER2013_FILE)
    write_ferplus_npz(tmp_path / FERPLUS_FILE, tmp_path / FER2013_FILE)
    _open_card(page, tmp_path, monkeypatch)
    assert not page.info and any("Scored again on this server" in c.value for c in page.caption)
    scores = score_test_split(bundled_predictor().checkpoint, tmp_path / FER2013_FILE)
    true_class, predicted = int(scores.test.y[0]), int(scores.probabilities[0].argmax())
    # (AppTest's selectbox cannot pick an option whose label depends on the page's language)
    page.session_state["card_cm_true_en"], page.session_state["card_cm_pred_en"] = true_class, predicted
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    faces = len(cell_examples(scores.test.y, scores.probabilities, true_class, predicted))
    assert [len(image.value) for image in page.get("image")] == [faces]

    page.switch_page("app_pages/augmentation.py").run()
    page.switch_page("app_pages/prediction.py").run()
    assert not page.exception, [e.value for e in page.exception]
    assert [len(image.value) for image in page.get("image")] == [faces]
    page.session_state["lang"] = "zh"  # last: AppTest cannot rerun a selectbox whose labels follow the language
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    assert page.selectbox(key="card_cm_true_zh").value == true_class
    assert page.selectbox(key="card_cm_pred_zh").value == predicted
    assert [len(image.value) for image in page.get("image")] == [faces]
