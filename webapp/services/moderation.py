"""Moderation: the queue of flagged files and what an admin does about them, each action audited."""

import hashlib
import logging
import secrets

from flask import current_app
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from webapp import queue
from webapp import storage as store
from webapp.extensions import db
from webapp.models import BlockedHash, Report, Upload, UploadStatus, User
from webapp.models.base import utcnow
from webapp.reasons import reason_text
from webapp.services import audit, webhooks
from webapp.services.refusals import Conflict, InvalidInput, NotFound
from webapp.services.scans import ObjectChanged, checked_in_memory, content_checks, is_blocked
from webapp.services.uploads import revoke_shares

log = logging.getLogger(__name__)

FLAGGED = (UploadStatus.QUARANTINED.value, UploadStatus.REJECTED.value)
#: Statuses whose objects a removal or a block takes down.
REMOVABLE = (UploadStatus.AVAILABLE.value, UploadStatus.QUARANTINED.value, UploadStatus.REJECTED.value)
MIN_REASON = 3


def _audit(action, admin, target_type, target_id, reason, ip, **details):
    """Record an admin's action and why (the caller commits it with the action)."""
    audit.record(action, admin, target_type, target_id, reason=reason, details=details or None, ip=ip)


def _reason(text):
    text = (text or "").strip()
    if not MIN_REASON <= len(text) <= 1000:
        raise InvalidInput("Give a reason (3 to 1000 characters); it goes in the audit log.", "invalid_reason")
    return text


def _open_reports():
    return exists().where(Report.upload_id == Upload.id, Report.resolved_at.is_(None))


def moderation_queue(reason=None, before=None, limit=50):
    """Quarantined, rejected and reported files, newest first, with their owners and open reports.

    reason filters: a reason code, or "reported" for files with open reports. before is the
    (updated_at, id) of the last row shown, for the next page.
    """
    flagged = or_(Upload.status.in_(FLAGGED), and_(Upload.status == UploadStatus.AVAILABLE.value, _open_reports()))
    query = (
        select(Upload, User)
        .join(User, User.id == Upload.user_id)
        .where(flagged)
        .order_by(Upload.updated_at.desc(), Upload.id.desc())
        .limit(limit + 1)
    )
    if reason == "reported":
        query = query.where(_open_reports())
    elif reason:
        query = query.where(Upload.reason == reason)
    if before:
        stamp, upload_id = before
        query = query.where(or_(Upload.updated_at < stamp, and_(Upload.updated_at == stamp, Upload.id < upload_id)))
    rows = db.session.execute(query).all()
    page, more = rows[:limit], len(rows) > limit
    reports = {}
    if page:
        for report in db.session.scalars(
            select(Report)
            .where(Report.upload_id.in_([u.id for u, _ in page]), Report.resolved_at.is_(None))
            .order_by(Report.id)
        ):
            reports.setdefault(report.upload_id, []).append(report)
    items = [{"upload": u, "owner": owner, "reports": reports.get(u.id, [])} for u, owner in page]
    next_before = (page[-1][0].updated_at, page[-1][0].id) if more else None
    return items, next_before


def queue_reasons():
    """The reason codes present in the queue, for the filter."""
    codes = db.session.scalars(select(Upload.reason).where(Upload.status.in_(FLAGGED)).distinct())
    return sorted(c for c in codes if c)


def _resolve_reports(upload_id, resolution):
    db.session.execute(
        update(Report)
        .where(Report.upload_id == upload_id, Report.resolved_at.is_(None))
        .values(resolved_at=utcnow(), resolution=resolution)
    )


def _flagged_upload(upload_id):
    upload = db.session.get(Upload, upload_id) if isinstance(upload_id, str) else None
    if upload is None or upload.status == UploadStatus.DELETED.value:
        raise NotFound()
    return upload


def approve(admin, upload_id, reason, ip=None):
    """A quarantined file was a false positive (it becomes available); reports on a file are dismissed."""
    reason = _reason(reason)
    upload = _flagged_upload(upload_id)
    if upload.sha256 and is_blocked(upload.sha256):
        raise Conflict("These bytes are on the block list; they cannot be approved.", "blocked_content")
    if upload.status == UploadStatus.QUARANTINED.value:
        try:
            if not _promote_quarantined(upload.id):
                raise Conflict("This file changed state meanwhile; reload the page.", "state_changed")
            webhooks.emit("upload.available", upload.id, {"approved_by_moderator": True})
        except ObjectChanged:
            db.session.rollback()
            raise Conflict(
                "The stored bytes are no longer the ones scanned; the file cannot be approved.", "object_changed"
            ) from None
        except store.StorageError:
            db.session.rollback()
            raise Conflict("File storage is unreachable; try again shortly.", "storage_unavailable") from None
    elif not (upload.status == UploadStatus.AVAILABLE.value and _has_open_reports(upload.id)):
        raise Conflict("Only quarantined or reported files can be approved.", "not_flagged")
    _resolve_reports(upload.id, "approved")
    _audit("approve", admin, "upload", upload.id, reason, ip, status=upload.status, signature=upload.signature)
    db.session.commit()
    db.session.refresh(upload)
    if upload.status == UploadStatus.AVAILABLE.value and upload.file_key:
        _delete_objects(upload.incoming_key)
    return upload


