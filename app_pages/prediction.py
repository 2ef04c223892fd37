"""Expression prediction: every face's box and class scores, drawn, charted and as Emotion API JSON."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app_pages._confusion import confusion_explorer, confusion_figure
from app_pages._shared import (
    MODEL_FOR_PREDICTION,
    cached_example_photo,
    choice,
    choice_key,
    data_uri,
    gallery,
    kept_uploads,
    lang,
    photo_figure,
    remembered_tabs,
    scores_figure,
    session_id,
    show_error,
    tr,
)
from core.attention import overlay
from core.augment import crop_box
from core.checkpoint import BUNDLED_CARD, BUNDLED_CHECKPOINT, card_test_accuracy
from core.classes import colour, display_name
from core.data import FER2013_FILE, data_dir, data_file
from core.errors import RateLimitError, UserError
from core.images import decode_image, digest, limit_size
from core.limits import RateLimiter
from core.metrics import metrics_from_confusion
from core.model_card import TestScores, bundled_card_confusion, score_test_split
from core.predict import FaceScores, Predictor, bundled_predictor, faces_table, labels_above, table_csv
from core.settings import settings

DISPLAY_SIDE = 1600
MAIN_COLUMN_PX = 730  # the usual width of the page's main column, to size box labels in image pixels
LABEL_CHAR_PX, LABEL_WIDE_CHAR_PX, LABEL_HEIGHT_PX = 7.5, 13, 20  # a 13 px label font; CJK is wider
MAX_EXPLAINED_FACES = 6  # Grad-CAM costs a backward pass per face
FACE_THUMBNAIL_SIDE = 64
TABS = ("predict", "card")

st.title(tr("pred_title"))
st.markdown(tr("pred_intro"))


@st.cache_resource(show_spinner=False, max_entries=4)
def _predictor(digest: str, _data: bytes) -> Predictor:
    """A checkpoint's predictor, cached by the digest of its bytes (the bytes themselves are not hashed)."""
    return Predictor.from_checkpoint(_data)


@st.cache_resource(show_spinner=False)
def _prediction_limiter(per_minute: int | None) -> RateLimiter:
    return RateLimiter(per_minute, 60)


# Cached by the model's digest and the photos' bytes, so one model's scores are never shown for another.
@st.cache_data(show_spinner=False, max_entries=16)
def _predict(_predictor: Predictor, model: str, _images: list[np.ndarray], photos: str, tta: bool,
             search: str) -> list[list[FaceScores]]:
    return _predictor.predict_many(_images, tta, search)


@st.cache_data(show_spinner=False, max_entries=64)
def _explain(_predictor: Predictor, model: str, _image: np.ndarray, photo: str, _face, class_index: int, box: tuple):
    return _predictor.explain(_image, _face, class_index)


def _choose_model() -> tuple[Predictor, str] | None:
    """The chosen model's predictor and an id of its weights ("bundled", or the checkpoint's digest)."""
    options = ["bundled"]
    trained = st.session_state.get(MODEL_FOR_PREDICTION) or st.session_state.get("ft_last_checkpoint")
    if trained:
        options.append("session")
    options.append("upload")
    handed = st.session_state.get(MODEL_FOR_PREDICTION)
    default = "session" if handed else "bundled"
    if handed and st.session_state.get("pred_model_handed") != digest(handed):  # "Use for prediction" selects it once
        st.session_state["pred_model_handed"] = digest(handed)
        st.session_state[choice_key("pred_model", default)] = "session"
    model = choice(st.radio, tr("pred_model"), options, "pred_model", default, horizontal=True,
                   format_func=lambda o: tr(f"pred_model_{o}"))
    try:
        if model == "bundled":
            return bundled_predictor(), "bundled"
        if model == "session":
            return _predictor(digest(trained), trained), digest(trained)
        uploads = kept_uploads(tr("ft_upload_checkpoint"), "pred_ckpt", type=["pt"])
        if not uploads:
            st.info(tr("pred_waiting_for_checkpoint"))
            return None
        data = uploads[0][1]
        return _predictor(digest(data), data), digest(data)
    except UserError as error:
        show_error(error)
        if model == "bundled" and not BUNDLED_CHECKPOINT.exists():
            st.info(tr("pred_no_bundled"))
        return None


def _inputs() -> list[tuple[str, str, np.ndarray]]:
    """(name, digest, RGB) of the sample, several uploads or the camera; bad files are reported and skipped.
    Photos are shrunk as they are decoded, and a run holds at most the server's photo budget."""
    source = choice(st.segmented_control, tr("image_source"), ["sample", "upload", "camera"], "pred_source",
                    format_func=lambda s: tr(f"source_{s}")) or "sample"
    if source == "sample":
        name = gallery("pred")
        return [(tr(f"gallery_{name}"), f"gallery:{name}", cached_example_photo(name))]
    if source == "camera":
        shot = st.camera_input(tr("take_photo"), key="pred_camera")
        files = [(shot.name, shot.getvalue())] if shot else []
    else:
        files = kept_uploads(tr("pred_upload"), "pred_upload", multiple=True)
    limits = settings()
    if len(files) > limits.max_photos:
        st.warning(tr("pred_too_many", limit=limits.max_photos))
        files = files[:limits.max_photos]
    images, pixels = [], 0
    for name, data in files:
        try:
            rgb = decode_image(data, max_side=limits.max_photo_side)
        except UserError as error:
            st.error(f"{name}: {error.message(lang())}", icon="⚠️")
            continue
        pixels += rgb.shape[0] * rgb.shape[1]
        if pixels > limits.max_megapixels_per_run * 1e6:
            st.error(tr("err_photos_pixels", megapixels=pixels / 1e6, limit=limits.max_megapixels_per_run), icon="⚠️")
            break
        images.append((name, digest(data), rgb))
    if not files:
        st.info(tr("waiting_for_photo"))
    return images


