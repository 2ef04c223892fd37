"""Background training jobs, at most a few per server (one by default: a hosted demo has one GPU).

The worker thread only writes to its `Progress`; the page reads it from a fragment. Each job writes
its checkpoint into a folder of its own, reads it back into memory when it ends and removes the
folder, so a finished job leaves no file behind; folders of a server that died are swept at start.
A series (the page's comparison of starting points) is several jobs that one thread runs one after
another in one slot, with one Stop for them all.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from core.checkpoint import Checkpoint
from core.classes import EXPRESSION_KEYS
from core.data import Splits
from core.device import best_device
from core.errors import TrainingError, UserError
from core.limits import RateLimiter
from core.settings import Settings, settings
from core.train import Progress, TrainConfig, network_parameters, train
from models.registry import ARCHITECTURES

LOGGER = logging.getLogger(__name__)
MAX_JOBS_VARIABLE = "FACELAB_MAX_JOBS"
JOB_FOLDER_PREFIX = "facelab-job-"
JOB_FOLDER = re.compile(rf"{JOB_FOLDER_PREFIX}(\d+)-")


@dataclass
class Job:
    config: TrainConfig
    owner: str  # the session that started it
    progress: Progress = field(default_factory=Progress)
    stop: threading.Event = field(default_factory=threading.Event)
    failure: UserError | None = None
    thread: threading.Thread | None = None
    started: float | None = field(default_factory=time.monotonic)  # None while it waits for its turn in a series
    ended: float | None = None
    checkpoint: bytes | None = None  # the best checkpoint, in memory once the job has ended
    place: tuple[int, int] = (1, 1)  # (this job, jobs) in its series: "run 2 of 3"

    @property
    def running(self) -> bool:
        """Training, or waiting for its turn in a series."""
        return self.ended is None and self.thread is not None and self.thread.is_alive()

    @property
    def skipped(self) -> bool:
        """A job of a series that never started: Stop came first, or its visitor had gone."""
        return self.ended is not None and self.started is None

    @property
    def minutes(self) -> float:
        return (self.ended - self.started) / 60 if self.started is not None and self.ended is not None else 0.0

    def seconds_left(self) -> float | None:
        """When the job will end: its own estimate, or its wall-time cap if that comes first."""
        cap = (self.started + self.config.max_minutes * 60 - time.monotonic()) \
            if self.config.max_minutes and self.started is not None else math.inf
        estimate = self.progress.eta_s if self.progress.eta_s is not None else math.inf
        left = min(cap, estimate)
        return max(0.0, left) if math.isfinite(left) else None

    def stoppable_by(self, session: str, is_alive: Callable[[str], bool]) -> bool:
        """Only the session that started a job may stop it, unless that session has gone."""
        return session == self.owner or not is_alive(self.owner)


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a new job: the GPU's free memory, or what Linux reports as available."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as file:
            fields = dict(line.split(":", 1) for line in file)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def check_job(config: TrainConfig, num_classes: int, limits: Settings, batch_bytes: int,
              free_bytes: int | None) -> None:
    """TrainingError when a job would break one of the server's limits, or needs more memory than is free."""
    if limits.max_epochs is not None and config.epochs > limits.max_epochs:
        raise TrainingError("err_job_epochs", epochs=config.epochs, limit=limits.max_epochs)
    parameters = network_parameters(config.arch, config.arch_args, num_classes)
    if limits.max_parameters is not None and parameters > limits.max_parameters:
        raise TrainingError("err_job_network", millions=parameters / 1e6, limit=limits.max_parameters / 1e6)
    if limits.max_batch_mb is not None and batch_bytes > limits.max_batch_mb * 2**20:
        raise TrainingError("err_job_batch_limit", mb=batch_bytes / 2**20, limit=limits.max_batch_mb)
    if free_bytes is not None and batch_bytes > free_bytes:
        raise TrainingError("err_job_memory", mb=batch_bytes / 2**20, free=free_bytes / 2**20)


