"""Scheduled maintenance against real S3, Redis and the database: each task, its record, its schedule."""

import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from tests.conftest import bucket_keys
from webapp.extensions import db
from webapp.models import MaintenanceRun, Upload
from webapp.models.base import utcnow
from webapp.queue import MAINTENANCE, get_queue, schedule_maintenance
from webapp.services.maintenance import TASKS, intervals, run_task
from webapp.storage import StorageError, get_storage


def row(upload_id):
    db.session.expire_all()
    return db.session.get(Upload, upload_id)


def age(upload_id, **delta):
    """Move an upload's timestamps into the past."""
    upload = row(upload_id)
    past = utcnow() - timedelta(**delta)
    upload.created_at = upload.updated_at = past
    upload.expires_at = min(upload.expires_at, past)
    db.session.commit()


def test_expire_pending_deletes_bytes_and_releases_quota(app, api, user):
    user.quota_bytes = 100
    db.session.commit()
    grant = api.begin(size=100)
    requests.put(grant["url"], data=b"x" * 100, headers=grant["headers"], timeout=10)
    assert (
        api.post("/api/uploads", json={"filename": "b.txt", "size": 1, "content_type": "text/plain"}).status_code == 413
    )  # the pending upload holds the whole quota
    upload_id = grant["upload"]["id"]
    age(upload_id, days=2)
    run = run_task("expire_pending")
    assert run.counts == {"expired": 1} and run.bytes_reclaimed == 100 and run.outcome == "ok"
    assert (row(upload_id).status, row(upload_id).reason) == ("expired", "expired")
    assert bucket_keys(app) == []
    api.begin(size=100)  # the reservation was released
    assert run_task("expire_pending").counts == {"expired": 0}  # idempotent


def test_expire_aborts_multipart_uploads(app, api):
    app.config["MULTIPART_THRESHOLD"] = 6 * 1024 * 1024
    grant = api.begin("big.txt", 7 * 1024 * 1024, "text/plain")
    age(grant["upload"]["id"], days=2)
    run_task("expire_pending")
    assert not get_storage().client.list_multipart_uploads(Bucket=app.config["S3_BUCKET"]).get("Uploads")


def test_promote_pending_whose_browser_never_completed(app, api, run_worker):
    grant = api.begin(size=11)
    requests.put(grant["url"], data=b"hello there", headers=grant["headers"], timeout=10)
    upload_id = grant["upload"]["id"]
    assert run_task("promote_pending").counts == {"promoted": 0}  # the browser may still call complete
    upload = row(upload_id)
    upload.created_at = utcnow() - timedelta(seconds=app.config["UPLOAD_URL_TTL"] + 5)
    db.session.commit()
    never_sent = api.begin(size=5)["upload"]["id"]
    age(never_sent, seconds=app.config["UPLOAD_URL_TTL"] + 5)
    row(never_sent).expires_at = utcnow() + timedelta(hours=1)
    db.session.commit()
    assert run_task("promote_pending").counts == {"promoted": 1}
    run_worker()
    assert row(upload_id).status == "available"
    assert row(never_sent).status == "pending"


def test_requeue_an_upload_whose_job_redis_lost_at_once(app, api, run_worker):
    upload_id = api.upload(b"the job vanished")
    get_queue().empty()  # the job is gone from Redis altogether (a restart without persistence)
    assert run_task("requeue_stuck").counts == {"requeued": 1}
    assert run_task("requeue_stuck").counts == {"requeued": 0}  # its job is queued now
    run_worker()
    assert row(upload_id).status == "available"


def test_requeue_a_failed_job_only_once_it_is_stuck(app, api, run_worker):
    upload_id = api.upload(b"the job failed for good")
    queue = get_queue()
    job = queue.fetch_job(f"scan-{upload_id}")
    queue.remove(job)
    job.set_status("failed")
    assert run_task("requeue_stuck").counts == {"requeued": 0}  # too recent to call stuck
    age(upload_id, hours=1)
    assert run_task("requeue_stuck").counts == {"requeued": 1}
    assert run_task("requeue_stuck").counts == {"requeued": 0}
    run_worker()
    assert row(upload_id).status == "available"


