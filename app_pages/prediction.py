"""Expression prediction: every face's box and class scores, drawn, charted and as Emotion API JSON."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app_pages._shared import (
    MODEL_FOR_PREDICTION,
    cached_sample_photo,
    choice,
    choice_key,
    kept_uploads,
    lang,
    photo_figure,
    session_id,
    show_error,
    tr,
)
from core.attention import overlay
from core.checkpoint import BUNDLED_CHECKPOINT
from core.classes import colour, display_name
from core.errors import RateLimitError, UserError
from core.images import decode_image, digest, limit_size
from core.limits import RateLimiter
from core.predict import FaceScores, Predictor, bundled_predictor, faces_table, labels_above, table_csv
from core.settings import settings

DISPLAY_SIDE = 1600
MAIN_COLUMN_PX = 730  # the usual width of the page's main column, to size box labels in image pixels
LABEL_CHAR_PX, LABEL_WIDE_CHAR_PX, LABEL_HEIGHT_PX = 7.5, 13, 20  # a 13 px label font; CJK is wider
MAX_EXPLAINED_FACES = 6  # Grad-CAM costs a backward pass per face

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
        st.caption(tr("sample_credit"))
        return [("astronaut.png", "sample", cached_sample_photo())]
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


def _scores_figure(face: FaceScores, number: int) -> go.Figure:
    names = list(face.scores)
    figure = go.Figure(go.Bar(x=[display_name(n, lang()) for n in names], y=[face.scores[n] for n in names],
                              marker_color=[colour(n) for n in names], text=[f"{face.scores[n]:.0%}" for n in names],
                              textposition="outside"))
    figure.update_layout(title=tr("pred_face_n", n=number), height=260, margin=dict(l=10, r=10, t=40, b=10),
                         yaxis=dict(range=[0, 1.1], tickformat=".0%"))
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

    if len(images) > 1:
        rows = faces_table(results)
        st.subheader(tr("pred_all_faces", count=len(rows), photos=tr("pred_photos", count=len(images))))
        if rows:
            shown = [row | {"top_expression": display_name(row["top_expression"], lang())} for row in rows]
            labels = {name: st.column_config.NumberColumn(display_name(name, lang()), format="percent")
                      if name in predictor.classes else tr(f"pred_col_{name}") for name in rows[0]}
            st.dataframe(shown, hide_index=True, key="pred_table", column_config=labels)
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
            columns[(number - 1) % len(columns)].plotly_chart(_scores_figure(face, number),
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


def main() -> None:
    """The whole page, in a function so that no decoded photo outlives the run in a module global."""
    chosen = _choose_model()
    tta = st.toggle(tr("pred_tta"), key="pred_tta", help=tr("pred_tta_help"), persist_state="session")
    thorough = st.toggle(tr("pred_thorough"), key="pred_thorough", help=tr("pred_thorough_help"),
                         persist_state="session")
    images = _inputs()
    if chosen is not None and images:
        show_predictions(*chosen, images, tta, "thorough" if thorough else "auto")


main()