def _promote_quarantined(upload_id):
    """Serve a quarantined upload a moderator judged clean: the scanned copy becomes available.

    The checks the malware verdict pre-empted run first (Conflict when the file fails one). Uploads
    quarantined before scanned copies were kept still have only the browser's object: it is copied,
    and its SHA-256 must be the one scanned (ObjectChanged otherwise).
    """
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.status != UploadStatus.QUARANTINED.value or not upload.sha256:
        return False
    config = current_app.config
    storage = store.get_storage()
    run = secrets.token_hex(8)
    own_keys = []
    try:
        key = upload.file_key or _copy_scanned_bytes(upload, storage, config, run, own_keys)
        data = None
        if checked_in_memory(upload.detected_type, config):
            data = b"".join(storage.iter_chunks(key))
        refusal, derived = content_checks(upload, upload.detected_type, data, storage, config, run)
        if refusal:
            # The scanner's flag may be a false positive; the checks it pre-empted still apply.
            raise Conflict(
                f"The file also fails another check, so it cannot be approved: {reason_text(refusal.reason)}",
                refusal.reason,
            )
        own_keys += [k for k in derived.values() if k]
        result = db.session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.status == UploadStatus.QUARANTINED.value)
            .values(
                status=UploadStatus.AVAILABLE.value,
                file_key=key,
                reason="approved_by_moderator",
                updated_at=utcnow(),
                **derived,
            )
        )
    except BaseException:
        storage.delete(*own_keys)
        raise
    if not result.rowcount:
        db.session.rollback()
        storage.delete(*own_keys)
        return False
    # a preview (or shared copy) made before a rescan quarantined it
    storage.delete(*(k for k in upload.derived_keys if k not in own_keys))
    return True


def _copy_scanned_bytes(upload, storage, config, run, own_keys):
    """Copy the browser's object to a private key and prove by SHA-256 that it holds the scanned bytes."""
    key = store.file_key(upload.user_id, upload.id, run, config["ALLOWED_TYPES"].get(upload.detected_type, "bin"))
    own_keys.append(key)
    try:
        storage.copy(upload.incoming_key, key, upload.etag, upload.detected_type, upload.size)
    except (store.PreconditionFailed, store.ObjectMissing):
        raise ObjectChanged() from None
    digest = hashlib.sha256()
    for chunk in storage.iter_chunks(key):
        digest.update(chunk)
    if digest.hexdigest() != upload.sha256:
        raise ObjectChanged()
    return key


def _has_open_reports(upload_id):
    return bool(
        db.session.scalar(
            select(func.count()).select_from(Report).where(Report.upload_id == upload_id, Report.resolved_at.is_(None))
        )
    )


def _take_down(upload, reason_code):
    """Mark an upload removed (compare-and-set), revoke its links, close its reports (caller commits).

    Returns (object keys to delete, links revoked), or None if the file stopped being live meanwhile.
    """
    keys = [upload.incoming_key, upload.file_key, *upload.derived_keys]
    result = db.session.execute(
        update(Upload)
        .where(Upload.id == upload.id, Upload.status.in_(REMOVABLE))
        .values(status=UploadStatus.REMOVED.value, reason=reason_code, updated_at=utcnow())
    )
    if not result.rowcount:
        return None
    revoked = revoke_shares(upload.id)
    _resolve_reports(upload.id, "removed")
    webhooks.emit("upload.removed", upload.id)
    return keys, revoked


def _delete_objects(*keys):
    try:
        store.get_storage().delete(*keys)
    except store.StorageError:
        # The row no longer points anyone at them; the purge job removes them once storage answers.
        log.warning("storage unreachable; objects %s left for the purge job", keys)


def remove(admin, upload_id, reason, ip=None):
    """Take a file down: its objects are deleted, its links revoked; the owner sees why."""
    reason = _reason(reason)
    upload = _flagged_upload(upload_id)
    if upload.status not in REMOVABLE:
        raise Conflict("This file is not live; there is nothing to remove.", "not_removable")
    taken = _take_down(upload, "removed_by_moderator")
    if taken is None:
        db.session.rollback()
        raise Conflict("This file changed meanwhile (its owner may have deleted it); reload the page.", "state_changed")
    keys, revoked = taken
    _audit("remove", admin, "upload", upload.id, reason, ip, owner_id=upload.user_id, shares_revoked=revoked)
    db.session.commit()
    _delete_objects(*keys)
    return upload


