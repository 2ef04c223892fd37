"""Expression prediction: every face's box and class scores, drawn, charted and as Emotion API JSON."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.attention import overlay
from core.checkpoint import BUNDLED_CHECKPOINT
from core.classes import colour, display_name
from core.errors import UserError
from core.images import decode_image, limit_size
from core.predict import FaceScores, Predictor, faces_table, labels_above, table_csv
from pages._shared import (MODEL_FOR_PREDICTION, cached_sample_photo, choice_key, lang, photo_figure, show_error,
                           tr)

DISPLAY_SIDE = 1600
MAIN_COLUMN_PX = 730  # the usual width of the page's main column, to size box labels in image pixels
LABEL_CHAR_PX, LABEL_WIDE_CHAR_PX, LABEL_HEIGHT_PX = 7.5, 13, 20  # a 13 px label font; CJK is wider
MAX_PHOTOS = 20
MAX_EXPLAINED_FACES = 6  # Grad-CAM costs a backward pass per face

st.title(tr("pred_title"))
st.markdown(tr("pred_intro"))
st.caption(tr("privacy_line"))


@st.cache_resource(show_spinner=False, max_entries=4)
def _predictor(source: str, data: bytes | None = None) -> Predictor:
    return Predictor.from_checkpoint(data if data is not None else (None if source == "bundled" else source))


@st.cache_data(show_spinner=False, max_entries=16)
def _predict(_predictor: Predictor, images: list[np.ndarray], tta: bool, search: str,
             model_id: int = 0) -> list[list[FaceScores]]:
    return _predictor.predict_many(images, tta, search)


@st.cache_data(show_spinner=False, max_entries=64)
def _explain(_predictor: Predictor, image: np.ndarray, _face, class_index: int, box: tuple, model_id: int = 0):
    return _predictor.explain(image, _face, class_index)


def _choose_model() -> Predictor | None:
    options = ["bundled"]
    trained = st.session_state.get(MODEL_FOR_PREDICTION) or st.session_state.get("ft_last_checkpoint")
    if trained:
        options.append("session")
    options.append("upload")
    handed = st.session_state.get(MODEL_FOR_PREDICTION)
    key = choice_key("pred_model", "session" if handed else "bundled")
    if handed and st.session_state.get("pred_model_handed") != handed:  # "Use for prediction" selects it once
        st.session_state["pred_model_handed"] = handed
        st.session_state[key] = "session"
    choice = st.radio(tr("pred_model"), options, horizontal=True, key=key, persist_state="page",
                      format_func=lambda o: tr(f"pred_model_{o}"))
    try:
        if choice == "bundled":
            return _predictor("bundled")
        if choice == "session":
            return _predictor(trained)
        upload = st.file_uploader(tr("ft_upload_checkpoint"), type=["pt"], key="pred_ckpt")
        if upload is None:
            st.info(tr("pred_waiting_for_checkpoint"))
            return None
        return _predictor("upload", upload.getvalue())
    except UserError as error:
        show_error(error)
        if choice == "bundled" and not BUNDLED_CHECKPOINT.exists():
            st.info(tr("pred_no_bundled"))
        return None


def _inputs() -> list[tuple[str, np.ndarray]]:
    """(name, RGB) pairs from the sample, several uploads or the camera; bad files are reported and skipped."""
    source = st.segmented_control(tr("image_source"), ["sample", "upload", "camera"], default="sample",
                                  format_func=lambda s: tr(f"source_{s}"), key="pred_source") or "sample"
    if source == "sample":
        st.caption(tr("sample_credit"))
        return [("astronaut.png", cached_sample_photo())]
    if source == "camera":
        shot = st.camera_input(tr("take_photo"), key="pred_camera")
        files = [shot] if shot else []
    else:
        files = st.file_uploader(tr("pred_upload"), accept_multiple_files=True, key="pred_upload") or []
    if len(files) > MAX_PHOTOS:
        st.warning(tr("pred_too_many", limit=MAX_PHOTOS))
        files = files[:MAX_PHOTOS]
    images = []
    for file in files:
        try:
            images.append((file.name, decode_image(file.getvalue())))
        except UserError as error:
            st.error(f"{file.name}: {error.message(lang())}", icon="⚠️")
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


predictor = _choose_model()
tta = st.toggle(tr("pred_tta"), key="pred_tta", help=tr("pred_tta_help"))
search = "thorough" if st.toggle(tr("pred_thorough"), key="pred_thorough", help=tr("pred_thorough_help")) else "auto"
images = _inputs()
if predictor is None or not images:
    st.stop()

with st.spinner(tr("pred_running")):
    predictions = _predict(predictor, [rgb for _, rgb in images], tta, search, id(predictor))
results = list(zip([name for name, _ in images], predictions))

if len(images) > 1:
    rows = faces_table(results)
    st.subheader(tr("pred_all_faces", faces=len(rows), photos=len(images)))
    if rows:
        shown = [row | {"top_expression": display_name(row["top_expression"], lang())} for row in rows]
        labels = {name: st.column_config.NumberColumn(display_name(name, lang()), format="percent")
                  if name in predictor.classes else tr(f"pred_col_{name}") for name in rows[0]}
        st.dataframe(shown, hide_index=True, key="pred_table", column_config=labels)
        st.download_button(tr("pred_download_csv"), table_csv(rows), "faces.csv", "text/csv", key="pred_csv")

explained_photo = next((index for index, faces in enumerate(predictions) if faces), None)
for index, ((name, rgb), faces) in enumerate(zip(images, predictions)):
    st.subheader(name)
    if not faces:
        st.warning(tr("pred_no_face"))
        st.image(limit_size(rgb, 800))
        continue
    st.plotly_chart(_photo_figure(rgb, faces), key=f"pred_photo_{index}")
    columns = st.columns(min(3, len(faces)))
    for number, face in enumerate(faces, start=1):
        columns[(number - 1) % len(columns)].plotly_chart(_scores_figure(face, number), key=f"pred_bar_{index}_{number}")
    api = [face.to_api() for face in faces]
    with st.expander(tr("pred_json")):
        st.json(api)
    st.download_button(tr("pred_download_json"), json.dumps(api, indent=2), f"{name}.json", "application/json",
                       key=f"pred_json_{index}")
    if st.toggle(tr("pred_why"), value=index == explained_photo, key=f"pred_why_{index}"):
        st.markdown(tr("pred_why_body"))
        if len(faces) > MAX_EXPLAINED_FACES:
            st.caption(tr("pred_why_largest", shown=MAX_EXPLAINED_FACES, faces=len(faces)))
        for number, face in enumerate(faces[:MAX_EXPLAINED_FACES], start=1):
            explanation = _explain(predictor, rgb, face.face, predictor.classes.index(face.top_class), face.box,
                                   id(predictor))
            c1, c2, c3 = st.columns(3)
            c1.image(explanation.crop, caption=tr("pred_face_n", n=number) + f" · {_label(face)}")
            c2.image(overlay(explanation.crop, explanation.grad_cam), caption=tr("pred_gradcam"))
            c3.image(overlay(explanation.crop, explanation.attention), caption=tr("pred_attention"))
