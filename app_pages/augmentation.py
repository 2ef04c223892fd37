"""Augmentation preview: the lecture's operators applied live to a photo."""
from __future__ import annotations

import math

import numpy as np
import streamlit as st

from app_pages._shared import (
    choice,
    histogram,
    image_input,
    kept_uploads,
    kernel_heatmap,
    remembered_tabs,
    show_error,
    tr,
)
from core import augment as aug
from core.archive import augment_archive, read_class_zip
from core.errors import UserError
from core.images import digest, side_by_side
from core.settings import settings

PREVIEW_SIDE = 512
TABS = ("filters", "affine", "crops", "noise", "color", "normalize", "pipeline", "dataset")
KEEP = {"persist_state": "session"}  # a widget keeps its value when the visitor leaves the page and comes back

st.title(tr("aug_title"))
st.markdown(tr("aug_intro"))
with st.expander(tr("aug_why_title"), expanded=False):
    st.markdown(tr("aug_why_body"))

image = image_input("aug", max_side=PREVIEW_SIDE)
if image is None:
    st.stop()


tabs = remembered_tabs("aug", TABS)

# Labels of parameter choices that have a string; the others (F1, t3) are shown as they are.
CHOICE_LABELS = {("noise", "kind"): "noise_", ("crop", "mode"): "crop_"}


def _pipe_key(name: str) -> str:
    """Pipeline widgets get new keys after a load, so the browser drops what it showed before."""
    generation = st.session_state.get("pipe_generation", 0)
    return f"pipe_{name}" if not generation else f"pipe{generation}_{name}"


def _param_widget(op: str, name: str, value):
    """One widget for a parameter, from its record: a range slider, a single slider or a multiselect."""
    param = aug.OPERATORS[op].params[name]
    key, label = _pipe_key(f"{op}_{name}"), tr(f"param_{name}")
    if param.choices:
        prefix = CHOICE_LABELS.get((op, name))
        chosen = choice(st.multiselect, label, list(param.choices), key, value if isinstance(value, list) else [value],
                        format_func=(lambda v: tr(prefix + v)) if prefix else str)
        return chosen or value
    return _limited(st, label, op, name, value, key)


def _load_spec_upload() -> None:
    upload = st.file_uploader(tr("pipeline_upload"), type=["json"], key="pipe_upload")
    if upload is None or st.session_state.get("pipe_loaded") == upload.file_id:
        return
    try:
        loaded = aug.spec_from_json(upload.getvalue())
    except UserError as error:
        show_error(error)
        return
    st.session_state["pipe_loaded"] = upload.file_id
    st.session_state["pipeline_spec"] = aug.spec_to_dict(loaded)
    st.session_state["pipe_generation"] = st.session_state.get("pipe_generation", 0) + 1
    st.rerun()


def pipeline_editor() -> aug.PipelineSpec:
    """Build a pipeline from widgets; it is kept as JSON in the session and can be saved and loaded."""
    st.markdown(tr("pipeline_intro"))
    _load_spec_upload()
    current = aug.spec_from_dict(st.session_state.get("pipeline_spec") or aug.spec_to_dict(aug.default_pipeline()))
    by_name = {op.op: op for op in current.ops}
    names = choice(st.multiselect, tr("pipeline_ops"), list(aug.OPERATORS), _pipe_key("ops"),
                   [op.op for op in current.ops], format_func=lambda n: tr(f"op_{n}"))
    ops = []
    for name in names:
        base = by_name.get(name) or aug.default_op(name)
        with st.expander(tr(f"op_{name}"), expanded=False):
            p = st.slider(tr("param_p"), 0.0, 1.0, float(base.p), 0.05, key=_pipe_key(f"{name}_p"), **KEEP)
            params = aug.OPERATORS[name].defaults | base.params
            ops.append(aug.OpSpec(name, p, {param: _param_widget(name, param, value) for param, value in params.items()}))
    spec = aug.PipelineSpec(tuple(ops))
    st.session_state["pipeline_spec"] = aug.spec_to_dict(spec)
    st.download_button(tr("pipeline_download"), aug.spec_to_json(spec), "augmentation.json", "application/json",
                       key="pipe_download", on_click="ignore")
    return spec