def block_content(admin, upload_id, reason, ip=None):
    """Put the file's SHA-256 on the block list and take down every live file with those bytes."""
    reason = _reason(reason)
    upload = _flagged_upload(upload_id)
    if not upload.sha256:
        raise Conflict("This file's SHA-256 is not known (it was refused before it was read).", "no_hash")
    _insert_block(upload.sha256, reason, admin.id)
    keys, removed = [], []
    for match in db.session.scalars(
        select(Upload).where(Upload.sha256 == upload.sha256, Upload.status.in_(REMOVABLE))
    ).all():
        taken = _take_down(match, "blocked_content")
        if taken is not None:
            keys += taken[0]
            removed.append(match.id)
    _audit("block_content", admin, "upload", upload.id, reason, ip, sha256=upload.sha256, removed=removed)
    db.session.commit()
    _delete_objects(*keys)
    return removed


def _insert_block(sha256, reason, admin_id):
    """Add a hash to the block list; another admin blocking it at the same moment is fine."""
    dialect = db.session.get_bind().dialect.name
    insert = {"postgresql": pg_insert, "sqlite": sqlite_insert}.get(dialect)
    values = {"sha256": sha256, "reason": reason, "created_by": admin_id, "created_at": utcnow()}
    if insert is not None:
        db.session.execute(insert(BlockedHash).values(**values).on_conflict_do_nothing())
    elif db.session.get(BlockedHash, sha256) is None:
        db.session.add(BlockedHash(**values))


def _user(user_id):
    user = db.session.get(User, user_id) if isinstance(user_id, int) and 0 < user_id < 2**31 else None
    if user is None:
        raise NotFound()
    return user


def ban(admin, user_id, reason, ip=None):
    """Ban an account: it cannot log in, its sessions end, its pending uploads are cancelled and
    its share links stop working."""
    reason = _reason(reason)
    user = _user(user_id)
    if user.id == admin.id:
        raise Conflict("You cannot ban yourself.", "self_ban")
    if user.is_admin:
        raise Conflict("Remove the admin role before banning an admin.", "ban_admin")
    user.is_banned = True
    user.end_sessions()
    pending = list(
        db.session.scalars(select(Upload).where(Upload.user_id == user.id, Upload.status == UploadStatus.PENDING.value))
    )
    for upload in pending:
        upload.status = UploadStatus.DELETED.value
    _audit("ban", admin, "user", user.id, reason, ip, email=user.email, pending_cancelled=len(pending))
    db.session.commit()
    _cancel_pending(pending)
    return user


def _cancel_pending(uploads):
    storage = store.get_storage()
    for upload in uploads:
        try:
            if upload.multipart_upload_id:
                storage.abort_multipart(upload.incoming_key, upload.multipart_upload_id)
            storage.delete(upload.incoming_key)
        except store.StorageError:
            log.warning("storage unreachable; pending upload %s left for the purge job", upload.id)
            continue
        db.session.delete(upload)
    db.session.commit()


def unban(admin, user_id, reason, ip=None):
    """Let a banned account back in."""
    reason = _reason(reason)
    user = _user(user_id)
    user.is_banned = False
    _audit("unban", admin, "user", user.id, reason, ip, email=user.email)
    db.session.commit()
    return user


def set_quota(admin, user_id, quota_bytes, reason, ip=None):
    """Change a user's quota (None: back to the default)."""
    reason = _reason(reason)
    user = _user(user_id)
    if quota_bytes is not None and (not isinstance(quota_bytes, int) or not 0 <= quota_bytes <= 2**62):
        raise InvalidInput("The quota must be a whole number of bytes.", "invalid_quota")
    before = user.quota_bytes
    user.quota_bytes = quota_bytes
    _audit(
        "quota_changed", admin, "user", user.id, reason, ip, **{"email": user.email, "from": before, "to": quota_bytes}
    )
    db.session.commit()
    return user


def retry_job(admin, job_id, reason, ip=None):
    """Put a failed job back on its queue, and say so in the audit log."""
    reason = _reason(reason)
    if not isinstance(job_id, str) or len(job_id) > 200 or not queue.retry_failed(job_id):
        raise Conflict("That job is not in a failed registry any more.", "not_failed")
    _audit("job_retried", admin, "job", job_id, reason, ip)
    db.session.commit()