def _label(face: FaceScores) -> str:
    top = face.top_class
    return f"{display_name(top, lang())} {face.scores[top]:.0%}"


def _text_px(text: str) -> float:
    return sum(LABEL_WIDE_CHAR_PX if ord(char) >= 0x2E80 else LABEL_CHAR_PX for char in text)


def _photo_figure(rgb: np.ndarray, faces: list[FaceScores]) -> go.Figure:
    figure_height = min(700, max(320, rgb.shape[0]))
    figure = photo_figure(rgb, max_side=DISPLAY_SIDE, height=figure_height)
    texts = [f"#{number} {_label(face)}" for number, face in enumerate(faces, start=1)]
    image_px = 1 / min(MAIN_COLUMN_PX / rgb.shape[1], figure_height / rgb.shape[0])
    sizes = [((_text_px(text) + 8) * image_px, LABEL_HEIGHT_PX * image_px) for text in texts]
    for face, text, above in zip(faces, texts, labels_above([face.box for face in faces], sizes)):
        left, top, width, height = face.box
        figure.add_shape(type="rect", x0=left - 0.5, y0=top - 0.5, x1=left + width - 0.5, y1=top + height - 0.5,
                         line=dict(color=colour(face.top_class), width=3))
        figure.add_annotation(x=left - 0.5, y=top - 0.5 if above else top + height - 0.5, text=text,
                              showarrow=False, xanchor="left", yanchor="bottom" if above else "top",
                              font=dict(color="white", size=13), bgcolor=colour(face.top_class))
    return figure


def _allowed(run: str) -> bool:
    """Whether this session may run a new prediction now; a rerun of the last one is free."""
    if st.session_state.get("pred_last_run") == run:
        return True
    limiter = _prediction_limiter(settings().predictions_per_minute)
    if not limiter.allow(session_id()):
        show_error(RateLimitError("err_rate_limited_predict", seconds=limiter.retry_after(session_id())))
        return False
    st.session_state["pred_last_run"] = run
    return True