def _matrix_latex(matrix: np.ndarray) -> str:
    rows = [" & ".join(f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) > 5e-4 else "0" for v in row) for row in matrix]
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"


def _limited(container, label: str, op: str, name: str, value, key: str, **kwargs):
    """A slider over the limits of an operator's parameter (a range slider for a [low, high] value), so
    every tab offers the pipeline's range."""
    param = aug.OPERATORS[op].params[name]
    cast = int if param.integer else float
    low, high, step = (cast(v) for v in param.limits)
    if isinstance(value, list):
        chosen = container.slider(label, low, high, (cast(value[0]), cast(value[1])), step, key=key, **KEEP, **kwargs)
        return [chosen[0], chosen[1]]
    return container.slider(label, low, high, cast(value), step, key=key, **KEEP, **kwargs)


def _fspecial_args(kind: str) -> tuple:
    """Sliders for one fspecial kind, defaulting to MATLAB's defaults."""
    if kind == "average":
        return (_limited(st, tr("param_hsize"), "gaussian_blur", "hsize", 3, "fs_avg_n"),)
    if kind == "disk":
        return (st.slider(tr("param_radius"), 0.5, 10.0, 5.0, 0.5, key="fs_disk_r", **KEEP),)
    if kind == "gaussian":
        return (_limited(st, tr("param_hsize"), "gaussian_blur", "hsize", 3, "fs_g_n"),
                _limited(st, tr("param_sigma"), "gaussian_blur", "sigma", 0.5, "fs_g_s"))
    if kind == "unsharp":
        return (st.slider(tr("param_alpha"), 0.0, 1.0, 0.2, 0.05, key="fs_u_a", **KEEP),)
    return (_limited(st, tr("param_length"), "motion_blur", "length", 9, "fs_m_len"),
            _limited(st, tr("param_theta_deg"), "motion_blur", "angle", 0.0, "fs_m_theta"))


@st.fragment
def filters_tab(image: np.ndarray) -> None:
    st.markdown(tr("filters_intro"))
    kind = st.selectbox(tr("filter_kind"), aug.FSPECIAL_KINDS, key="fs_kind", **KEEP)
    st.caption(tr(f"filter_explain_{kind}"))
    left, middle, right = st.columns([1, 1, 1])
    with left:
        args = _fspecial_args(kind)
        kernel = aug.fspecial(kind, *args)
        st.code(f"fspecial('{kind}'{''.join(', ' + format(a, 'g') for a in args)})", language="matlab")
        st.plotly_chart(kernel_heatmap(kernel, tr("kernel_of", shape=f"{kernel.shape[0]}×{kernel.shape[1]}")),
                        key="fs_heat")
    middle.image(image, caption=tr("original"))
    right.image(aug.apply_kernel(image, kernel), caption=tr("filtered"))

    st.subheader(tr("filter_bank_title"))
    st.warning(tr("filter_bank_radians"))
    for start in (0, 5):
        columns = st.columns(5)
        for column, name in zip(columns, list(aug.FILTER_PRESETS)[start:start + 5]):
            kind_args = aug.FILTER_PRESETS[name]
            label = f"{name}: " + (tr("identity") if kind_args[0] == "identity" else
                                   f"{kind_args[0]}({', '.join(format(a, '.4g') for a in kind_args[1:])})")
            kernel = aug.preset_kernel(name)
            column.image(aug.apply_kernel(image, kernel), caption=label)
            column.plotly_chart(kernel_heatmap(kernel, label, height=180), key=f"bank_{name}")


