"""RQ entry points: a few lines each, load by id and call a service."""
from contextlib import nullcontext

from flask import has_app_context
from rq import get_current_job

from webapp.extensions import db


def _app_context():
    # `flask worker` already runs jobs inside the app; a bare `rq worker` does not.
    if has_app_context():
        return nullcontext()
    from webapp import create_app

    return create_app().app_context()


def scan_upload(upload_id):
    """Verify one upload and promote or refuse it (idempotent, safe to run twice)."""
    from webapp.services.verification import verify_upload

    job = get_current_job()
    with _app_context():
        try:
            status = verify_upload(upload_id, job_id=job.id if job else None)
            return status.value if status else None
        finally:
            db.session.remove()


def run_maintenance(task):
    """Run one maintenance task, then schedule its next run (even when this one failed)."""
    from webapp.queue import schedule_maintenance
    from webapp.services.maintenance import run_task

    job = get_current_job()
    with _app_context():
        try:
            run = run_task(task, job_id=job.id if job else None)
            return {"counts": run.counts, "bytes_reclaimed": run.bytes_reclaimed}
        finally:
            db.session.remove()
            schedule_maintenance(task)
