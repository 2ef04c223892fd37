"""Augmentation preview: the lecture's operators applied live to a photo."""
from __future__ import annotations

import math

import numpy as np
import streamlit as st

from core import augment as aug
from core.archive import augment_archive, read_class_zip
from core.errors import UserError
from core.images import side_by_side
from core.settings import settings
from app_pages._shared import choice_key, histogram, image_input, kernel_heatmap, show_error, tr

PREVIEW_SIDE = 512

st.title(tr("aug_title"))
st.markdown(tr("aug_intro"))
with st.expander(tr("aug_why_title"), expanded=False):
    st.markdown(tr("aug_why_body"))

image = image_input("aug", max_side=PREVIEW_SIDE)
if image is None:
    st.stop()

tabs = st.tabs([tr(f"aug_tab_{name}") for name in
                ("filters", "affine", "crops", "noise", "color", "normalize", "pipeline", "dataset")])


def _param_widget(op: str, name: str, value):
    """One widget for a parameter: a range slider, a single slider or a multiselect."""
    key = f"pipe_{op}_{name}"
    label = tr(f"param_{name}")
    if (op, name) in aug.PARAM_CHOICES:
        options = list(aug.PARAM_CHOICES[op, name])
        chosen = st.multiselect(label, options, default=value, key=key)
        return chosen or value
    low, high, step = aug.PARAM_LIMITS[op, name]
    integer = name in aug.OPERATORS[op].integer
    cast = int if integer else float
    bounds = (cast(low), cast(high), cast(step))
    if isinstance(value, list):
        chosen = st.slider(label, *bounds[:2], (cast(value[0]), cast(value[1])), bounds[2], key=key)
        return [chosen[0], chosen[1]]
    return st.slider(label, *bounds[:2], cast(value), bounds[2], key=key)


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
    for key in [k for k in st.session_state if str(k).startswith("pipe_") and k not in ("pipe_upload", "pipe_loaded")]:
        del st.session_state[key]
    st.rerun()


def pipeline_editor() -> aug.PipelineSpec:
    """Build a pipeline from widgets; it is kept as JSON in the session and can be saved and loaded."""
    st.markdown(tr("pipeline_intro"))
    _load_spec_upload()
    current = aug.spec_from_dict(st.session_state.get("pipeline_spec") or aug.spec_to_dict(aug.default_pipeline()))
    by_name = {op.op: op for op in current.ops}
    names = st.multiselect(tr("pipeline_ops"), list(aug.OPERATORS), default=[op.op for op in current.ops],
                           format_func=lambda n: tr(f"op_{n}"), key="pipe_ops")
    ops = []
    for name in names:
        base = by_name.get(name) or aug.default_op(name)
        with st.expander(tr(f"op_{name}"), expanded=False):
            p = st.slider(tr("param_p"), 0.0, 1.0, float(base.p), 0.05, key=f"pipe_{name}_p")
            params = aug.OPERATORS[name].defaults | base.params
            ops.append(aug.OpSpec(name, p, {param: _param_widget(name, param, value) for param, value in params.items()}))
    spec = aug.PipelineSpec(tuple(ops))
    st.session_state["pipeline_spec"] = aug.spec_to_dict(spec)
    st.download_button(tr("pipeline_download"), aug.spec_to_json(spec), "augmentation.json", "application/json",
                       key="pipe_download")
    return spec


def _matrix_latex(matrix: np.ndarray) -> str:
    rows = [" & ".join(f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) > 5e-4 else "0" for v in row) for row in matrix]
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"


def _fspecial_args(kind: str) -> tuple:
    """Sliders for one fspecial kind, defaulting to MATLAB's defaults."""
    if kind == "average":
        return (st.slider(tr("param_hsize"), 1, 15, 3, key="fs_avg_n"),)
    if kind == "disk":
        return (st.slider(tr("param_radius"), 0.5, 10.0, 5.0, 0.5, key="fs_disk_r"),)
    if kind == "gaussian":
        return (st.slider(tr("param_hsize"), 1, 15, 3, key="fs_g_n"),
                st.slider(tr("param_sigma"), 0.1, 5.0, 0.5, 0.1, key="fs_g_s"))
    if kind == "unsharp":
        return (st.slider(tr("param_alpha"), 0.0, 1.0, 0.2, 0.05, key="fs_u_a"),)
    return (st.slider(tr("param_length"), 1, 31, 9, key="fs_m_len"),
            st.slider(tr("param_theta_deg"), 0.0, 180.0, 0.0, 1.0, key="fs_m_theta"))


