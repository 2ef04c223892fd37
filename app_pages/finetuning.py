"""Fine-tuning: pick data and a network, freeze layers, set rates, train with live curves."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from app_pages._shared import (
    MODEL_FOR_PREDICTION,
    choice,
    kept_uploads,
    lang,
    session_alive,
    session_id,
    show_error,
    tr,
)
from core.classes import display_name
from core.data import FER2013_FILE, LABEL_SOURCES, Splits, data_file, load_class_folders, load_npz, subsample
from core.device import best_device
from core.errors import UserError
from core.images import digest
from core.jobs import Job, available_memory, check_job, offered_architectures, server_runner
from core.metrics import Metrics, smooth
from core.settings import DATA_DIR_VARIABLE, settings
from core.starting_point import CHECKPOINT_STARTS, starting_point
from core.train import BALANCING, OPTIMIZERS, SCHEDULES, TrainConfig, estimate_batch_memory
from models.registry import ARCHITECTURES, COURSE_RECIPE, group_names

st.title(tr("ft_title"))
st.markdown(tr("ft_intro"))


@st.cache_resource(show_spinner=False, max_entries=2)
def _fer2013(path: str, labels: str) -> Splits:
    return load_npz(path, labels)


def _class_folders(data: bytes, size: int, channels: int, seed: int) -> Splits:
    """The uploaded zip's data set, kept in this session only (one at a time, never copied per rerun)."""
    key = (digest(data), size, channels, seed)
    held = st.session_state.get("ft_zip_splits")
    if held is None or held[0] != key:
        st.session_state.pop("ft_zip_splits", None)  # free the previous data set before reading the next
        splits = load_class_folders(data, size, channels, seed=seed, max_files=settings().max_dataset_images)
        st.session_state["ft_zip_splits"] = held = (key, splits)
    return held[1]


@st.cache_data(show_spinner=False)
def _memory(arch: str, arch_args_items: tuple, batch: int, measure: bool) -> tuple[int, bool]:
    return estimate_batch_memory(arch, dict(arch_args_items), batch, measure=measure)


def _class_chart(splits: Splits) -> go.Figure:
    names = [display_name(c, lang()) for c in splits.classes]
    figure = go.Figure([go.Bar(name=tr("ft_split_train"), x=names, y=splits.train.counts()),
                        go.Bar(name=tr("ft_split_val"), x=names, y=splits.val.counts())])
    figure.update_layout(barmode="group", height=280, margin=dict(l=10, r=10, t=30, b=10), title=tr("ft_histogram"))
    return figure


# --------------------------------------------------------------------------- data

st.header(tr("ft_data"))
if settings().hosted:  # the host fixes the data folder; a visitor neither sees nor types a server path
    data_folder = settings().data_dir
else:
    data_folder = st.text_input(tr("ft_data_dir", variable=DATA_DIR_VARIABLE), value=settings().data_dir,
                                key="ft_data_dir", help=tr("ft_data_dir_help", variable=DATA_DIR_VARIABLE),
                                persist_state="session")
source = choice(st.radio, tr("ft_source"), [*LABEL_SOURCES, "zip"], "ft_source", horizontal=True,
                format_func=lambda s: tr(f"ft_source_{s}"))

left, right = st.columns([2, 1])
arch = choice(right.selectbox, tr("ft_arch"), offered_architectures(settings()), "ft_arch",
              format_func=lambda a: tr(f"arch_{a}"))
architecture = ARCHITECTURES[arch]
seed = right.number_input(tr("seed"), 0, 2**31 - 1, 0, key="ft_seed", persist_state="session")