def test_sweep_deletes_old_orphans_only(app, api, run_worker):
    storage = get_storage()
    kept = api.upload(b"a real file")
    run_worker()
    storage.put("files/999/orphan-abc.txt", b"nobody owns me", "text/plain")
    storage.put("incoming/999/orphan", b"abandoned", "text/plain")
    app.config["ORPHAN_GRACE"] = 3600
    assert run_task("sweep_orphans").counts == {"orphans_deleted": 0}  # still in the grace period
    app.config["ORPHAN_GRACE"] = -5
    time.sleep(0.01)
    run = run_task("sweep_orphans")
    assert run.counts == {"orphans_deleted": 2} and run.bytes_reclaimed == len(b"nobody owns me") + len(b"abandoned")
    assert bucket_keys(app) == [row(kept).file_key]
    assert requests.get(api.get(f"/files/{kept}/download").headers["Location"], timeout=10).content == b"a real file"


def test_purge_finishes_deletes_that_storage_refused(app, api, run_worker):
    upload_id = api.upload(b"delete me later")
    run_worker()
    upload = row(upload_id)
    upload.status = "deleted"  # as delete_upload leaves it when storage is unreachable
    db.session.commit()
    age(upload_id, hours=2)
    run = run_task("purge_removed")
    assert run.counts == {"purged": 1} and run.bytes_reclaimed == len(b"delete me later")
    assert row(upload_id) is None and bucket_keys(app) == []


def test_failed_run_is_recorded(app):
    app.config["S3_ENDPOINT_URL"] = "http://127.0.0.1:9"
    app.extensions.pop("satchel.storage", None)
    with pytest.raises(StorageError):
        run_task("sweep_orphans")
    [run] = db.session.scalars(select(MaintenanceRun)).all()
    assert run.outcome == "failed" and run.error.startswith("StorageError")


def test_scheduling_is_idempotent_across_workers(app):
    queue = get_queue(MAINTENANCE)
    # Ten seconds into tomorrow: that time and the second after it share every task's slot (no interval
    # ends between them). Taking time.time() as it came failed when the two straddled a slot's edge.
    now = (time.time() // 86400 + 1) * 86400 + 10
    first = schedule_maintenance(intervals(), now=now)
    second = schedule_maintenance(intervals(), now=now + 1)  # another worker starting a second later
    assert first == second and len(first) == len(TASKS)
    assert sorted(queue.scheduled_job_registry.get_job_ids()) == sorted(first)


def test_maintenance_job_runs_and_schedules_its_successor(app, run_worker):
    queue = get_queue(MAINTENANCE)
    queue.enqueue("webapp.jobs.run_maintenance", "expire_pending", job_id="maintenance-expire_pending-now")
    run_worker()
    [run] = db.session.scalars(select(MaintenanceRun)).all()
    assert (run.task, run.outcome, run.job_id) == ("expire_pending", "ok", "maintenance-expire_pending-now")
    assert any(j.startswith("maintenance-expire_pending-") for j in queue.scheduled_job_registry.get_job_ids())


def test_jobs_page_shows_last_runs_and_next_runs(app, make_user):
    from tests.conftest import Api

    admin = Api(app.test_client(user=make_user("boss@example.com", admin=True)))
    run_task("expire_pending")
    schedule_maintenance(intervals())
    html = admin.get("/admin/jobs").get_data(as_text=True)
    section = html.split('id="maintenance"')[1].split("</table>")[0]
    assert 'data-task="expire_pending"' in section and "expired: 0" in section
    assert "never" in section  # the other tasks have not run yet
    assert "not scheduled" not in section
