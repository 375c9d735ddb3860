"""Scheduled maintenance: expire, promote, re-queue, sweep, purge, check usage. Every task is idempotent and
safe to run on two machines at once (compare-and-set updates, deletes of what is already gone)."""

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, tuple_, update

from webapp import queue
from webapp import storage as store
from webapp.extensions import db
from webapp.models import MaintenanceRun, Upload, UploadStatus
from webapp.models.base import utcnow
from webapp.models.upload import AWAITING_VERDICT
from webapp.services import form_uploads, usage, webhooks
from webapp.services.refusals import Conflict, TooLarge
from webapp.services.uploads import assemble_multipart, assembled, mark_uploaded, queue_scan

log = logging.getLogger(__name__)

#: How many rows one run of a task handles at most (the next run takes the rest).
BATCH = 500
_IN_FLIGHT = tuple(status.value for status in AWAITING_VERDICT)


def expire_pending(now):
    """Pending uploads past their TTL: abort multipart, delete any object, release the quota."""
    counts, reclaimed = {"expired": 0}, 0
    storage = store.get_storage()
    # Past their TTL; or planned as multipart uploads whose storage upload never began (the process
    # died between the row's commit and storage's answer): no client ever learnt their id.
    never_begun = (
        Upload.part_count.is_not(None)
        & Upload.multipart_upload_id.is_(None)
        & (Upload.created_at < now - timedelta(seconds=current_app.config["UPLOAD_URL_TTL"]))
    )
    stale = db.session.scalars(
        select(Upload)
        .where(Upload.status == UploadStatus.PENDING.value, (Upload.expires_at < now) | never_begun)
        .limit(BATCH)
    ).all()
    for upload in stale:
        result = db.session.execute(
            update(Upload)
            .where(Upload.id == upload.id, Upload.status == UploadStatus.PENDING.value)
            .values(status=UploadStatus.EXPIRED.value, reason="expired", updated_at=now)
        )
        db.session.commit()
        if not result.rowcount:
            continue  # completed or deleted meanwhile
        if upload.multipart_upload_id:
            storage.abort_multipart(upload.incoming_key, upload.multipart_upload_id)
        reclaimed += _delete_counted(storage, upload.incoming_key)
        counts["expired"] += 1
    return counts, reclaimed


def promote_pending(now):
    """Pending uploads whose bytes arrived but whose browser never called complete: scan them.

    A single PUT counts once its object is there, and a form upload once its object is there (taking
    its size and name from it). A multipart upload counts once storage holds every
    part with the size its plan gives it and no part arrived within UPLOAD_URL_TTL (its client has
    gone quiet); it is then assembled and checked exactly as `complete` would, and scanned once.
    """
    counts = {"promoted": 0}
    storage = store.get_storage()
    settled = now - timedelta(seconds=current_app.config["UPLOAD_URL_TTL"])
    for upload in _settled_pending(settled):
        if upload.via_form:
            counts["promoted"] += _adopt_form_upload(upload)
            continue
        if upload.multipart_upload_id:
            arrived = _assemble_if_quiet(storage, upload, settled)
        else:
            arrived = storage.exists(upload.incoming_key)
        if arrived and mark_uploaded(upload.id):
            counts["promoted"] += 1
    return counts, 0


def _settled_pending(settled):
    """Every pending upload created before settled, a page of BATCH at a time (keyset on created_at,
    id), so that old ones still waiting for their parts never hide newer ones whose bytes arrived."""
    after = None
    while True:
        query = select(Upload).where(Upload.status == UploadStatus.PENDING.value, Upload.created_at < settled)
        if after is not None:
            query = query.where(tuple_(Upload.created_at, Upload.id) > after)
        page = db.session.scalars(query.order_by(Upload.created_at, Upload.id).limit(BATCH)).all()
        yield from page
        if len(page) < BATCH:
            return
        after = (page[-1].created_at, page[-1].id)


def _adopt_form_upload(upload):
    """A form upload whose browser never came back from storage's redirect: 1 if adopted."""
    try:
        return int(form_uploads.adopt(upload))
    except TooLarge:
        return 0  # refused and deleted


def _assemble_if_quiet(storage, upload, settled):
    """Assemble a multipart upload whose parts are all in storage and quiet since settled; True if done."""
    try:
        held = storage.list_parts(upload.incoming_key, upload.multipart_upload_id)
    except store.ObjectMissing:
        return assembled(storage, upload)  # completed in storage by a call that died before its commit
    if held and max(part["modified"] for part in held) > settled:
        return False  # a client is still sending (or resuming)
    try:
        assemble_multipart(upload)
    except (Conflict, store.ObjectMissing):
        return False  # parts missing or of the wrong size: expire_pending takes it at its TTL
    return True