@st.fragment
def affine_tab(image: np.ndarray) -> None:
    st.markdown(tr("affine_intro"))
    height, width = image.shape[:2]
    preset_col, result_col = st.columns([1, 1])
    with preset_col:
        preset = choice(st.radio, tr("affine_preset"), list(aug.AFFINE_PRESETS), "aff_preset", horizontal=True,
                        format_func=lambda n: f"{n} · {tr('affine_' + n)}")
        shift = st.slider(tr("affine_shift_f"), 0.0, 50.0, 4.0, 1.0, key="aff_f", **KEEP)
        tform = aug.affine_presets(width, height, shift=shift)[preset]
        st.latex(r"[u\ v\ 1] = [x\ y\ 1]\cdot T,\quad T = " + _matrix_latex(tform))
        st.latex(r"\text{OpenCV: } \begin{bmatrix}u\\v\end{bmatrix} = "
                 + _matrix_latex(aug.matlab_to_opencv(tform)) + r"\begin{bmatrix}x\\y\\1\end{bmatrix}")
        if preset == "t1":
            st.info(tr("affine_t1_note"))
    result_col.image(aug.apply_params(image, [aug.Draw("affine_preset", True, {"name": preset, "shift": shift,
                                                                               "angle": 10.0})]),
                     caption=f"{preset}: {tr('affine_' + preset)}")

    st.subheader(tr("rotation_title"))
    st.markdown(tr("rotation_body"))
    c1, c2, c3 = st.columns(3)
    angle = _limited(c1, tr("param_angle_deg"), "affine", "rotation", 15.0, "rot_angle")
    tx = c2.slider(tr("param_tx"), -200.0, 200.0, 20.0, 1.0, key="rot_tx", **KEEP)
    ty = c3.slider(tr("param_ty"), -200.0, 200.0, 0.0, 1.0, key="rot_ty", **KEEP)
    forward, inverse = aug.rotation_translation(angle, tx, ty)
    theta = math.radians(angle)
    st.latex(r"T = \begin{bmatrix}\cos\theta & \sin\theta & 0\\ -\sin\theta & \cos\theta & 0\\ t_x & t_y & 1"
             r"\end{bmatrix} = " + _matrix_latex(forward) + rf",\quad \theta = {angle:g}^\circ = {theta:.3f}\,\mathrm{{rad}}")
    st.latex(r"T^{-1} = \begin{bmatrix}\cos\theta & -\sin\theta & 0\\ \sin\theta & \cos\theta & 0\\ "
             r"-t_x\cos\theta - t_y\sin\theta & t_x\sin\theta - t_y\cos\theta & 1\end{bmatrix} = "
             + _matrix_latex(inverse))
    about_centre = aug.affine_matrix(image.shape, rotation=angle, translate=(tx / width, ty / height))
    left, right = st.columns(2)
    left.image(image, caption=tr("original"))
    right.image(aug.warp(image, np.vstack([about_centre, [0, 0, 1]]), image.shape[:2]),
                caption=tr("rotation_result"))


@st.fragment
def crops_tab(image: np.ndarray) -> None:
    st.markdown(tr("crops_intro"))
    side = min(image.shape[:2])
    crop = st.slider(tr("crop_size"), 16, side, int(side * 0.8), key="crop_side", **KEEP)
    crops = aug.ten_crops(image, crop)
    for row in (list(crops)[:5], list(crops)[5:]):
        for column, name in zip(st.columns(5), row):
            column.image(crops[name], caption=tr(f"crop_{name.removesuffix('_flip')}")
                         + (f" · {tr('flipped')}" if name.endswith("_flip") else ""))
    st.subheader(tr("random_crop_title"))
    c1, c2, c3 = st.columns(3)
    scale = _limited(c1, tr("crop_scale"), "crop", "scale", [0.3, 1.0], "rrc_scale")
    ratio = _limited(c2, tr("crop_ratio"), "crop", "ratio", [0.75, 1.33], "rrc_ratio")
    seed = c3.number_input(tr("seed"), 0, 2**31 - 1, 0, key="rrc_seed", **KEEP)
    rng = np.random.default_rng(int(seed))
    boxes = [aug.random_resized_box(image.shape, rng, scale, ratio) for _ in range(5)]
    for column, box in zip(st.columns(5), boxes):
        column.image(aug.resize(aug.crop_box(image, box), 224),
                     caption=tr("box_caption", left=box[0], top=box[1], width=box[2], height=box[3]))