@st.fragment
def filters_tab(image: np.ndarray) -> None:
    st.markdown(tr("filters_intro"))
    kind = st.selectbox(tr("filter_kind"), aug.FSPECIAL_KINDS, key="fs_kind")
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
        preset = st.radio(tr("affine_preset"), [f"t{i}" for i in range(1, 8)], horizontal=True, key=choice_key("aff_preset", "t1"),
                          format_func=lambda n: f"{n} · {tr('affine_' + n)}")
        shift = st.slider(tr("affine_shift_f"), 0.0, 50.0, 4.0, 1.0, key="aff_f")
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
    angle = c1.slider(tr("param_angle_deg"), -180.0, 180.0, 15.0, 1.0, key="rot_angle")
    tx = c2.slider(tr("param_tx"), -200.0, 200.0, 20.0, 1.0, key="rot_tx")
    ty = c3.slider(tr("param_ty"), -200.0, 200.0, 0.0, 1.0, key="rot_ty")
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
    crop = st.slider(tr("crop_size"), 16, side, int(side * 0.8), key="crop_side")
    crops = aug.ten_crops(image, crop)
    for row in (list(crops)[:5], list(crops)[5:]):
        for column, name in zip(st.columns(5), row):
            column.image(crops[name], caption=tr(f"crop_{name.removesuffix('_flip')}")
                         + (f" · {tr('flipped')}" if name.endswith("_flip") else ""))
    st.subheader(tr("random_crop_title"))
    c1, c2, c3 = st.columns(3)
    scale = c1.slider(tr("crop_scale"), 0.05, 1.0, (0.3, 1.0), 0.05, key="rrc_scale")
    ratio = c2.slider(tr("crop_ratio"), 0.25, 4.0, (0.75, 1.33), 0.05, key="rrc_ratio")
    seed = c3.number_input(tr("seed"), 0, 2**31 - 1, 0, key="rrc_seed")
    rng = np.random.default_rng(int(seed))
    boxes = [aug.random_resized_box(image.shape, rng, scale, ratio) for _ in range(5)]
    for column, box in zip(st.columns(5), boxes):
        column.image(aug.resize(aug.crop_box(image, box), 224),
                     caption=tr("box_caption", left=box[0], top=box[1], width=box[2], height=box[3]))


@st.fragment
def noise_tab(image: np.ndarray) -> None:
    st.markdown(tr("noise_intro"))
    c1, c2, c3 = st.columns(3)
    noise_kind = c1.radio(tr("noise_kind"), ["gaussian", "salt_pepper", "speckle"], key=choice_key("noise_kind", "gaussian"),
                          format_func=lambda k: tr(f"noise_{k}"))
    amount = c2.slider(tr(f"noise_amount_{noise_kind}"), 0.0, 0.2, 0.01 if noise_kind != "salt_pepper" else 0.05,
                       0.005, format="%.3f", key=f"noise_amount_{noise_kind}")
    noise_seed = c3.number_input(tr("seed"), 0, 2**31 - 1, 0, key="noise_seed")
    st.caption(tr(f"noise_explain_{noise_kind}"))
    left, right = st.columns(2)
    left.image(image, caption=tr("original"))
    right.image(aug.add_noise(image, noise_kind, amount, int(noise_seed)), caption=tr(f"noise_{noise_kind}"))


