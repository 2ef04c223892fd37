"""Background training jobs, at most a few per server (one by default: a hosted demo has one GPU).

The worker thread only writes to its `Progress`; the page reads it from a fragment.
"""
from __future__ import annotations

import functools
import os
import threading
import traceback
from dataclasses import dataclass, field

from core.checkpoint import Checkpoint
from core.data import Splits
from core.errors import TrainingError, UserError
from core.train import Progress, TrainConfig, train

MAX_JOBS_VARIABLE = "FACELAB_MAX_JOBS"


@dataclass
class Job:
    config: TrainConfig
    owner: str
    progress: Progress = field(default_factory=Progress)
    stop: threading.Event = field(default_factory=threading.Event)
    failure: UserError | None = None
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class JobRunner:
    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit if limit is not None else int(os.environ.get(MAX_JOBS_VARIABLE, "1"))
        self._lock = threading.Lock()
        self._jobs: list[Job] = []

    def running(self) -> list[Job]:
        with self._lock:
            return [job for job in self._jobs if job.running]

    def start(self, config: TrainConfig, splits: Splits, owner: str, init: Checkpoint | None = None) -> Job:
        """Start a job, or raise TrainingError('err_job_busy') when the server is at its limit."""
        with self._lock:
            self._jobs = [job for job in self._jobs if job.running]
            if len(self._jobs) >= self.limit:
                raise TrainingError("err_job_busy")
            job = Job(config, owner)
            job.thread = threading.Thread(target=self._run, args=(job, splits, init), name=f"train-{owner}", daemon=True)
            self._jobs.append(job)
            job.thread.start()
        return job

    @staticmethod
    def _run(job: Job, splits: Splits, init: Checkpoint | None) -> None:
        try:
            train(job.config, splits, job.progress, job.stop, init=init)
        except UserError as error:
            job.failure = error
            job.progress.status = "failed"
        except Exception as error:  # shown on the page instead of killing the server thread silently
            job.progress.error = "".join(traceback.format_exception_only(error)).strip()
            job.progress.status = "failed"


@functools.lru_cache(maxsize=1)
def server_runner() -> JobRunner:
    """The runner every visitor of this server process shares."""
    return JobRunner()
