"""Fine-tuning: pick data and a network, freeze layers, set rates, train with live curves."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

from app_pages._confusion import confusion_explorer
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
from core.data import (
    FER2013_FILE,
    LABEL_SOURCES,
    MAX_SEPARATOR,
    ClassFolders,
    Splits,
    data_file,
    group_counts,
    load_npz,
    read_class_folders,
    split_indices,
    subsample,
)
from core.device import best_device
from core.errors import UserError
from core.images import digest
from core.jobs import Job, available_memory, check_job, offered_architectures, server_runner
from core.metrics import smooth
from core.near_duplicates import NearDuplicates, dhash, near_duplicates, pair_picture
from core.runs import PlannedRun, RunRecord, augmentation_kind, comparison_plan, inits, record_run
from core.settings import DATA_DIR_VARIABLE, settings
from core.starting_point import CHECKPOINT_STARTS, starting_point
from core.train import BALANCING, OPTIMIZERS, SCHEDULES, TrainConfig, estimate_batch_memory
from models.registry import ARCHITECTURES, COURSE_RECIPE, group_names

st.title(tr("ft_title"))
st.markdown(tr("ft_intro"))


@st.cache_resource(show_spinner=False, max_entries=2)
def _fer2013(path: str, labels: str) -> Splits:
    return load_npz(path, labels)


def _class_folders(data: bytes, size: int, channels: int) -> tuple[ClassFolders, np.ndarray]:
    """The uploaded zip's images and their difference hashes, kept in this session only (one zip at a time,
    never copied per rerun)."""
    key = (digest(data), size, channels)
    held = st.session_state.get("ft_zip_folders")
    if held is None or held[0] != key:
        for stale in ("ft_zip_folders", "ft_zip_splits"):  # free the previous data set before reading the next
            st.session_state.pop(stale, None)
        folders = read_class_folders(data, size, channels, max_files=settings().max_dataset_images)
        st.session_state["ft_zip_folders"] = held = (key, folders, dhash(folders.dataset.x))
    return held[1], held[2]


def _split(folders: ClassFolders, hashes: np.ndarray, rule: str, separator: str,
           seed: int) -> tuple[Splits, NearDuplicates, tuple[int, int, int] | None]:
    """The zip split by `rule`, the near-identical images across the split, and (split by file name) the
    groups in training and validation; kept until the zip or the rule changes."""
    held = st.session_state.get("ft_zip_splits")
    if held is None or held[0] is not folders or held[1] != (rule, separator, seed):
        st.session_state.pop("ft_zip_splits", None)
        train, val, test = split_indices(folders, rule, seed=seed, separator=separator)
        groups = group_counts(folders, train, val, separator) if rule == "prefix" else None
        result = folders.splits(train, val, test), near_duplicates(hashes[train], hashes[val]), groups
        st.session_state["ft_zip_splits"] = held = (folders, (rule, separator, seed), result)
    return held[2]


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


def _zip_splits(folders: ClassFolders, hashes: np.ndarray) -> tuple[Splits, str, str]:
    """The choice of validation images for an uploaded zip, and what the split holds: its share, its groups,
    classes left without validation images, and near-identical images on both sides (a few shown). With
    the splits, the rule and separator chosen, which the run's config records."""
    rules = ["random", "prefix", *(["folders"] if folders.has_val_folder else [])]
    # a zip with its own val/ folder has a choice of its own, which starts on that folder
    rule = choice(left.radio, tr("split_rule"), rules, "ft_split_rule" + ("_folders" if folders.has_val_folder else ""),
                  default=rules[-1] if folders.has_val_folder else None, horizontal=True,
                  format_func=lambda r: tr(f"split_rule_{r}"), help=tr("split_rule_help"))
    separator = left.text_input(tr("split_separator"), "_", max_chars=MAX_SEPARATOR, key="ft_split_separator",
                                help=tr("split_separator_help"), persist_state="session") if rule == "prefix" else "_"
    zip_splits, found, groups = _split(folders, hashes, rule, separator, int(seed))
    val_size, total = len(zip_splits.val), len(zip_splits.train) + len(zip_splits.val)
    left.caption(tr("split_share", share=val_size / total, val=val_size, total=total))
    if groups is not None:
        left.caption(tr("split_groups", count=groups[0] + groups[1], train=groups[0], val=groups[1]))
        if groups[2]:
            left.caption(tr("split_unmatched", count=groups[2], separator=separator))
    if zip_splits.test is not None:
        left.caption(tr("split_test", count=len(zip_splits.test)))
    missing = [display_name(name, lang()) for name, count in zip(zip_splits.classes, zip_splits.val.counts()) if not count]
    if missing:
        left.warning(tr("split_no_val", count=len(missing), names=", ".join(missing)))
    if not len(found):
        left.caption(tr("split_duplicates_none"))
        return zip_splits, rule, separator
    left.warning(tr("split_duplicates", count=len(found), images=found.val_images))
    for column, train, val, bits in zip(left.columns(4), found.train, found.val, found.distance):
        column.image(pair_picture(zip_splits.train.x[train], zip_splits.val.x[val]), caption=tr("split_pair", bits=bits),
                     width="stretch")
    return zip_splits, rule, separator


