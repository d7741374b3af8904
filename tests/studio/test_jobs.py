"""studio.jobs: one background job at a time, its progress and its outcome in one sentence."""

import threading

import pytest

from studio.errors import UserError
from studio.jobs import current_job, start_job
from tests.conftest import make_settings


def test_one_job_runs_at_a_time_and_reports_its_outcome(tmp_path):
    first, second = make_settings(tmp_path / "a"), make_settings(tmp_path / "b")
    release = threading.Event()

    def work(progress):
        progress("halfway", 0.5)
        progress("a step reported late", 0.25)
        release.wait(30)
        return "All done."

    job = start_job(first, "Slow job", work)
    try:
        with pytest.raises(UserError, match="Slow job is still running"):
            start_job(second, "Another job", lambda progress: "never")
        assert current_job(second) is None
        assert job.running and current_job(first) is job
    finally:
        release.set()
    assert job.wait(30)
    assert (job.status, job.message, job.fraction) == ("done", "All done.", 1.0)
    assert job.step == "a step reported late" and job.finished_at >= job.started_at


@pytest.mark.parametrize(("error", "expected"), [
    (UserError("The horizon is too long; choose 90."), "The horizon is too long; choose 90."),
    (ZeroDivisionError("division by zero"),
     "Broken job stopped on an unexpected error (ZeroDivisionError: division by zero); "
     "the server log has the details."),
])
def test_a_failing_job_ends_with_one_sentence(tmp_path, error, expected):
    def work(progress):
        raise error

    job = start_job(make_settings(tmp_path / "home"), "Broken job", work)
    assert job.wait(30)
    assert (job.status, job.message) == ("failed", expected)
    assert start_job(make_settings(tmp_path / "home"), "Next job",
                            lambda progress: "ok").wait(30)  # the slot is free again
