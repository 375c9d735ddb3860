"""RQ entry points: a few lines each, load by id and call a service."""

import logging
import time
from contextlib import contextmanager, nullcontext

from flask import has_app_context
from rq import get_current_job

from webapp import logs, metrics
from webapp.extensions import db

log = logging.getLogger("satchel.job")


def _app_context():
    # Jobs run inside the app that `flask --app wsgi worker` built; they never build one themselves,
    # so the jobs depend on the app's parts and not on its factory.
    if not has_app_context():
        raise RuntimeError("Satchel's jobs run under `flask --app wsgi worker`, not a bare `rq worker`")
    return nullcontext()


@contextmanager
def _logged(job, kind, **ids):
    """Bind the job's ids (and the request's that queued it) and log one line when it ends."""
    meta = job.meta if job else {}
    with logs.scope(job_id=job.id if job else None, request_id=meta.get("request_id"), **ids):
        started = time.perf_counter()
        outcome = {"event": "job", "job": kind, "retries_left": job.retries_left if job else None}
        try:
            yield outcome
        except Exception as exc:
            outcome.update(result="error", error=type(exc).__name__)
            metrics.job_failed(kind)
            raise
        finally:
            outcome["ms"] = round((time.perf_counter() - started) * 1000, 1)
            log.info("%s job %s", kind, outcome.get("result"), extra={"fields": outcome})


def _upload_job(kind, service, upload_id, **kwargs):
    """Run service on one upload inside the worker's app, logged; the status it ends in, or None."""
    job = get_current_job()
    with _logged(job, kind, upload_id=upload_id) as outcome, _app_context():
        try:
            started = time.perf_counter()
            status = service(upload_id, **kwargs)
            if status:
                metrics.scan_took(time.perf_counter() - started)
            outcome["result"] = status.value if status else "nothing to do"
            return status.value if status else None
        finally:
            db.session.remove()


def scan_upload(upload_id):
    """Verify one upload and promote or refuse it (idempotent, safe to run twice)."""
    from webapp.services.scans import scan_upload as scan

    job = get_current_job()
    return _upload_job("scan", scan, upload_id, job_id=job.id if job else None)


def rescan_upload(upload_id):
    """Scan a file accepted while scanning was off; quarantine it if clamd flags it."""
    from webapp.services.scans import rescan_upload as rescan

    return _upload_job("rescan", rescan, upload_id)


def run_maintenance(task):
    """Run one maintenance task, then schedule its next run (even when this one failed)."""
    from webapp.queue import schedule_maintenance
    from webapp.services.maintenance import intervals, run_task

    job = get_current_job()
    with _logged(job, "maintenance", task=task) as outcome, _app_context():
        try:
            run = run_task(task, job_id=job.id if job else None)
            outcome.update(result="done", counts=run.counts, bytes_reclaimed=run.bytes_reclaimed)
            return {"counts": run.counts, "bytes_reclaimed": run.bytes_reclaimed}
        finally:
            db.session.remove()
            schedule_maintenance(intervals(), task)


def deliver_webhook(delivery_id):
    """One attempt at a webhook delivery (RQ retries it with backoff while it raises)."""
    from webapp.services.webhooks import deliver

    job = get_current_job()
    with _logged(job, "webhook", delivery_id=delivery_id) as outcome, _app_context():
        try:
            outcome["result"] = deliver(delivery_id, retries_left=job.retries_left if job else 0)
            return outcome["result"]
        finally:
            db.session.remove()