splits: Splits | None = None
split_rule, split_separator = "auto", "_"
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
                folders, hashes = _class_folders(zips[0][1], architecture.input_size, architecture.channels)
            splits, split_rule, split_separator = _zip_splits(folders, hashes)
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


@st.cache_resource(show_spinner=False)
def _bundled_start(hosted: bool):
    """The bundled model as a starting point, read once per server (the comparison's runs 2 and 3)."""
    return starting_point("bundled", "face_vgg", {}, hosted=hosted)


def _default_name(number: int, plan: PlannedRun) -> str:
    """The lecture's name for a comparison run, else "Run n"."""
    return tr(plan.name_key) if plan.name_key else tr("runs_default_name", number=number)


def _run_name(number: int, plan: PlannedRun) -> str:
    return (st.session_state.get(f"runs_name_{number}") or "").strip() or _default_name(number, plan)


def _collect() -> bool:
    """Keep each run of this session that has ended, in `runs_kept`; whether any ended since the last look.
    `ft_job` is the run to show: the one training or next in line, else the last that trained."""
    pending = st.session_state.get("runs_pending", [])
    ended = [entry for entry in pending if not entry[2].running]
    if not ended:
        return False
    kept = st.session_state.setdefault("runs_kept", [])
    kept.extend(record for record in (record_run(*entry) for entry in ended) if record is not None)
    st.session_state["runs_pending"] = waiting = [entry for entry in pending if entry[2].running]
    shown = waiting[:1] or [entry for entry in ended if not entry[2].skipped][-1:]
    if shown:
        st.session_state["ft_run"] = shown[0][:2]
        st.session_state["ft_job"] = shown[0][2]
    return True


def _start(plans: list[PlannedRun], starts: list, batch_bytes: int) -> None:
    """Start runs one after another in the server's slot; the visitor's leaving skips the ones not started."""
    jobs = runner.start_series([plan.config for plan in plans], splits, session_id(), starts, batch_bytes,
                               owner_alive=session_alive)
    first = st.session_state.get("runs_next", 1)
    st.session_state["runs_next"] = first + len(plans)
    entries = [(first + index, plan, job) for index, (plan, job) in enumerate(zip(plans, jobs, strict=True))]
    st.session_state["runs_pending"] = st.session_state.get("runs_pending", []) + entries
    st.session_state["ft_run"], st.session_state["ft_job"] = entries[0][:2], entries[0][2]


