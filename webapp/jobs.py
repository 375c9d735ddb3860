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