splits: Splits | None = None
try:
    if source in LABEL_SOURCES:
        path = data_file(data_folder)
        if path is None:
            left.warning(tr("ft_fer_missing_hosted" if settings().hosted else "ft_fer_missing", file=FER2013_FILE,
                            variable=DATA_DIR_VARIABLE))
        else:
            splits = _fer2013(str(path), source)
    else:
        zips = kept_uploads(tr("dataset_upload"), "ft_zip", where=left, type=["zip"])
        if zips:
            with st.spinner(tr("dataset_reading")):
                splits = _class_folders(zips[0][1], architecture.input_size, architecture.channels, int(seed))
        else:
            left.caption(tr("dataset_hint"))
except UserError as error:
    show_error(error)

if splits is None:
    st.stop()

largest = int(splits.train.counts().max())
if largest > 10:
    per_class = left.slider(tr("ft_per_class"), 10, largest, min(300, largest), key="ft_per_class",
                            help=tr("ft_per_class_help"), persist_state="session")
    splits = Splits(subsample(splits.train, per_class, int(seed)), splits.val, splits.test, splits.source)
left.plotly_chart(_class_chart(splits), key="ft_hist")
left.caption(tr("ft_balance_question"))

# --------------------------------------------------------------------------- network and controls

st.header(tr("ft_network"))
c1, c2, c3 = st.columns(3)
start_options = ["scratch", *(["imagenet"] if architecture.pretrained_weights else []), "bundled", "session", "upload"]
start = choice(c2.radio, tr("ft_start"), start_options, "ft_start", format_func=lambda s: tr(f"ft_start_{s}"))
from_checkpoint = start in CHECKPOINT_STARTS
arch_args: dict = {}
if arch == "face_vgg" and not from_checkpoint:
    arch_args = {"width": c1.select_slider(tr("ft_width"), [8, 16, 32, 48, 64], 16, key="ft_width",
                                           persist_state="session"),
                 "blocks": c1.slider(tr("ft_blocks"), 2, 5, 4, key="ft_blocks", persist_state="session"),
                 "depth": c1.slider(tr("ft_depth"), 1, 3, 2, key="ft_depth", persist_state="session")}
course = c3.toggle(tr("ft_course_recipe"), key="ft_course", disabled=arch != COURSE_RECIPE["arch"],
                   help=tr("ft_course_recipe_help"), persist_state="session") and arch == COURSE_RECIPE["arch"]

uploads = kept_uploads(tr("ft_upload_checkpoint"), "ft_init_upload", where=c2, type=["pt"]) if start == "upload" else []
point = starting_point(start, arch, arch_args, course, hosted=settings().hosted,
                       session_checkpoint=st.session_state.get("ft_last_checkpoint"),
                       upload=uploads[0][1] if uploads else None)
if point.error is not None:
    show_error(point.error)
for note in point.notes:
    getattr(c2, note.level)(tr(note.key, **note.params))
init, pretrained, can_train = point.init, point.pretrained, point.can_train
arch, arch_args, course = point.arch, point.arch_args, point.course

groups = group_names(arch, arch_args)
default_frozen = list(COURSE_RECIPE["freeze"]) if course else []
frozen = st.multiselect(tr("ft_freeze"), groups, default=default_frozen, key=f"ft_freeze_{arch}_{course}",
                        help=tr("ft_freeze_help"), persist_state="session")
with st.expander(tr("ft_lr_multipliers")):
    st.caption(tr("ft_lr_multipliers_help"))
    columns = st.columns(len(groups))
    multipliers = {name: columns[i].number_input(name, 0.0, 100.0, 1.0, 0.1, key=f"ft_mult_{arch}_{name}",
                                                 disabled=name in frozen, persist_state="session")
                   for i, name in enumerate(groups)}

c1, c2, c3, c4 = st.columns(4)
optimizer = choice(c1.selectbox, tr("ft_optimizer"), OPTIMIZERS, "ft_optimizer", format_func=lambda o: tr(f"opt_{o}"))
lr = c1.number_input(tr("ft_lr"), 1e-5, 1.0, 0.05 if optimizer == "sgd" else 0.001, format="%.5f",
                     key=f"ft_lr_{optimizer}", persist_state="session")
