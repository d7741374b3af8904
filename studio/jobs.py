"""Background jobs: one long task at a time per process, its progress read by page reruns.

A retrain or a rescore takes minutes; a page cannot wait for it inside one script run.
:func:`start_job` runs the work in a thread and keeps a small shared :class:`Job` per
studio home that every rerun of the page reads to draw the progress and, at the end, the
outcome in one sentence.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from studio.config import Settings
from studio.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class Job:
    """A background job's progress, shared between its thread and the page that reads it."""

    home: str
    title: str
    step: str = "starting"
    fraction: float = 0.0
    status: str = "running"  # running, done or failed
    message: str = ""  # the outcome, one sentence (or two) for the page
    started_at: datetime = field(default_factory=datetime.now)
    finished_at: datetime | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        """Whether the job's thread is still at work."""
        return self.status == "running"

    def report(self, step: str, fraction: float) -> None:
        """Record progress; the fraction never goes back."""
        self.step, self.fraction = step, max(self.fraction, min(float(fraction), 1.0))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (for tests and scripts); True if it has ended."""
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.running


_jobs: dict[str, Job] = {}
_jobs_lock = threading.Lock()


def current_job(settings: Settings) -> Job | None:
    """The latest job started for this studio home in this process, if any."""
    return _jobs.get(str(settings.home))


def _run(job: Job, work: Callable[[Callable[[str, float], None]], str]) -> None:
    try:
        job.message = work(job.report)
        job.fraction, job.status = 1.0, "done"
    except UserError as error:
        job.message, job.status = str(error), "failed"
    except Exception as error:  # a bug: the page says so in one sentence, the log keeps it
        log.exception("%s failed", job.title)
        job.message = (f"{job.title} stopped on an unexpected error ({type(error).__name__}: "
                       f"{error}); the server log has the details.")
        job.status = "failed"
    finally:
        job.finished_at = datetime.now()


def start_job(settings: Settings, title: str,
              work: Callable[[Callable[[str, float], None]], str]) -> Job:
    """Run ``work(report)`` in a background thread; one job at a time in the process.

    ``work`` reports progress through ``report(step, fraction)`` and returns its outcome as
    a sentence. Training is CPU-bound and the machine small, so a second job is refused
    rather than queued.
    """
    with _jobs_lock:
        busy = [job for job in _jobs.values() if job.running]
        if busy:
            raise UserError(f"{busy[0].title} is still running ({busy[0].fraction:.0%} done); "
                            "wait for it to finish before starting another.")
        job = Job(str(settings.home), title)
        job.thread = threading.Thread(target=_run, args=(job, work), daemon=True,
                                      name=f"studio-job-{title}")
        _jobs[job.home] = job
        job.thread.start()
    return job