def offered_architectures(limits: Settings) -> list[str]:
    """The networks a visitor may pick: all locally, those within the network-size limit when hosted."""
    return [arch for arch in ARCHITECTURES
            if limits.max_parameters is None
            or network_parameters(arch, {}, len(EXPRESSION_KEYS)) <= limits.max_parameters]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_job_folders(root: Path | None = None) -> int:
    """Remove job folders left by server processes that no longer run; the number removed."""
    root = Path(root or tempfile.gettempdir())
    removed = 0
    for folder in root.glob(f"{JOB_FOLDER_PREFIX}*"):
        match = JOB_FOLDER.match(folder.name)
        if match and folder.is_dir() and not _pid_alive(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


class JobRunner:
    def __init__(self, limit: int | None = None, limits: Settings | None = None) -> None:
        self.limit = limit if limit is not None else int(os.environ.get(MAX_JOBS_VARIABLE, "1"))
        self.limits = limits or settings()
        self._starts = RateLimiter(self.limits.training_starts_per_hour, 3600)
        self._lock = threading.Lock()
        self._jobs: list[Job] = []

    def running(self) -> list[Job]:
        with self._lock:
            return [job for job in self._jobs if job.running]

    def start(self, config: TrainConfig, splits: Splits, owner: str, init: Checkpoint | None = None,
              batch_bytes: int = 0) -> Job:
        """Start a job within the server's limits, or raise TrainingError: the server is busy
        ('err_job_busy'), this session started too many ('err_rate_limited_train'), or a limit."""
        return self.start_series([config], splits, owner, [init], batch_bytes)[0]

    def start_series(self, configs: list[TrainConfig], splits: Splits, owner: str, inits: list[Checkpoint | None],
                     batch_bytes: int = 0, owner_alive: Callable[[str], bool] = lambda owner: True) -> list[Job]:
        """Jobs that train one after another in one slot, each counted as a start of `owner`'s and within the
        server's limits (its own wall-time cap included), all stopped by one Stop. A job whose turn comes
        after Stop, or after `owner_alive(owner)` turned false (the visitor left), is skipped."""
        free = available_memory(best_device())
        for config in configs:
            check_job(config, len(splits.classes), self.limits, batch_bytes, free)
        with self._lock:
            self._jobs = [job for job in self._jobs if job.running]
            if len({job.thread for job in self._jobs}) >= self.limit:
                raise TrainingError("err_job_busy")
            runs = len(configs)  # each run of a series counts as a start of its own
            if self._starts.count is not None and runs > self._starts.count:
                raise TrainingError("err_series_over_hourly_limit", count=self._starts.count, runs=runs)
            if not self._starts.allow(owner, runs):
                raise TrainingError("err_rate_limited_series" if runs > 1 else "err_rate_limited_train",
                                    minutes=self._starts.retry_after(owner, runs) / 60, runs=runs,
                                    count=self._starts.count)
            stop = threading.Event()
            jobs = [Job(self._capped(config), owner, stop=stop, started=None, place=(number, len(configs)))
                    for number, config in enumerate(configs, 1)]
            thread = threading.Thread(target=self._run_series, args=(jobs, splits, inits, owner_alive),
                                      name="train-job", daemon=True)
            for job in jobs:
                job.thread = thread
            self._jobs.extend(jobs)
            thread.start()
        return jobs

    def _capped(self, config: TrainConfig) -> TrainConfig:
        """The config with the server's wall-time cap, unless its own is shorter."""
        return replace(config, max_minutes=min(filter(None, (config.max_minutes, self.limits.max_job_minutes)),
                                               default=None))

    @classmethod
    def _run_series(cls, jobs: list[Job], splits: Splits, inits: list[Checkpoint | None],
                    owner_alive: Callable[[str], bool]) -> None:
        for job, init in zip(jobs, inits, strict=True):
            if job.stop.is_set() or not owner_alive(job.owner):
                job.progress.finish(stopped=True)
                job.ended = time.monotonic()
            else:
                cls._run(job, splits, init)

    @staticmethod
    def _run(job: Job, splits: Splits, init: Checkpoint | None) -> None:
        folder = Path(tempfile.mkdtemp(prefix=f"{JOB_FOLDER_PREFIX}{os.getpid()}-"))
        job.config = replace(job.config, out=str(folder / Path(job.config.out).name))
        job.started = time.monotonic()
        try:
            train(job.config, splits, job.progress, job.stop, init=init)
            best = Path(job.config.out)
            job.checkpoint = best.read_bytes() if best.exists() else None
        except UserError as error:
            job.failure = error
            job.progress.fail()
        except Exception as error:  # logged with its traceback; the visitor sees one line
            LOGGER.exception("training job failed (%s, %s)", job.config.arch, type(error).__name__)
            job.progress.fail(type(error).__name__)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            job.ended = time.monotonic()


@functools.lru_cache(maxsize=1)
def server_runner() -> JobRunner:
    """The runner every visitor of this server process shares; it first sweeps dead servers' folders."""
    sweep_job_folders()
    return JobRunner()