schedule = choice(c2.selectbox, tr("ft_schedule"), SCHEDULES, "ft_schedule", format_func=lambda s: tr(f"sched_{s}"))
epochs = c2.slider(tr("ft_epochs"), 1, settings().max_epochs or 50, 5, key="ft_epochs", persist_state="session")
batch_size = c3.select_slider(tr("ft_batch"), [8, 16, 32, 64, 128, 256, 512], 64, key="ft_batch",
                              persist_state="session")
memory, measured = _memory(arch, tuple(sorted(arch_args.items())), batch_size, not server_runner().running())
c3.caption(tr("ft_memory_measured" if measured else "ft_memory_estimated", mb=memory / 2**20))
if settings().max_epochs is not None:
    c2.caption(tr("ft_epochs_limit", limit=settings().max_epochs))
balance = choice(c4.radio, tr("ft_balance"), BALANCING, "ft_balance", format_func=lambda b: tr(f"balance_{b}"))
on_cuda = best_device().type == "cuda"
amp = c4.checkbox(tr("ft_amp"), value=on_cuda, disabled=not on_cuda, key="ft_amp", help=tr("ft_amp_help"),
                  persist_state="session")

augment_choice = choice(st.radio, tr("ft_augment"), ["default", "page", "none"], "ft_augment", horizontal=True,
                        format_func=lambda a: tr(f"ft_augment_{a}"))
augment_spec = None
if augment_choice == "none":
    augment_spec = {"version": 1, "ops": []}
elif augment_choice == "page":
    augment_spec = st.session_state.get("pipeline_spec")
    if augment_spec is None:
        st.info(tr("ft_augment_page_missing"))

# --------------------------------------------------------------------------- the run


def _other_job(other: Job) -> None:
    """Another visitor's job holds the slot: its progress, when it frees, and Stop if its visitor has gone."""
    if not other.running:
        st.rerun()  # the slot is free: redraw the page with Train enabled
    left = other.seconds_left()
    st.warning(tr("ft_slot_busy", minutes=tr("unit_minutes", value=f"{left / 60:.1f}") if left is not None else "…"))
    progress = other.progress
    st.progress(progress.fraction, text=tr("ft_other_progress", epoch=progress.epoch, epochs=progress.total_epochs,
                                           arch=tr(f"arch_{other.config.arch}")))
    if other.stoppable_by(session_id(), session_alive):
        st.caption(tr("ft_orphan_job"))
        if st.button(tr("ft_stop_orphan"), key="ft_stop_orphan"):
            other.stop.set()


runner = server_runner()
job: Job | None = st.session_state.get("ft_job")
config = TrainConfig(
    data=splits.source, labels=source if source in LABEL_SOURCES else "fer2013", arch=arch, arch_args=arch_args, epochs=epochs, batch_size=batch_size,
    lr=lr, optimizer=optimizer, schedule=schedule, freeze=tuple(frozen), lr_multipliers=multipliers,
    balance=balance, augment=augment_spec, amp=amp, seed=int(seed), pretrained=pretrained,
    init_checkpoint=point.init_checkpoint,  # the weights themselves come as `init`
    out=f"{arch}.pt",
)
others = [j for j in runner.running() if j is not job]
try:
    if not others:  # while another job holds the slot, the memory it uses is not free for this one
        check_job(config, len(splits.classes), settings(), memory, available_memory(best_device()))
except UserError as error:
    show_error(error)
    can_train = False

b1, b2, _ = st.columns([1, 1, 4])
if b1.button(tr("ft_train"), type="primary", key="ft_train_button",
             disabled=bool(job and job.running) or bool(others) or not can_train):
    try:
        st.session_state["ft_job"] = runner.start(config, splits, session_id(), init, memory)
        st.rerun()  # redraw the buttons (Train off, Stop on) and switch to the live view
    except UserError as error:
        show_error(error)
if b2.button(tr("ft_stop"), key="ft_stop_button", disabled=not (job and job.running)):
    job.stop.set()
