"""Widgets and helpers every page shares (UI only; logic lives in core)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.errors import UserError
from core.i18n import translate
from core.images import decode_image, limit_size, sample_photo


def lang() -> str:
    return st.session_state.get("lang", "en")


def tr(key: str, **params: object) -> str:
    return translate(key, lang(), **params)


def show_error(error: UserError) -> None:
    st.error(error.message(lang()), icon="⚠️")


@st.cache_data(show_spinner=False, max_entries=8)
def _decode(data: bytes) -> np.ndarray:
    return decode_image(data)


@st.cache_resource(show_spinner=False)
def _sample() -> np.ndarray:
    return sample_photo()


def image_input(key: str, max_side: int | None = None) -> np.ndarray | None:
    """Sample, upload or camera; returns the RGB image, or None with a message shown."""
    sources = ["sample", "upload", "camera"]
    source = st.segmented_control(tr("image_source"), sources, format_func=lambda s: tr(f"source_{s}"),
                                  default="sample", key=f"{key}_source") or "sample"
    if source == "sample":
        st.caption(tr("sample_credit"))
        image = _sample()
    else:
        widget = (st.file_uploader(tr("upload_photo"), key=f"{key}_upload") if source == "upload"
                  else st.camera_input(tr("take_photo"), key=f"{key}_camera"))
        if widget is None:
            st.info(tr("waiting_for_photo"))
            return None
        try:
            image = _decode(widget.getvalue())
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


def not_built_yet(title_key: str, issue_key: str) -> None:
    st.title(tr(title_key))
    st.info(tr("page_not_built", what=tr(issue_key)))