def abort_orphan_multipart(now):
    """Unfinished multipart uploads under incoming/ that no pending upload owns (its row expired or
    was deleted), and under files/ older than ORPHAN_GRACE: aborted, so that storage drops their parts.

    Listed before the rows are read: an upload's row is committed before its multipart upload
    begins, so one listed here without a pending row can never gain one.
    """
    counts = {"multipart_aborted": 0}
    storage = store.get_storage()
    # Under files/: copies of objects past S3_MAX_SINGLE_COPY whose worker died midway.
    grace = now - timedelta(seconds=current_app.config["ORPHAN_GRACE"])
    for item in storage.list_multipart_uploads(store.FILES + "/"):
        if item["initiated"] < grace:
            storage.abort_multipart(item["key"], item["upload_id"])
            counts["multipart_aborted"] += 1
    listed = list(storage.list_multipart_uploads(store.INCOMING + "/"))
    if not listed:
        return counts, 0
    pending = dict(
        db.session.execute(
            select(Upload.incoming_key, Upload.multipart_upload_id).where(
                Upload.status == UploadStatus.PENDING.value,
                Upload.incoming_key.in_({item["key"] for item in listed}),
            )
        ).all()
    )
    for item in listed:
        if item["key"] in pending and pending[item["key"]] in (item["upload_id"], None):
            continue  # its upload's (None: the row is recording its id right now)
        storage.abort_multipart(item["key"], item["upload_id"])
        counts["multipart_aborted"] += 1
    return counts, 0


def requeue_stuck(now):
    """Uploads waiting for a scan whose job is gone.

    An `uploaded` row whose job Redis does not know at all (the enqueue was lost, or Redis restarted
    empty) is queued at once: the job id is the upload's, so this can never run a second scan beside
    one being queued. A job that failed for good, or a `scanning` row whose worker died, waits for
    STUCK_AFTER first, so that a file that keeps failing is not retried in a tight loop.
    """
    counts = {"requeued": 0}
    quiet = now - timedelta(seconds=current_app.config["STUCK_AFTER"])
    waiting = db.session.scalars(
        select(Upload)
        .where(
            Upload.status.in_(_IN_FLIGHT), or_(Upload.updated_at < quiet, Upload.status == UploadStatus.UPLOADED.value)
        )
        .order_by(Upload.updated_at)
        .limit(BATCH)
    ).all()
    for upload in waiting:
        status = queue.scan_job_status(upload.id)
        if status in queue.LIVE_STATUSES:
            continue
        if status is not None and upload.updated_at >= quiet:
            continue
        if queue_scan(upload.id):
            counts["requeued"] += 1
    return counts, 0


def remove_late_writes(now):
    """Objects under incoming/ that no upload on its way to a verdict needs: deleted at once.

    A PUT URL stays valid for UPLOAD_URL_TTL whatever happens to its upload, so bytes can arrive
    after the file was scanned, deleted or refused. They are never scanned or served, and go within
    one run rather than after the orphan grace: an upload's row is committed before its URL exists,
    so an object listed here without a live row can never gain one.
    """
    counts, reclaimed = {"late_writes_removed": 0}, 0
    storage = store.get_storage()
    listed = list(storage.list_objects(store.INCOMING + "/"))  # listed before the rows are read: see above
    needed = set(
        db.session.scalars(
            select(Upload.incoming_key).where(
                Upload.status.in_([UploadStatus.PENDING.value, *_IN_FLIGHT])
                # quarantined before scanned copies were kept: the browser's object is still the evidence
                | ((Upload.status == UploadStatus.QUARANTINED.value) & Upload.file_key.is_(None))
            )
        )
    )
    for item in listed:
        if item["key"] not in needed:
            storage.delete(item["key"])
            counts["late_writes_removed"] += 1
            reclaimed += item["size"]
    return counts, reclaimed


def rescan_unscanned(now):
    """Files accepted while scanning was off: queue their malware scan once a scanner is configured."""
    counts = {"queued": 0}
    if current_app.config["SCANNER"] != "clamd":
        return counts, 0
    rows = db.session.execute(
        select(Upload.id, Upload.size)
        .where(Upload.status == UploadStatus.AVAILABLE.value, Upload.unscanned.is_(True))
        .limit(BATCH)
    ).all()
    for upload_id, size in rows:
        if queue.enqueue_rescan(upload_id, size):
            counts["queued"] += 1
    return counts, 0


def _referenced_keys(prefix):
    if prefix == store.DERIVATIVES:
        return _referenced_keys_of(prefix, Upload.thumbnail_key) | _referenced_keys_of(prefix, Upload.shared_key)
    column = {store.INCOMING: Upload.incoming_key, store.FILES: Upload.file_key}[prefix]
    return _referenced_keys_of(prefix, column)


def _referenced_keys_of(prefix, column):
    # Quarantined files keep their scanned copy under files/ (older ones, the browser's object).
    live = (
        (UploadStatus.PENDING, UploadStatus.UPLOADED, UploadStatus.SCANNING, UploadStatus.QUARANTINED)
        if prefix == store.INCOMING
        else (UploadStatus.AVAILABLE, UploadStatus.QUARANTINED)
    )
    return set(
        db.session.scalars(select(column).where(column.is_not(None), Upload.status.in_([s.value for s in live])))
    )


