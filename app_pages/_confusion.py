"""The confusion matrix, opened up: pick a cell (click it, or use the pickers under it) to see its faces."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app_pages._shared import choice, choice_key, lang, tr
from core.classes import display_name
from core.images import upscaled
from core.metrics import cell_examples

EXAMPLES_SHOWN = 24


def confusion_figure(confusion: np.ndarray, classes: tuple[str, ...] | list[str], title: str) -> go.Figure:
    names = [display_name(c, lang()) for c in classes]
    figure = go.Figure(go.Heatmap(z=confusion, x=names, y=names, colorscale="Blues", text=confusion,
                                  texttemplate="%{text}", hovertemplate=tr("ft_confusion_hover") + "<extra></extra>"))
    figure.update_layout(title=title, height=420, margin=dict(l=10, r=10, t=40, b=10),
                         xaxis_title=tr("ft_predicted"), yaxis_title=tr("ft_true"), yaxis_autorange="reversed")
    return figure


def _clicked_cell(event: object, classes: tuple[str, ...] | list[str]) -> tuple[int, int] | None:
    """(true, predicted) of the heatmap cell a click selected, if any."""
    points = getattr(getattr(event, "selection", None), "points", None) or []
    names = [display_name(c, lang()) for c in classes]
    for point in points:
        if point.get("x") in names and point.get("y") in names:
            return names.index(point["y"]), names.index(point["x"])
    return None


def _fullest_cell(confusion: np.ndarray) -> tuple[int, int]:
    """(true, predicted) of the commonest mistake, or of the fullest diagonal cell when there is none."""
    mistakes = np.where(np.eye(len(confusion), dtype=bool), -1, confusion)
    if mistakes.max() > 0:
        return tuple(int(v) for v in np.unravel_index(np.argmax(mistakes), confusion.shape))
    fullest = int(np.argmax(np.diag(confusion)))
    return fullest, fullest


def confusion_explorer(confusion: np.ndarray, classes: tuple[str, ...] | list[str], images: np.ndarray,
                       y_true: np.ndarray, probabilities: np.ndarray, key: str, title: str,
                       where=st) -> None:
    """The confusion matrix of `probabilities` against `y_true` for `images` (uint8, N×C×H×W), and the faces
    of the chosen cell with their scores, the most confident mistakes first. `where` is a column or `st`."""
    event = where.plotly_chart(confusion_figure(confusion, classes, title), key=f"{key}_chart", on_select="rerun",
                               selection_mode="points")
    indices = list(range(len(classes)))
    first = _fullest_cell(np.asarray(confusion))
    # The pickers' labels are class names in the visitor's language: `choice` keeps them across a switch.
    pickers = choice_key(f"{key}_true", first[0]), choice_key(f"{key}_pred", first[1])
    picked = f"{key}_picked"  # set once the visitor picks a cell; until then the pickers follow the fullest one
    for picker, default in zip(pickers, first):
        if not st.session_state.get(picked) or st.session_state[picker] not in indices:
            st.session_state[picker] = default
    clicked = _clicked_cell(event, classes)
    if clicked is not None and st.session_state.get(f"{key}_clicked") != clicked:
        st.session_state[f"{key}_clicked"] = clicked  # a new click moves the pickers; the pickers can then move on
        st.session_state[pickers[0]], st.session_state[pickers[1]] = clicked
        st.session_state[picked] = True

    def pick() -> None:
        st.session_state[picked] = True

    left, right = where.columns(2)
    true_class = choice(left.selectbox, tr("cm_true_class"), indices, f"{key}_true", default=first[0],
                        format_func=lambda i: display_name(classes[i], lang()), on_change=pick)
    predicted_class = choice(right.selectbox, tr("cm_predicted_class"), indices, f"{key}_pred", default=first[1],
                             format_func=lambda i: display_name(classes[i], lang()), on_change=pick)
    chosen = cell_examples(y_true, probabilities, true_class, predicted_class)
    names = dict(true=display_name(classes[true_class], lang()), predicted=display_name(classes[predicted_class], lang()))
    if not len(chosen):
        where.caption(tr("ft_cm_cell_empty", **names))
        return
    where.caption(tr("cm_cell_count", count=len(chosen), shown=min(len(chosen), EXAMPLES_SHOWN), **names))
    shown = chosen[:EXAMPLES_SHOWN]
    where.image([upscaled(images[i]) for i in shown], width=96,
                caption=[tr("cm_example_caption", predicted=probabilities[i, predicted_class],
                            true=probabilities[i, true_class]) for i in shown])
