"""The worker process: jobs run in one long-lived process, and its supervisor keeps it alive.

Real `flask worker` commands against the test app's Redis, database, S3 and clamd.
"""

import time

import pytest
from rq import Retry
from rq.job import Job, JobStatus

from tests.processes import running_worker, wait_for_worker
from webapp.queue import SCANS, get_queue, get_redis

pytestmark = pytest.mark.slow


def wait_for_job(job, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = job.get_status(refresh=True)
        if status in (JobStatus.FINISHED, JobStatus.FAILED):
            return status
        time.sleep(0.1)
    pytest.fail(f"job {job.id} still {job.get_status()} after {timeout} s")


def test_jobs_run_one_after_another_in_the_same_worker_process(app, api, tmp_path):
    uploads = [api.upload(f"file {i}".encode(), filename=f"f{i}.txt") for i in range(3)]
    with app.app_context(), running_worker(app, tmp_path / "worker.log") as command:
        worker_pid = wait_for_worker(command, tmp_path / "worker.log")
        jobs = [get_queue(SCANS).enqueue("tests.worker_jobs.pid") for _ in range(3)]
        for job in jobs:
            assert wait_for_job(job, 30) == JobStatus.FINISHED
        assert {job.return_value() for job in jobs} == {worker_pid}
        assert worker_pid != command.pid  # the supervisor forks it once; jobs fork nothing
    assert {api.get(f"/api/uploads/{upload_id}").json["upload"]["status"] for upload_id in uploads} == {"available"}


@pytest.mark.parametrize("how", ["hang", "crash"])
def test_a_worker_process_that_hangs_or_dies_in_a_job_is_replaced_and_the_job_retried_at_once(app, tmp_path, how):
    """A job stuck past its timeout where RQ's signal cannot reach gets its worker process killed;
    a worker process that dies is replaced. Either way the job is retried at once, not after its
    heartbeat lapses (70 s)."""
    log = tmp_path / "worker.log"
    marker = tmp_path / "ran-once"
    with app.app_context(), running_worker(app, log, JOB_HANG_GRACE=1) as command:
        first = wait_for_worker(command, log)
        started = time.monotonic()
        job = get_queue(SCANS).enqueue(
            "tests.worker_jobs.misbehave_once", str(marker), how, job_timeout=1, retry=Retry(max=1)
        )
        assert wait_for_job(job, 30) == JobStatus.FINISHED
        elapsed = time.monotonic() - started
        second = wait_for_worker(command, log, other_than=first)
        assert int(marker.read_text()) == first  # the first run, in the first worker process
        assert job.return_value() == second  # the retry, in its replacement
        assert Job.fetch(job.id, connection=get_redis()).retries_left == 0
        assert elapsed < 20
        assert command.poll() is None  # the supervisor itself carries on
    text = log.read_text()
    assert ("past its timeout: killing its worker process" in text) == (how == "hang")
    assert "handed to RQ as abandoned" in text
