"""Widgets and helpers every page shares (UI only; logic lives in core)."""
from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.classes import colour, display_name
from core.errors import UserError
from core.gallery import EXAMPLES, GALLERY, example_photo, thumbnail
from core.i18n import LANGUAGES, translate
from core.images import decode_image, encode_jpeg, limit_size
from core.settings import settings

# Session key of the checkpoint (its bytes) the prediction page uses, set by "Use for prediction".
MODEL_FOR_PREDICTION = "prediction_checkpoint"
GALLERY_SPACE = 2  # the width left free beside the gallery's thumbnails, in thumbnail widths

T = TypeVar("T")


def lang() -> str:
    return st.session_state.get("lang", "en")


def tr(key: str, **params: object) -> str:
    return translate(key, lang(), **params)


def choice_key(key: str, default: object) -> str:
    """The widget key for a radio, selectbox, multiselect or segmented control whose option labels are
    translated: use `choice`, which calls this.

    Streamlit's browser side remembers a choice by its label, so after a language switch it would show
    nothing chosen. Each language gets its own widget key, which takes over the choice made in the other
    language (or `default`).
    """
    widget_key = f"{key}_{lang()}"
    for code in LANGUAGES:
        if f"{key}_{code}" != widget_key and f"{key}_{code}" in st.session_state:
            st.session_state[widget_key] = st.session_state.pop(f"{key}_{code}")
    st.session_state.setdefault(widget_key, default)
    return widget_key


def choice(widget: Callable[..., T], label: str, options: Sequence, key: str, default: object = None,
           **kwargs: Any) -> T:
    """Every radio, selectbox, multiselect or segmented control whose labels are translated is made here
    (`widget` is `st.radio`, `column.selectbox`, ...): the choice survives a language switch, and with
    `persist_state="session"` it survives leaving the page and coming back. `default` is the first option
    unless given (a list for a multiselect: all of `options` unless given)."""
    if default is None:
        default = list(options) if widget.__name__ == "multiselect" else options[0] if len(options) else None
    return widget(label, options, key=choice_key(key, default), persist_state="session", **kwargs)


def remembered_tabs(key: str, names: Sequence[str]) -> Sequence[Any]:
    """Tabs labelled by the strings `{key}_tab_<name>` that remember the open one by name (under
    `{key}_tab`), since a label changes with the language, so the open tab survives a language switch and
    leaving the page. Opening one reruns the page; only the open tab's `.open` is true, so only its work
    need be done."""
    current = st.session_state.get(f"{key}_tab")
    current = current if current in names else names[0]

    def remember() -> None:
        label = st.session_state[f"{key}_tabs"]
        st.session_state[f"{key}_tab"] = next((name for name in names if tr(f"{key}_tab_{name}") == label), names[0])

    st.session_state[f"{key}_tabs"] = tr(f"{key}_tab_{current}")
    return st.tabs([tr(f"{key}_tab_{name}") for name in names], key=f"{key}_tabs", on_change=remember)


def session_id() -> str:
    """This browser session's id, as the server knows it."""
    return get_script_run_ctx().session_id


def session_alive(session: str) -> bool:
    """Whether a session is still connected (a visitor who closed the tab is not). Without a server
    runtime (AppTest) no session is known to have gone."""
    return not runtime.exists() or runtime.get_instance().is_active_session(session)


def show_error(error: UserError) -> None:
    st.error(error.message(lang()), icon="⚠️")


@st.cache_data(show_spinner=False, max_entries=8)
def _decode(data: bytes, max_side: int) -> np.ndarray:
    return decode_image(data, max_side=max_side)


@st.cache_resource(show_spinner=False)
def cached_example_photo(name: str) -> np.ndarray:
    """An example photo of the gallery, made once per process (read it, never change it)."""
    photo = example_photo(name)
    photo.flags.writeable = False
    return photo


@st.cache_resource(show_spinner=False)
def _example_thumbnail(name: str) -> np.ndarray:
    return thumbnail(cached_example_photo(name))


def data_uri(rgb: np.ndarray) -> str:
    """A JPEG data URI of an image, for a plotly image or a table's image column."""
    return "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(rgb)).decode("ascii")


def gallery(key: str) -> str:
    """The example photos as thumbnails to pick from, with the chosen one's credit line; returns the
    chosen photo's name. The choice is kept in the session under `{key}_gallery`."""
    state = f"{key}_gallery"
    if st.session_state.get(state) not in EXAMPLES:
        st.session_state[state] = GALLERY[0].name
    chosen = st.session_state[state]

    def pick(name: str) -> None:
        st.session_state[state] = name

    for column, photo in zip(st.columns([1] * len(GALLERY) + [GALLERY_SPACE]), GALLERY):  # small thumbnails
        column.image(_example_thumbnail(photo.name), width="stretch")
        column.button(tr(f"gallery_{photo.name}"), key=f"{key}_gallery_{photo.name}", on_click=pick,
                      args=(photo.name,), type="primary" if photo.name == chosen else "secondary", width="stretch")
    st.caption(tr(f"gallery_credit_{chosen}"))
    return chosen


def kept_uploads(label: str, key: str, where: Any = st, multiple: bool = False, **kwargs: Any) -> list[tuple[str, bytes]]:
    """(name, bytes) of the files uploaded with this uploader. Streamlit's uploader forgets its files when
    the visitor leaves the page, so they are also kept in the session (in memory, never on disk) and
    offered again, with a button to forget them."""
    kept_key = f"{key}_kept"

    def keep() -> None:
        value = st.session_state[key]
        files = value if isinstance(value, list) else [value] if value else []
        st.session_state[kept_key] = [(file.name, file.getvalue()) for file in files]

    def forget() -> None:
        st.session_state[kept_key] = []

    current = where.file_uploader(label, accept_multiple_files=multiple, key=key, on_change=keep, **kwargs)
    kept = st.session_state.get(kept_key, [])
    if kept and not current:
        where.caption(tr("kept_uploads", count=len(kept), names=", ".join(name for name, _ in kept)))
        where.button(tr("forget_uploads"), key=f"{key}_forget", on_click=forget)
    return kept