@st.fragment
def noise_tab(image: np.ndarray) -> None:
    st.markdown(tr("noise_intro"))
    c1, c2, c3 = st.columns(3)
    noise_kind = choice(c1.radio, tr("noise_kind"), list(aug.NOISE_KINDS), "noise_kind",
                        format_func=lambda k: tr(f"noise_{k}"))
    amount = _limited(c2, tr(f"noise_amount_{noise_kind}"), "noise", "amount",
                      0.01 if noise_kind != "salt_pepper" else 0.05, f"noise_amount_{noise_kind}", format="%.3f")
    noise_seed = c3.number_input(tr("seed"), 0, 2**31 - 1, 0, key="noise_seed", **KEEP)
    st.caption(tr(f"noise_explain_{noise_kind}"))
    left, right = st.columns(2)
    left.image(image, caption=tr("original"))
    right.image(aug.add_noise(image, noise_kind, amount, int(noise_seed)), caption=tr(f"noise_{noise_kind}"))


@st.fragment
def color_tab(image: np.ndarray) -> None:
    st.markdown(tr("color_intro"))
    columns = st.columns(5)
    neutral = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.0, "gamma": 1.0}
    values = {name: _limited(column, tr(f"color_{name}"), "color", name, value, f"col_{name[0]}")
              for column, (name, value) in zip(columns, neutral.items())}
    left, right = st.columns(2)
    left.image(image, caption=tr("original"))
    right.image(aug.adjust_color(image, **values), caption=tr("adjusted"))


@st.fragment
def normalize_tab(image: np.ndarray) -> None:
    st.markdown(tr("normalize_intro"))
    c1, c2 = st.columns(2)
    mode = choice(c1.radio, tr("normalize_mode"), ["channel_mean", "mean_image", "none"], "norm_mode",
                  format_func=lambda m: tr(f"normalize_{m}"))
    size = c2.slider(tr("normalize_size"), 32, 512, 224, 16, key="norm_size", **KEEP)
    do_scale = c2.checkbox(tr("normalize_scale"), value=True, key="norm_scale", **KEEP)
    resized = aug.resize(image, size)
    if mode == "channel_mean":
        centred, mean = aug.subtract_channel_mean(resized)
        st.caption(tr("normalize_channel_mean_value", r=mean[0], g=mean[1], b=mean[2]))
    elif mode == "mean_image":
        crops = aug.ten_crops(aug.resize(image, int(size * 1.15)), size)
        mean_image = np.mean(np.stack(list(crops.values())), axis=0)
        centred = aug.subtract_mean_image(crops["center"], mean_image)
        st.image(mean_image.astype(np.uint8), caption=tr("normalize_mean_image_caption"), width=160)
    else:
        centred = resized.astype(np.float32)
    result = aug.scale_intensity(centred) if do_scale else centred
    # each on its own axis: after centring and scaling the values span about 1/256 of the 0-255 axis
    before_col, after_col = st.columns(2)
    before_col.plotly_chart(histogram({tr("before"): resized}, f"{tr('normalize_histogram')} · {tr('before')}"),
                            key="norm_hist_before")
    after_col.plotly_chart(histogram({tr("after"): result}, f"{tr('normalize_histogram')} · {tr('after')}"),
                           key="norm_hist_after")
    st.caption(tr("normalize_range", low=float(result.min()), high=float(result.max()), mean=float(result.mean())))