def _other_job(other: Job) -> None:
    """Another visitor's job holds the slot: its progress, when it frees, and Stop if its visitor has gone."""
    if not other.running:
        st.rerun()  # the slot is free: redraw the page with Train enabled
    left = other.seconds_left()
    st.warning(tr("ft_slot_busy", minutes=tr("unit_minutes", value=f"{left / 60:.1f}") if left is not None else "…"))
    progress = other.progress
    st.progress(progress.fraction, text=tr("ft_other_progress", epoch=progress.epoch, epochs=progress.total_epochs,
                                           arch=tr(f"arch_{other.config.arch}")))
    if other.place[1] > 1:
        st.caption(tr("runs_other_place", run=other.place[0], runs=other.place[1]))
    if other.stoppable_by(session_id(), session_alive):
        st.caption(tr("ft_orphan_job"))
        if st.button(tr("ft_stop_orphan"), key="ft_stop_orphan"):
            other.stop.set()


runner = server_runner()
_collect()
job: Job | None = st.session_state.get("ft_job")
config = TrainConfig(
    data=splits.source, labels=source if source in LABEL_SOURCES else "fer2013", arch=arch, arch_args=arch_args, epochs=epochs, batch_size=batch_size,
    lr=lr, optimizer=optimizer, schedule=schedule, freeze=tuple(frozen), lr_multipliers=multipliers,
    balance=balance, augment=augment_spec, amp=amp, seed=int(seed), pretrained=pretrained,
    init_checkpoint=point.init_checkpoint,  # the weights themselves come as `init`
    split_rule=split_rule, split_separator=split_separator, out=f"{arch}.pt",
)
plan = PlannedRun(start, config, source, (len(splits.train), len(splits.val)))
others = [j for j in runner.running() if j.owner != session_id()]
try:
    if not others:  # while another job holds the slot, the memory it uses is not free for this one
        check_job(config, len(splits.classes), settings(), memory, available_memory(best_device()))
except UserError as error:
    show_error(error)
    can_train = False

busy = bool(job and job.running) or bool(others)
bundled = _bundled_start(settings().hosted)
b1, b2, b3 = st.columns([1, 1, 4])
if b1.button(tr("ft_train"), type="primary", key="ft_train_button", disabled=busy or not can_train):
    try:
        _start([plan], [init], memory)
        st.rerun()  # redraw the buttons (Train off, Stop on) and switch to the live view
    except UserError as error:
        show_error(error)
if b2.button(tr("ft_stop"), key="ft_stop_button", disabled=not (job and job.running)):
    job.stop.set()
if b3.button(tr("runs_compare"), key="runs_compare_button", disabled=busy or bundled.init is None):
    try:
        plans = comparison_plan(plan, bundled)
        compare_memory, _ = _memory(bundled.arch, tuple(sorted(bundled.arch_args.items())), batch_size,
                                    not runner.running())
        _start(plans, inits(plans, bundled), compare_memory)
        st.rerun()
    except UserError as error:
        show_error(error)
st.caption(tr("runs_compare_help", epochs=epochs, seed=int(seed)) if bundled.init is not None
           else tr("runs_compare_unavailable"))
if others:
    st.fragment(run_every=2.0)(_other_job)(others[0])

with st.expander(tr("ft_definitions")):
    st.markdown(tr("ft_definitions_body"))
    st.latex(r"\mathrm{precision} = \frac{TP}{TP+FP},\quad \mathrm{recall} = \frac{TP}{TP+FN},\quad "
             r"F_1 = \frac{2\cdot \mathrm{precision}\cdot\mathrm{recall}}{\mathrm{precision}+\mathrm{recall}},\quad "
             r"\text{macro-}F_1 = \frac{1}{K}\sum_k F_{1,k}")


