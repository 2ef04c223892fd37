"""Attention maps: faces and their 68 landmarks, EAC-Net's action-unit centres and maps, and E-Net enhancing."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app_pages._shared import choice, choice_key, image_input, lang, map_heatmap, photo_figure, tr
from core import attention as att
from core.checkpoint import BUNDLED_CHECKPOINT, load_checkpoint
from core.faces import Face, detect_faces, load_models
from core.images import encode_png
from models.eac import STAND_IN_ARCH, EACFeatures, flat_features, random_vgg16_features
from models.registry import ARCHITECTURES

PHOTO_SIDE = 2000  # larger photos are shrunk first; detection shrinks further on its own
FACE_CONTEXT = 0.35  # the face view shows the box plus this much of its side around it
PRESET_NAMES = (*att.PRESETS, "custom")
ENET_GROUPS = (3, 4)  # EAC-Net enhances conv3 and conv4
BOX_COLOUR, CHOSEN_COLOUR = "#ffffff", "#ff4b4b"


@st.cache_resource(show_spinner=False)
def _face_models():
    return load_models()


@st.cache_resource(show_spinner=False)
def _network() -> tuple[EACFeatures, str, bool]:
    """The bundled expression model's conv layers when it is installed, else a random VGG16:
    (network, architecture, trained)."""
    if BUNDLED_CHECKPOINT.exists():
        checkpoint = load_checkpoint(BUNDLED_CHECKPOINT)
        return EACFeatures(flat_features(checkpoint.build())), checkpoint.meta["arch"], True
    return EACFeatures(random_vgg16_features()), STAND_IN_ARCH, False


@st.cache_data(show_spinner=False, max_entries=8)
def _faces(image: np.ndarray) -> list[Face]:
    return detect_faces(image)


@st.cache_data(show_spinner=False, max_entries=8)
def _enhanced(image: np.ndarray, face: Face, group: int, aus: tuple[str, ...], preset: att.Falloff
              ) -> att.EnhancedView:
    network, arch, _ = _network()
    return att.enhance_face(image, face, network, group, aus, preset, arch)


def _choose(key: str, value: list[str]) -> None:
    st.session_state[key] = value


def _box_shape(box: tuple[float, ...], colour: str, width: float) -> dict:
    left, top, box_width, box_height = box
    return dict(type="rect", x0=left - 0.5, y0=top - 0.5, x1=left + box_width - 0.5, y1=top + box_height - 0.5,
                line=dict(color=colour, width=width))


def rules_table() -> None:
    st.table([{tr("att_col_row"): rule.row, tr("att_col_rule"): tr(rule.rule),
               tr("att_col_landmarks"): " · ".join(map(str, rule.landmarks)),
               tr("att_col_aus"): ", ".join(att.au_label(au, lang()) for au in rule.aus)} for rule in att.RULES])


def pick_face(image: np.ndarray, faces: list[Face]) -> Face:
    """A picker and the whole photo with every box numbered, largest first; one face needs neither."""
    if len(faces) == 1:
        return faces[0]
    st.caption(tr("att_found", count=len(faces)))
    chosen = choice(st.selectbox, tr("att_face_pick"), range(len(faces)), "att_face",
                    format_func=lambda i: tr("att_face_n", n=i + 1, width=round(faces[i].box[2]),
                                             height=round(faces[i].box[3]), score=faces[i].score,
                                             detector=tr(f"att_detector_{faces[i].detector}")))
    figure = photo_figure(image, height=420)
    for index, face in enumerate(faces):
        colour = CHOSEN_COLOUR if index == chosen else BOX_COLOUR
        figure.add_shape(_box_shape(face.box, colour, 3 if index == chosen else 1.5))
        figure.add_annotation(x=face.box[0], y=face.box[1], text=str(index + 1), showarrow=False, xanchor="left",
                              yanchor="bottom", font=dict(color=colour, size=14), bgcolor="rgba(0,0,0,0.5)")
    st.plotly_chart(figure, key="att_overview", config={"displaylogo": False})
    return faces[chosen]


def au_controls() -> tuple[str, ...]:
    chooser, smile, everything = st.columns([6, 1, 1], vertical_alignment="bottom")
    aus = choice(chooser.multiselect, tr("att_aus"), att.ACTION_UNITS, "att_aus", list(att.ACTION_UNITS),
                 format_func=lambda au: att.au_label(au, lang()))
    key = choice_key("att_aus", list(att.ACTION_UNITS))  # the buttons below set the choice
    smile.button(tr("att_only_smile"), help=tr("att_only_smile_help"), key="att_smile", width="stretch",
                 on_click=_choose, args=(key, ["AU12"]))
    everything.button(tr("att_all_aus"), key="att_all", width="stretch",
                      on_click=_choose, args=(key, list(att.ACTION_UNITS)))
    return tuple(aus)


def falloff_controls() -> att.Falloff:
    """The preset, or custom slope and window, with the formula they give."""
    left, right = st.columns([2, 3])
    name = choice(left.radio, tr("att_preset"), PRESET_NAMES, "att_preset", "paper",
                  format_func=lambda n: tr(f"att_preset_{n}"))
    if name == "custom":
        slope = left.slider(tr("att_slope"), 0.01, 0.3, 0.095, 0.005, format="%.3f", key="att_slope",
                             persist_state="session")
        window = left.slider(tr("att_window"), 0, 30, 0, 1, key="att_window", persist_state="session")
        preset = att.Falloff(slope, float(window) or None)
    else:
        preset = att.PRESETS[name]
    slope_tex = f"{preset.slope:g}"
    if preset.window is None:
        right.latex(rf"w_c = \max\bigl(0,\ 1 - {slope_tex}\,d\bigr),\qquad d = |x - x_c| + |y - y_c|")
    else:
        window_tex = f"{preset.window:g}"
        right.latex(rf"w_c = \begin{{cases}} \max\bigl(0,\ 1 - {slope_tex}\,d\bigr) & |x - x_c| \le {window_tex},\ "
                    rf"|y - y_c| \le {window_tex} \\ 0 & \text{{{tr('att_otherwise')}}} \end{{cases}}")
        right.latex(r"d = |x - x_c| + |y - y_c|")
    right.latex(r"A(x, y) = \max_c\, w_c(x, y)")
    right.caption(tr("att_formula_caption"))
    return preset


def _face_region(face: Face, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    left, top, width, height = face.box
    pad = FACE_CONTEXT * max(width, height)
    return (max(0, int(left - pad)), max(0, int(top - pad)),
            min(shape[1], int(left + width + pad) + 1), min(shape[0], int(top + height + pad) + 1))


def _landmark_trace(face: Face, numbers: bool) -> go.Scatter:
    x, y = face.landmarks.T
    return go.Scatter(x=x, y=y, mode="markers+text" if numbers else "markers", name=tr("att_layer_landmarks"),
                      marker=dict(size=6, color="#39ff14", line=dict(width=1, color="#000000")),
                      text=[str(i) for i in range(len(x))], textposition="top center",
                      textfont=dict(size=10, color="#ffffff"), customdata=list(range(len(x))),
                      hovertemplate=f"{tr('att_landmark')} %{{customdata}}<br>"
                                    "x %{x:.0f}, y %{y:.0f}<extra></extra>")


def _centre_traces(centres: list[att.AUCentre]) -> list[go.Scatter]:
    """One trace per rule row, marked with the row number: the legend names its AUs, and a click on a
    legend entry hides that row."""
    traces = []
    for rule in att.RULES:
        points = [c for c in centres if c.rule == rule]
        if not points:
            continue
        names = points[0].name(lang())
        traces.append(go.Scatter(
            x=[c.point[0] for c in points], y=[c.point[1] for c in points], mode="markers+text",
            name=f"{rule.row} · {names}", text=[str(rule.row)] * len(points), textposition="middle center",
            textfont=dict(size=10, color="#000000"), marker=dict(size=15, color="rgba(255,255,255,0.85)",
                                                                line=dict(width=1, color="#000000")),
            customdata=[c.landmark for c in points],
            hovertemplate=(f"{tr('att_col_row')} {rule.row}: {tr(rule.rule)}<br>{names}<br>"
                           f"{tr('att_landmark')} %{{customdata}}<extra></extra>")))
    return traces


@st.fragment
def face_view(image: np.ndarray, face: Face, aus: tuple[str, ...], preset: att.Falloff) -> None:
    """The face with the layers the teacher switches on, and the downloads."""
    columns = st.columns(6)
    layers = {name: column.checkbox(tr(f"att_layer_{name}"), name != "numbers", key=f"att_show_{name}",
                                    persist_state="session")
              for column, name in zip(columns, ("box", "landmarks", "numbers", "centres", "heatmap"))}
    opacity = columns[5].slider(tr("att_opacity"), 0.0, 1.0, 0.7, 0.05, key="att_opacity",
                                disabled=not layers["heatmap"], persist_state="session")

    amap = att.attention_map(face.landmarks, face.box, image.shape, aus, preset)
    x0, y0, x1, y1 = _face_region(face, image.shape)
    picture = image[y0:y1, x0:x1]
    if layers["heatmap"]:
        picture = att.overlay(picture, amap[y0:y1, x0:x1], opacity)
    figure = photo_figure(picture, (x0, y0), max_side=800, height=620)
    if layers["box"]:
        figure.add_shape(_box_shape(face.box, CHOSEN_COLOUR, 2))
    if layers["landmarks"]:
        figure.add_trace(_landmark_trace(face, layers["numbers"]))
    if layers["centres"]:
        figure.add_traces(_centre_traces(att.au_centres(face.landmarks, face.box, aus)))
    figure.update_layout(showlegend=layers["centres"], legend=dict(x=1.0, xanchor="left", y=1.0, font=dict(size=12)))
    st.plotly_chart(figure, key="att_face_figure", config={"displaylogo": False})
    if not aus:
        st.info(tr("att_no_aus"))

    png, npy, centres = st.columns(3)
    png.download_button(tr("att_download_png"), lambda: encode_png(att.overlay(image, amap, opacity)),
                        "attention_overlay.png", "image/png", key="att_download_png")
    npy.download_button(tr("att_download_npy"), lambda: att.map_npy(amap), "attention_map.npy",
                        "application/octet-stream", key="att_download_npy")
    centres.download_button(tr("att_download_json"), lambda: att.centres_json(face, image.shape, aus, preset),
                            "attention_centres.json", "application/json", key="att_download_json")


@st.fragment
def enhancing_view(image: np.ndarray, face: Face, aus: tuple[str, ...], preset: att.Falloff) -> None:
    """One feature channel before and after E-Net, with the pooled attention map between them."""
    st.subheader(tr("att_enet_title"))
    st.markdown(tr("att_enet_intro"))
    _, arch, trained = _network()
    if trained:
        st.info(tr("att_enet_bundled"))
    else:
        st.warning(tr("att_enet_random"))
    side = ARCHITECTURES[arch].input_size
    left, right = st.columns([1, 2])
    group = left.radio(tr("att_enet_group"), ENET_GROUPS, horizontal=True, key="att_group",
                       format_func=lambda g: f"conv{g} ({side >> (g - 1)}×{side >> (g - 1)})", persist_state="session")
    with st.spinner(tr("att_enet_running")):
        view = _enhanced(image, face, group, aus, preset)
    first, last = (name.replace("_", r"\_") for name in view.layers)
    size = view.attention.shape[0]
    right.latex(rf"\mathrm{{conv{group}\_all}} = \mathrm{{{last}}} + \mathrm{{{first}}} \odot A_{{{size}}}")
    channel = left.slider(tr("att_enet_channel"), 0, view.before.shape[0] - 1, view.strongest_channel(),
                          key=f"att_channel_{group}", persist_state="session")
    before, after = view.before[channel], view.after[channel]
    top = float(max(before.max(), after.max())) or 1.0
    columns = st.columns(4)
    columns[0].image(att.overlay(view.crop, view.crop_map, 0.5), caption=tr("att_enet_input"))
    columns[1].plotly_chart(map_heatmap(before, tr("att_enet_before", layer=view.layers[1], channel=channel), 0, top),
                            key="att_enet_before", config={"displayModeBar": False})
    columns[2].plotly_chart(map_heatmap(view.attention, tr("att_enet_attention", size=size), 0, 1, "Jet"),
                            key="att_enet_attention", config={"displayModeBar": False})
    columns[3].plotly_chart(map_heatmap(after, tr("att_enet_after", group=group, channel=channel), 0, top),
                            key="att_enet_after", config={"displayModeBar": False})
    st.caption(tr("att_enet_caption", group=group, last=view.layers[1]))


st.title(tr("att_title"))
st.markdown(tr("att_intro"))
with st.expander(tr("att_rules_title"), expanded=False):
    st.markdown(tr("att_rules_body"))
    rules_table()

image = image_input("att", max_side=PHOTO_SIDE)
if image is None:
    st.stop()
with st.spinner(tr("att_finding_faces")):
    _face_models()
    faces = _faces(image)
if not faces:
    st.info(tr("att_no_face"))
    st.image(image, caption=tr("att_no_face_caption"))
    st.stop()

face = pick_face(image, faces)
aus = au_controls()
preset = falloff_controls()
face_view(image, face, aus, preset)
enhancing_view(image, face, aus, preset)