if others:
    st.fragment(run_every=2.0)(_other_job)(others[0])

with st.expander(tr("ft_definitions")):
    st.markdown(tr("ft_definitions_body"))
    st.latex(r"\mathrm{precision} = \frac{TP}{TP+FP},\quad \mathrm{recall} = \frac{TP}{TP+FN},\quad "
             r"F_1 = \frac{2\cdot \mathrm{precision}\cdot\mathrm{recall}}{\mathrm{precision}+\mathrm{recall}},\quad "
             r"\text{macro-}F_1 = \frac{1}{K}\sum_k F_{1,k}")


def _line(title: str, series: dict[str, tuple[list, list]], x_title: str) -> go.Figure:
    """Curves against iterations or epochs (whole numbers on the axis); the legend sits above the plot, clear
    of the axis title."""
    figure = go.Figure([go.Scatter(x=x, y=y, name=name, mode="lines+markers" if len(x) < 30 else "lines")
                        for name, (x, y) in series.items()])
    last = max((max(x) for x, _ in series.values() if len(x)), default=1)
    figure.update_layout(title=dict(text=title, y=0.97, yanchor="top"), height=300,
                         margin=dict(l=10, r=10, t=75, b=10),
                         xaxis=dict(title=x_title, **(dict(tick0=1, dtick=1) if last <= 10 else {})),
                         legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0))
    return figure


def _confusion(metrics: Metrics) -> go.Figure:
    names = [display_name(c, lang()) for c in metrics.per_class]
    figure = go.Figure(go.Heatmap(z=metrics.confusion, x=names, y=names, colorscale="Blues", text=metrics.confusion,
                                  texttemplate="%{text}", hovertemplate=tr("ft_confusion_hover") + "<extra></extra>"))
    figure.update_layout(title=tr("ft_confusion"), height=420, margin=dict(l=10, r=10, t=40, b=10),
                         xaxis_title=tr("ft_predicted"), yaxis_title=tr("ft_true"), yaxis_autorange="reversed")
    return figure