def sweep_orphans(now):
    """Objects no live row points at, older than the grace period (a row may be on its way)."""
    counts, reclaimed = {"orphans_deleted": 0}, 0
    storage = store.get_storage()
    grace = now - timedelta(seconds=current_app.config["ORPHAN_GRACE"])
    for prefix in (store.INCOMING, store.FILES, store.DERIVATIVES):
        keep = _referenced_keys(prefix)
        for item in storage.list_objects(prefix + "/"):
            if item["key"] in keep or item["modified"] > grace:
                continue
            storage.delete(item["key"])
            counts["orphans_deleted"] += 1
            reclaimed += item["size"]
    return counts, reclaimed


def purge_removed(now):
    """Objects of deleted and removed files, after the retention period; deleted rows go too.

    Removed rows stay (their owners see what happened) with their keys cleared once purged.
    """
    counts, reclaimed = {"purged": 0}, 0
    storage = store.get_storage()
    due = now - timedelta(seconds=current_app.config["PURGE_AFTER"])
    rows = db.session.scalars(
        select(Upload)
        .where(
            Upload.updated_at < due,
            (Upload.status == UploadStatus.DELETED.value)
            | (
                (Upload.status == UploadStatus.REMOVED.value)
                & (Upload.file_key.is_not(None) | Upload.thumbnail_key.is_not(None) | Upload.shared_key.is_not(None))
            ),
        )
        .limit(BATCH)
    ).all()
    for upload in rows:
        if upload.multipart_upload_id and upload.status == UploadStatus.DELETED.value:
            storage.abort_multipart(upload.incoming_key, upload.multipart_upload_id)
        keys = [upload.incoming_key, upload.file_key, *upload.derived_keys]
        reclaimed += sum(_delete_counted(storage, key) for key in keys if key)
        if upload.status == UploadStatus.DELETED.value:
            db.session.delete(upload)
        else:
            upload.file_key = upload.thumbnail_key = upload.shared_key = None
        db.session.commit()
        counts["purged"] += 1
    return counts, reclaimed


def check_usage(now):
    """Recount every user's usage counters and correct those that drifted (they should never)."""
    corrected = usage.check_counters()
    return {"users_corrected": len(corrected)}, 0


def _delete_counted(storage, key):
    """Delete key; its size if it existed, else 0."""
    try:
        size = storage.head(key)["size"]
    except store.ObjectMissing:
        return 0
    storage.delete(key)
    return size


def requeue_webhooks(now):
    """Queue again webhook deliveries still pending five minutes after they were made (their job was
    lost, or Redis was down when they were made)."""
    return {"requeued": webhooks.requeue_stale(now, timedelta(minutes=5))}, 0


TASKS = {
    "expire_pending": expire_pending,
    "promote_pending": promote_pending,
    "requeue_stuck": requeue_stuck,
    "sweep_orphans": sweep_orphans,
    "abort_orphan_multipart": abort_orphan_multipart,
    "purge_removed": purge_removed,
    "remove_late_writes": remove_late_writes,
    "rescan_unscanned": rescan_unscanned,
    "check_usage": check_usage,
    "requeue_webhooks": requeue_webhooks,
}


def intervals():
    """Seconds between runs of each task: what the queue's scheduler is given."""
    config = current_app.config
    # they list the bucket or read many rows
    slow = {"sweep_orphans", "abort_orphan_multipart", "purge_removed", "check_usage"}
    return {name: config["SWEEP_INTERVAL"] if name in slow else config["MAINTENANCE_INTERVAL"] for name in TASKS}


def run_task(name, job_id=None):
    """Run one task and record what it did (a failed run is recorded too, then re-raised)."""
    if name not in TASKS:
        raise ValueError(f"unknown maintenance task {name!r}")
    run = MaintenanceRun(task=name, job_id=job_id, started_at=utcnow())
    db.session.add(run)
    db.session.commit()
    try:
        counts, reclaimed = TASKS[name](utcnow())
    except Exception as exc:
        db.session.rollback()
        run.outcome, run.error, run.finished_at = "failed", f"{type(exc).__name__}: {exc}"[:1000], utcnow()
        db.session.commit()
        raise
    run.outcome, run.counts, run.bytes_reclaimed, run.finished_at = "ok", counts, reclaimed, utcnow()
    db.session.commit()
    log.info("maintenance %s: %s, %d bytes reclaimed", name, counts, reclaimed)
    return run


def last_runs():
    """The latest run of every task (None for tasks that never ran), in task order."""
    latest = {}
    for name in TASKS:
        latest[name] = db.session.scalar(
            select(MaintenanceRun).where(MaintenanceRun.task == name).order_by(MaintenanceRun.id.desc()).limit(1)
        )
    return latest