def _line(title: str, series: dict[str, tuple[list, list]], x_title: str,
          styles: dict[str, dict] | None = None) -> go.Figure:
    """Curves against iterations or epochs (whole numbers on the axis); the legend sits above the plot, clear
    of the axis title. `styles` gives a curve's other Scatter settings (its colour, dash, legend group)."""
    figure = go.Figure([go.Scatter(x=x, y=y, name=name, mode="lines+markers" if len(x) < 30 else "lines",
                                   **(styles or {}).get(name, {}))
                        for name, (x, y) in series.items()])
    last = max((max(x) for x, _ in series.values() if len(x)), default=1)
    figure.update_layout(title=dict(text=title, y=0.97, yanchor="top"), height=300,
                         margin=dict(l=10, r=10, t=75, b=10),
                         xaxis=dict(title=x_title, **(dict(tick0=1, dtick=1) if last <= 10 else {})),
                         legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0))
    return figure


def _show_progress(job: Job) -> None:
    progress = job.progress
    if job.place[1] > 1:
        number, planned = st.session_state["ft_run"]
        st.info(tr("runs_series_place", run=job.place[0], runs=job.place[1], name=_run_name(number, planned)))
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
    kept = progress.status in ("finished", "stopped") and progress.best_validation is not None  # once it ended: the epoch whose weights it kept
    validation = progress.best_validation if kept else progress.last_validation
    if validation is not None:
        metrics = validation.metrics
        st.subheader(tr("ft_best_epoch_metrics" if kept else "ft_epoch_metrics",
                        epoch=progress.best_epoch if kept else epochs_done[-1].epoch,
                        accuracy=metrics.accuracy, f1=metrics.macro_f1))
        left, right = st.columns([1, 1])
        left.dataframe({tr("ft_class"): [display_name(c, lang()) for c in metrics.per_class],
                        tr("ft_precision"): [m.precision for m in metrics.per_class.values()],
                        tr("ft_recall"): [m.recall for m in metrics.per_class.values()],
                        "F1": [m.f1 for m in metrics.per_class.values()],
                        tr("ft_support"): [m.support for m in metrics.per_class.values()]},
                       hide_index=True, key="ft_table")
        confusion_explorer(metrics.confusion, progress.classes, validation.images, validation.labels,
                           validation.probabilities, key="ft_cm", title=tr("ft_confusion"), where=right)


def live_view() -> None:
    job = st.session_state.get("ft_job")
    if job is None:
        st.caption(tr("ft_not_started"))
        return
    if _collect():  # a run ended: redraw the whole page (its buttons, the runs table and charts)
        st.rerun()
    _show_progress(job)
    if not job.running:
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
    st.fragment(run_every=1.0)(live_view)()
else:
    live_view()

# --------------------------------------------------------------------------- comparing runs

def _colour(number: int) -> str:
    """Run `number`'s colour, the same in the table and on every chart."""
    return qualitative.Plotly[(number - 1) % len(qualitative.Plotly)]


def _names(records: list[RunRecord]) -> dict[int, str]:
    """Each run's name, made unique with its number where two share one (a legend needs distinct names)."""
    names = {record.number: _run_name(record.number, record.plan) for record in records}
    shared = {name for name in names.values() if list(names.values()).count(name) > 1}
    return {number: f"{name} #{number}" if name in shared else name for number, name in names.items()}