@st.fragment
def color_tab(image: np.ndarray) -> None:
    st.markdown(tr("color_intro"))
    columns = st.columns(5)
    brightness = columns[0].slider(tr("color_brightness"), 0.0, 2.0, 1.0, 0.05, key="col_b")
    contrast = columns[1].slider(tr("color_contrast"), 0.0, 2.0, 1.0, 0.05, key="col_c")
    saturation = columns[2].slider(tr("color_saturation"), 0.0, 2.0, 1.0, 0.05, key="col_s")
    hue = columns[3].slider(tr("color_hue"), -0.5, 0.5, 0.0, 0.01, key="col_h")
    gamma = columns[4].slider(tr("color_gamma"), 0.2, 3.0, 1.0, 0.05, key="col_g")
    left, right = st.columns(2)
    left.image(image, caption=tr("original"))
    right.image(aug.adjust_color(image, brightness, contrast, saturation, hue, gamma), caption=tr("adjusted"))


@st.fragment
def normalize_tab(image: np.ndarray) -> None:
    st.markdown(tr("normalize_intro"))
    c1, c2 = st.columns(2)
    mode = c1.radio(tr("normalize_mode"), ["channel_mean", "mean_image", "none"], key=choice_key("norm_mode", "channel_mean"),
                    format_func=lambda m: tr(f"normalize_{m}"))
    size = c2.slider(tr("normalize_size"), 32, 512, 224, 16, key="norm_size")
    do_scale = c2.checkbox(tr("normalize_scale"), value=True, key="norm_scale")
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
    st.plotly_chart(histogram({tr("before"): resized, tr("after"): result}, tr("normalize_histogram")),
                    key="norm_hist")
    st.caption(tr("normalize_range", low=float(result.min()), high=float(result.max()), mean=float(result.mean())))


@st.fragment
def pipeline_tab(image: np.ndarray) -> None:
    spec = pipeline_editor()
    c1, c2 = st.columns(2)
    count = c1.slider(tr("pipeline_draws"), 1, 24, 8, key="pipe_count")
    pipe_seed = c2.number_input(tr("seed"), 0, 2**31 - 1, 0, key="pipe_seed")
    results = aug.augment_many(image, spec, count, int(pipe_seed))
    columns = st.columns(3)
    for index, (drawn, draws) in enumerate(results, start=1):
        with columns[(index - 1) % 3]:
            st.image(side_by_side(image, drawn), caption=tr("draw_n", n=index))
            with st.popover(tr("draw_params")):
                st.json([{"op": d.op, "applied": d.applied, **d.values} for d in draws])


@st.fragment
def dataset_tab(image: np.ndarray) -> None:
    st.markdown(tr("dataset_intro"))
    upload = st.file_uploader(tr("dataset_upload"), type=["zip"], key="ds_zip")
    c1, c2 = st.columns(2)
    copies = c1.slider(tr("dataset_copies"), 1, 10, 2, key="ds_copies")
    ds_seed = c2.number_input(tr("seed"), 0, 2**31 - 1, 0, key="ds_seed")
    if upload is not None and st.button(tr("dataset_run"), type="primary", key="ds_run"):
        progress = st.progress(0.0, text=tr("dataset_reading"))
        try:
            archive = read_class_zip(upload.getvalue(), lambda done, total: progress.progress(
                done / total, text=tr("dataset_reading_n", done=done, total=total)),
                max_files=settings().max_dataset_images)
            st.write(tr("dataset_counts"), archive.counts())
            spec = aug.spec_from_dict(st.session_state.get("pipeline_spec") or aug.spec_to_dict(aug.default_pipeline()))
            result = augment_archive(archive, spec, copies, int(ds_seed), lambda done, total: progress.progress(
                done / total, text=tr("dataset_augmenting_n", done=done, total=total)),
                max_images=settings().max_augmented_images)
        except UserError as error:
            progress.empty()
            show_error(error)
        else:
            progress.progress(1.0, text=tr("dataset_done", count=len(archive.images) * (copies + 1)))
            st.download_button(tr("dataset_download"), result, "augmented.zip", "application/zip", key="ds_download")
    elif upload is None:
        st.caption(tr("dataset_hint"))


for tab, show in zip(tabs, (filters_tab, affine_tab, crops_tab, noise_tab, color_tab, normalize_tab, pipeline_tab,
                            dataset_tab)):
    with tab:
        show(image)