def show_predictions(predictor: Predictor, model: str, images: list[tuple[str, str, np.ndarray]], tta: bool,
                     search: str) -> None:
    photos = "/".join(photo_digest for _, photo_digest, _ in images)
    if not _allowed(f"{model}|{photos}|{tta}|{search}"):
        return
    with st.spinner(tr("pred_running")):
        predictions = _predict(predictor, model, [rgb for _, _, rgb in images], photos, tta, search)
    results = list(zip([name for name, _, _ in images], predictions))

    rows = faces_table(results)
    if len(images) > 1 or len(rows) > 1:
        st.subheader(tr("pred_all_faces", count=len(rows), photos=tr("pred_photos", count=len(images))))
        if rows:
            thumbnails = [data_uri(limit_size(crop_box(rgb, face.box), FACE_THUMBNAIL_SIDE)) if min(face.box[2:]) else None
                          for (_, _, rgb), faces in zip(images, predictions) for face in faces]
            shown = [{"thumbnail": thumbnail} | row | {"top_expression": display_name(row["top_expression"], lang())}
                     for thumbnail, row in zip(thumbnails, rows)]
            labels = {name: st.column_config.NumberColumn(display_name(name, lang()), format="percent")
                      if name in predictor.classes else tr(f"pred_col_{name}") for name in rows[0]}
            labels["thumbnail"] = st.column_config.ImageColumn(tr("pred_col_thumbnail"))
            st.dataframe(shown, hide_index=True, key="pred_table", column_config=labels,
                         row_height=FACE_THUMBNAIL_SIDE * 3 // 4)
            st.download_button(tr("pred_download_csv"), table_csv(rows), "faces.csv", "text/csv", key="pred_csv")

    explained_photo = next((index for index, faces in enumerate(predictions) if faces), None)
    for index, ((name, photo_digest, rgb), faces) in enumerate(zip(images, predictions)):
        st.subheader(name)
        if not faces:
            st.warning(tr("pred_no_face"))
            st.image(limit_size(rgb, 800))
            continue
        st.plotly_chart(_photo_figure(rgb, faces), key=f"pred_photo_{index}")
        columns = st.columns(min(3, len(faces)))
        for number, face in enumerate(faces, start=1):
            columns[(number - 1) % len(columns)].plotly_chart(scores_figure(face.scores, tr("pred_face_n", n=number), 260),
                                                              key=f"pred_bar_{index}_{number}")
        api = [face.to_api() for face in faces]
        with st.expander(tr("pred_json")):
            st.json(api)
        st.download_button(tr("pred_download_json"), json.dumps(api, indent=2), f"{name}.json", "application/json",
                           key=f"pred_json_{index}")
        if st.toggle(tr("pred_why"), value=index == explained_photo, key=f"pred_why_{index}",
                     persist_state="session"):
            st.markdown(tr("pred_why_body"))
            if len(faces) > MAX_EXPLAINED_FACES:
                st.caption(tr("pred_why_largest", shown=MAX_EXPLAINED_FACES, faces=len(faces)))
            for number, face in enumerate(faces[:MAX_EXPLAINED_FACES], start=1):
                explanation = _explain(predictor, model, rgb, photo_digest, face.face,
                                       predictor.classes.index(face.top_class), face.box)
                c1, c2, c3 = st.columns(3)
                c1.image(explanation.crop, caption=tr("pred_face_n", n=number) + f" · {_label(face)}")
                c2.image(overlay(explanation.crop, explanation.grad_cam), caption=tr("pred_gradcam"))
                c3.image(overlay(explanation.crop, explanation.attention), caption=tr("pred_attention"))


def predict_tab() -> None:
    """The predictions, in a function so that no decoded photo outlives the run in a module global."""
    chosen = _choose_model()
    tta = st.toggle(tr("pred_tta"), key="pred_tta", help=tr("pred_tta_help"), persist_state="session")
    thorough = st.toggle(tr("pred_thorough"), key="pred_thorough", help=tr("pred_thorough_help"),
                         persist_state="session")
    images = _inputs()
    if chosen is not None and images:
        show_predictions(*chosen, images, tta, "thorough" if thorough else "auto")


@st.cache_resource(show_spinner=False, max_entries=1)
def _test_scores(path: str) -> TestScores:
    """The bundled model's scores on the FER+ test split, computed once per process."""
    return score_test_split(bundled_predictor().checkpoint, path)


def _scored_test_split() -> TestScores | None:
    """The test split scored by the bundled model, or None (with a message) where the data folder lacks it."""
    folder = data_dir()
    try:
        path = data_file(str(folder), FER2013_FILE) if folder is not None else None
        if path is not None:
            with st.spinner(tr("card_scoring")):
                return _test_scores(str(path))
    except UserError as error:
        show_error(error)
    st.info(tr("card_needs_data", file=FER2013_FILE))
    return None


def card_tab() -> None:
    """The bundled model's card: what it is, its test figures, and its FER+ test confusion matrix, whose
    cells open on their faces when the data set is in the data folder."""
    try:
        predictor = bundled_predictor()
    except UserError as error:
        show_error(error)
        st.info(tr("pred_no_bundled"))
        return
    meta, classes = predictor.checkpoint.meta, predictor.classes
    st.markdown(tr("card_intro", arch=meta["arch"], size=predictor.input_size, count=len(classes),
                   classes=tr("card_list_separator").join(display_name(name, lang()) for name in classes)))
    stated = bundled_card_confusion(classes)
    accuracy = card_test_accuracy(BUNDLED_CARD.read_text(encoding="utf-8")) if BUNDLED_CARD.exists() else {}
    columns = st.columns(3)
    for column, (label, value) in zip(columns, (
            (tr("card_test_ferplus"), accuracy.get("FER+ majority")),
            (tr("card_test_fer2013"), accuracy.get("FER2013 PrivateTest")),
            (tr("card_val_ferplus"), meta.get("metrics", {}).get("val", {}).get("accuracy")))):
        column.metric(label, f"{value:.2%}" if value is not None else "–")
    scores = _scored_test_split()
    confusion = scores.confusion if scores is not None else stated
    if confusion is None:
        return
    title = tr("card_confusion_title", count=int(confusion.sum()))
    if scores is not None:
        confusion_explorer(confusion, classes, scores.test.x, scores.test.y, scores.probabilities, key="card_cm",
                           title=title)
        matches = stated is not None and np.array_equal(confusion, stated)
        st.caption(tr("card_scored", count=len(scores.test), seconds=scores.seconds)
                   + (" " + tr("card_matches") if matches else ""))
    else:
        st.plotly_chart(confusion_figure(confusion, classes, title), key="card_cm_stated")
    per_class = metrics_from_confusion(confusion, classes).per_class
    st.dataframe({tr("card_col_class"): [display_name(name, lang()) for name in classes],
                  tr("card_col_precision"): [per_class[name].precision for name in classes],
                  tr("card_col_recall"): [per_class[name].recall for name in classes],
                  tr("card_col_f1"): [per_class[name].f1 for name in classes],
                  tr("card_col_support"): [per_class[name].support for name in classes]},
                 hide_index=True, key="card_per_class",
                 column_config={tr(f"card_col_{name}"): st.column_config.NumberColumn(format="%.3f")
                                for name in ("precision", "recall", "f1")})
    st.caption(tr("card_source"))


for tab, show in zip(remembered_tabs("pred", TABS), (predict_tab, card_tab)):
    if tab.open:
        with tab:
            show()