def _runs_table(records: list[RunRecord], names: dict[int, str]) -> None:
    configs, best = [record.plan.config for record in records], [record.best for record in records]
    table = pd.DataFrame({
        "#": [record.number for record in records],
        tr("runs_col_name"): [names[record.number] for record in records],
        tr("ft_best_val"): [epoch.val_accuracy for epoch in best],
        tr("runs_col_best_epoch"): [epoch.epoch for epoch in best],
        tr("runs_col_f1"): [epoch.macro_f1 for epoch in best],
        tr("runs_col_minutes"): [record.minutes for record in records],
        tr("runs_col_status"): [tr(f"runs_status_{record.status}", count=len(record.epochs)) for record in records],
        tr("ft_arch"): [tr(f"arch_{config.arch}") for config in configs],
        tr("ft_start"): [tr(f"ft_start_{record.plan.start}") for record in records],
        tr("ft_freeze"): [", ".join(config.freeze) or "–" for config in configs],
        tr("ft_lr"): [f"{config.lr:g}" for config in configs],
        tr("ft_epochs"): [config.epochs for config in configs],
        tr("ft_batch"): [config.batch_size for config in configs],
        tr("ft_augment"): [tr(f"ft_augment_{augmentation_kind(config.augment)}") for config in configs],
        tr("ft_balance"): [tr(f"balance_{config.balance}") for config in configs],
        tr("ft_source"): [tr(f"runs_data_{record.plan.data}", train=record.plan.images[0], val=record.plan.images[1])
                          for record in records],
    })
    colours = [f"background-color: {_colour(record.number)}; color: white" for record in records]
    st.dataframe(table.style.apply(lambda _: colours, subset=["#"]), hide_index=True, key="runs_table", column_config={
        tr("ft_best_val"): st.column_config.NumberColumn(format="percent"),
        tr("runs_col_f1"): st.column_config.NumberColumn(format="%.3f"),
        tr("runs_col_minutes"): st.column_config.NumberColumn(format="%.1f")})


def _run_controls(records: list[RunRecord]) -> None:
    """A name box and a show-on-the-charts box per run, four runs a row."""
    for row in range(0, len(records), 4):
        for column, record in zip(st.columns(4), records[row:row + 4]):
            column.text_input(tr("runs_name", number=record.number), key=f"runs_name_{record.number}", max_chars=60,
                              placeholder=_default_name(record.number, record.plan), persist_state="session")
            column.checkbox(tr("runs_shown"), value=True, key=f"runs_shown_{record.number}", persist_state="session")


def _run_charts(records: list[RunRecord], names: dict[int, str]) -> None:
    """Loss, validation accuracy and macro-F1 against epoch, one colour per run on all three."""
    loss, accuracy, f1, styles = {}, {}, {}, {}
    for record in records:
        name, epochs = names[record.number], [e.epoch for e in record.epochs]
        line = dict(color=_colour(record.number))
        val_name, train_name = f"{name} · {tr('ft_split_val')}", f"{name} · {tr('ft_split_train')}"
        loss[val_name] = (epochs, [e.val_loss for e in record.epochs])
        loss[train_name] = (epochs, [e.train_loss for e in record.epochs])
        accuracy[name] = (epochs, [e.val_accuracy for e in record.epochs])
        f1[name] = (epochs, [e.macro_f1 for e in record.epochs])
        styles[name] = styles[val_name] = dict(line=line, legendgroup=str(record.number))
        styles[train_name] = dict(line=line | dict(dash="dot"), legendgroup=str(record.number))

    def chart(title: str, series: dict[str, tuple[list, list]]) -> go.Figure:
        # the legend, one or two entries a run, goes under the plot, where it may take rows without hiding the title
        return _line(title, series, tr("ft_epoch"), styles).update_layout(
            height=380, margin_t=40, title_y=0.98, showlegend=True, legend=dict(yanchor="top", y=-0.3))

    left, right = st.columns(2)
    # accuracy and F1 on one fixed scale, so that runs and charts compare at a glance
    left.plotly_chart(chart(tr("runs_chart_accuracy"), accuracy).update_layout(yaxis=dict(range=[0, 1.05], tickformat=".0%")),
                      key="runs_c_acc")
    right.plotly_chart(chart(tr("runs_chart_f1"), f1).update_layout(yaxis_range=[0, 1.05]), key="runs_c_f1")
    left.plotly_chart(chart(tr("runs_chart_loss"), loss), key="runs_c_loss")


st.header(tr("runs_title"))
kept: list[RunRecord] = st.session_state.get("runs_kept", [])
if not kept:
    st.caption(tr("runs_none"))
else:
    names = _names(kept)
    _runs_table(kept, names)
    _run_controls(kept)
    shown = [record for record in kept if st.session_state.get(f"runs_shown_{record.number}", True)]
    if shown:
        _run_charts(shown, names)
    else:
        st.caption(tr("runs_none_shown"))