def _show_progress(job: Job) -> None:
    progress = job.progress
    if job.failure is not None:
        show_error(job.failure)
    elif progress.error:
        st.error(tr("ft_failed", error=progress.error))
    if progress.stop_reason == "time_limit":
        st.info(tr("ft_time_limit", minutes=job.config.max_minutes))
    eta = "0" if progress.done else f"{progress.eta_s / 60:.1f}" if progress.eta_s else "…"
    st.progress(progress.fraction, text=tr(f"ft_status_{progress.status}", epoch=progress.epoch,
                                           epochs=progress.total_epochs, count=progress.total_epochs, batch=progress.batch,
                                           batches=progress.batches_per_epoch, eta=eta))
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(tr("ft_throughput"), tr("unit_images_per_s", value=progress.images_per_s))
    m2.metric(tr("ft_eta"), tr("unit_minutes", value=eta))
    on_gpu = best_device().type == "cuda"
    m3.metric(tr("ft_device_memory" if on_gpu else "ft_process_memory"),
              tr("unit_megabytes", value=progress.memory_bytes / 2**20),
              help=None if on_gpu else tr("ft_process_memory_help"))
    m4.metric(tr("ft_best_val"), f"{max(progress.best_accuracy, 0):.1%}",
              help=tr("ft_best_epoch", epoch=progress.best_epoch))
    losses = list(progress.iteration_loss)
    if not losses:
        return
    steps = list(range(1, len(losses) + 1))
    epochs_done = list(progress.epochs)
    per_epoch = [min(e.epoch * max(progress.batches_per_epoch, 1), len(losses)) for e in epochs_done]  # a stopped epoch ends early
    left, right = st.columns(2)
    left.plotly_chart(_line(tr("ft_loss"), {
        tr("ft_loss_raw"): (steps, losses), tr("ft_loss_smoothed"): (steps, list(smooth(losses))),
        tr("ft_loss_train_epoch"): (per_epoch, [e.train_loss for e in epochs_done]),
        tr("ft_loss_val_epoch"): (per_epoch, [e.val_loss for e in epochs_done])}, tr("ft_iteration")), key="ft_c_loss")
    if not epochs_done:
        left.plotly_chart(_line(tr("ft_lr_chart"), {tr("ft_lr"): (steps, list(progress.iteration_lr))}, tr("ft_iteration")),
                          key="ft_c_lr")
        return
    epoch_numbers = [e.epoch for e in epochs_done]
    right.plotly_chart(_line(tr("ft_accuracy"), {
        tr("ft_split_train"): (epoch_numbers, [e.train_accuracy for e in epochs_done]),
        tr("ft_split_val"): (epoch_numbers, [e.val_accuracy for e in epochs_done]),
        tr("ft_macro_f1"): (epoch_numbers, [e.macro_f1 for e in epochs_done])}, tr("ft_epoch")), key="ft_c_acc")
    left.plotly_chart(_line(tr("ft_lr_chart"), {tr("ft_lr"): (steps, list(progress.iteration_lr))}, tr("ft_iteration")),
                      key="ft_c_lr")
    right.plotly_chart(_line(tr("ft_throughput"), {tr("unit_images_per_s_name"): (epoch_numbers, [e.images_per_s for e in epochs_done])},
                             tr("ft_epoch")), key="ft_c_speed")
    if progress.last_metrics is not None:
        metrics = progress.last_metrics
        st.subheader(tr("ft_epoch_metrics", epoch=epochs_done[-1].epoch, accuracy=metrics.accuracy, f1=metrics.macro_f1))
        left, right = st.columns([1, 1])
        left.dataframe({tr("ft_class"): [display_name(c, lang()) for c in metrics.per_class],
                        tr("ft_precision"): [m.precision for m in metrics.per_class.values()],
                        tr("ft_recall"): [m.recall for m in metrics.per_class.values()],
                        "F1": [m.f1 for m in metrics.per_class.values()],
                        tr("ft_support"): [m.support for m in metrics.per_class.values()]},
                       hide_index=True, key="ft_table")
        right.plotly_chart(_confusion(metrics), key="ft_c_conf")


def live_view() -> None:
    job = st.session_state.get("ft_job")
    if job is None:
        st.caption(tr("ft_not_started"))
        return
    _show_progress(job)
    if not job.running:
        if st.session_state.get("ft_live"):
            st.session_state["ft_live"] = False
            st.rerun()
        finished(job)


def finished(job: Job) -> None:
    checkpoint = job.checkpoint
    if checkpoint is None:
        st.info(tr("ft_no_checkpoint_written"))
        return
    st.session_state["ft_last_checkpoint"] = checkpoint
    progress = job.progress
    scored = progress.epochs[-1].val_images if progress.epochs else 0
    if 0 < scored < progress.val_size:  # stopped before the first full validation
        st.info(tr("ft_done_partial", accuracy=progress.best_accuracy, epoch=progress.best_epoch, images=scored,
                   total=progress.val_size))
    else:
        st.success(tr("ft_done", accuracy=progress.best_accuracy, epoch=progress.best_epoch))
    d1, d2 = st.columns(2)
    d1.download_button(tr("ft_download"), checkpoint, f"{job.config.arch}_{digest(checkpoint)[:8]}.pt",
                       "application/octet-stream", key="ft_download")
    if d2.button(tr("ft_use_for_prediction"), key="ft_use"):
        st.session_state[MODEL_FOR_PREDICTION] = checkpoint
        st.toast(tr("ft_used_for_prediction"))


# While a job runs, the view is a fragment that reruns every second; afterwards it is static.
if job is not None and job.running:
    st.session_state["ft_live"] = True
    st.fragment(run_every=1.0)(live_view)()
else:
    live_view()