def image_input(key: str, max_side: int | None = None) -> np.ndarray | None:
    """An example photo of the gallery, an upload or the camera; returns the RGB image, or None with a
    message shown."""
    sources = ["sample", "upload", "camera"]
    source = choice(st.segmented_control, tr("image_source"), sources, f"{key}_source",
                    format_func=lambda s: tr(f"source_{s}")) or "sample"
    if source == "sample":
        image = cached_example_photo(gallery(key))
    else:
        if source == "upload":
            files = kept_uploads(tr("upload_photo"), f"{key}_upload")
        else:
            shot = st.camera_input(tr("take_photo"), key=f"{key}_camera")
            files = [(shot.name, shot.getvalue())] if shot else []
        if not files:
            st.info(tr("waiting_for_photo"))
            return None
        try:
            image = _decode(files[0][1], min(max_side or math.inf, settings().max_photo_side))
        except UserError as error:
            show_error(error)
            return None
    return limit_size(image, max_side) if max_side else image


def kernel_heatmap(kernel: np.ndarray, title: str, height: int = 220) -> go.Figure:
    """A small heatmap of a filter kernel with its values written in the cells."""
    rows, cols = kernel.shape
    text = [[f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) > 5e-5 else "0" for v in row] for row in kernel]
    figure = go.Figure(go.Heatmap(z=kernel[::-1], text=text[::-1], texttemplate="%{text}" if kernel.size <= 64 else None,
                                  colorscale="RdBu_r", zmid=0, showscale=False,
                                  hovertemplate="row %{customdata[0]}, col %{x}: %{z:.5f}<extra></extra>",
                                  customdata=[[[rows - 1 - r]] * cols for r in range(rows)]))
    figure.update_layout(title=dict(text=title, font=dict(size=13)), height=height, margin=dict(l=5, r=5, t=30, b=5),
                         xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"))
    return figure


def histogram(values_by_name: dict[str, np.ndarray], title: str, bins: int = 64) -> go.Figure:
    figure = go.Figure()
    for name, values in values_by_name.items():
        figure.add_trace(go.Histogram(x=np.asarray(values).ravel()[::7], name=name, nbinsx=bins, opacity=0.6))
    figure.update_layout(barmode="overlay", title=title, height=260, margin=dict(l=10, r=10, t=40, b=10))
    return figure


def photo_figure(picture: np.ndarray, origin: tuple[int, int] = (0, 0), max_side: int = 900,
                 height: int = 560) -> go.Figure:
    """A photo, or a part of one whose top-left pixel is `origin` (x, y), as a plotly figure whose axes are
    the photo's pixels, so traces added on top use image coordinates. It is shrunk to `max_side` to send."""
    (x0, y0), (rows, cols) = origin, picture.shape[:2]
    shown = limit_size(picture, max_side)
    dx, dy = cols / shown.shape[1], rows / shown.shape[0]
    source = data_uri(shown)
    # Pixel i of the photo is centred on coordinate i; x0/y0 are the centre of the first shown pixel.
    figure = go.Figure(go.Image(source=source, x0=x0 - 0.5 + dx / 2, y0=y0 - 0.5 + dy / 2, dx=dx, dy=dy,
                                hoverinfo="skip"))
    figure.update_layout(height=height, margin=dict(l=0, r=0, t=0, b=0), dragmode="pan",
                         xaxis=dict(visible=False, range=[x0 - 0.5, x0 + cols - 0.5]),
                         yaxis=dict(visible=False, range=[y0 + rows - 0.5, y0 - 0.5], scaleanchor="x"))
    return figure


def map_heatmap(values: np.ndarray, title: str, zmin: float | None = None, zmax: float | None = None,
                colorscale: str = "Viridis", height: int = 300) -> go.Figure:
    """A 2-D array (a feature map, an attention map) as an image-like heatmap, row 0 at the top."""
    figure = go.Figure(go.Heatmap(z=values, zmin=zmin, zmax=zmax, colorscale=colorscale, showscale=False,
                                  hovertemplate="x %{x}, y %{y}: %{z:.3f}<extra></extra>"))
    figure.update_layout(title=dict(text=title, font=dict(size=13)), height=height, margin=dict(l=5, r=5, t=30, b=5),
                         xaxis=dict(visible=False, constrain="domain"),
                         yaxis=dict(visible=False, autorange="reversed", scaleanchor="x", constrain="domain"))
    return figure


def scores_figure(scores: dict[str, float], title: str, height: int, horizontal: bool = False) -> go.Figure:
    """One face's expression scores as bars in each class's colour, labelled in percent."""
    names, values = [display_name(n, lang()) for n in scores], list(scores.values())
    bars = go.Bar(x=values if horizontal else names, y=names if horizontal else values,
                  orientation="h" if horizontal else "v", marker_color=[colour(n) for n in scores],
                  text=[f"{v:.0%}" for v in values], textposition="outside")
    axis = dict(range=[0, 1.15 if horizontal else 1.1], tickformat=".0%")
    figure = go.Figure(bars)
    figure.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10),
                         **(dict(xaxis=axis, yaxis=dict(autorange="reversed")) if horizontal else dict(yaxis=axis)))
    return figure