@st.fragment
def pipeline_tab(image: np.ndarray) -> None:
    spec = pipeline_editor()
    c1, c2 = st.columns(2)
    count = c1.slider(tr("pipeline_draws"), 1, 24, 8, key="pipe_count", **KEEP)
    pipe_seed = c2.number_input(tr("seed"), 0, 2**31 - 1, 0, key="pipe_seed", **KEEP)
    with st.expander(tr("aug_as_code")):
        st.caption(tr("aug_as_code_help"))
        as_python, as_json = st.tabs([tr("aug_code_python"), tr("aug_code_json")])
        as_python.code(aug.spec_to_python(spec, count, int(pipe_seed), PREVIEW_SIDE), language="python")
        as_json.code(aug.spec_to_json(spec), language="json")
    results = aug.augment_many(image, spec, count, int(pipe_seed))
    columns = st.columns(3)
    for index, (drawn, draws) in enumerate(results, start=1):
        with columns[(index - 1) % 3]:
            # PNG, so that the preview shows the very pixels the pipeline (and its Python code) gives
            st.image(side_by_side(image, drawn), caption=tr("draw_n", n=index), output_format="PNG")
            with st.popover(tr("draw_params")):
                st.json([{"op": d.op, "applied": d.applied, **d.values} for d in draws])


@st.fragment
def dataset_tab(image: np.ndarray) -> None:
    st.markdown(tr("dataset_intro"))
    zips = kept_uploads(tr("dataset_upload"), "ds_zip", type=["zip"])
    data = zips[0][1] if zips else None
    c1, c2 = st.columns(2)
    copies = c1.slider(tr("dataset_copies"), 1, 10, 2, key="ds_copies", **KEEP)
    ds_seed = c2.number_input(tr("seed"), 0, 2**31 - 1, 0, key="ds_seed", **KEEP)
    if data is not None and st.button(tr("dataset_run"), type="primary", key="ds_run"):
        progress = st.progress(0.0, text=tr("dataset_reading"))
        try:
            archive = read_class_zip(data, lambda done, total: progress.progress(
                done / total, text=tr("dataset_reading_n", done=done, total=total)),
                max_files=settings().max_dataset_images)
            spec = aug.spec_from_dict(st.session_state.get("pipeline_spec") or aug.spec_to_dict(aug.default_pipeline()))
            result = augment_archive(archive, spec, copies, int(ds_seed), lambda done, total: progress.progress(
                done / total, text=tr("dataset_augmenting_n", done=done, total=total)),
                max_images=settings().max_augmented_images)
        except UserError as error:
            progress.empty()
            show_error(error)
        else:
            progress.empty()
            # kept in the session: the download button stays through reruns, a click on it included
            st.session_state["ds_result"] = {"upload": digest(data), "zip": result, "copies": copies,
                                             "count": len(archive.images) * (copies + 1), "counts": archive.counts()}
    elif data is None:
        st.caption(tr("dataset_hint"))
    done = st.session_state.get("ds_result")
    if data is not None and done is not None and done["upload"] == digest(data):
        st.success(tr("dataset_done", count=done["count"]))
        counts = done["counts"]
        st.dataframe({tr("dataset_col_class"): list(counts), tr("dataset_col_images"): list(counts.values()),
                      tr("dataset_col_after"): [count * (done["copies"] + 1) for count in counts.values()]},
                     hide_index=True, key="ds_counts")
        st.download_button(tr("dataset_download"), done["zip"], "augmented.zip", "application/zip", key="ds_download",
                           on_click="ignore")


# The tabs track which one is open (to keep it across a language switch), so a switch reruns the page:
# only the open tab's work is done.
for tab, show in zip(tabs, (filters_tab, affine_tab, crops_tab, noise_tab, color_tab, normalize_tab, pipeline_tab,
                            dataset_tab)):
    if tab.open:
        with tab:
            show(image)
