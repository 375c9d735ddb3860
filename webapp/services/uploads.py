"""Upload use cases: begin (presign), parts, complete, read, list, delete, download."""

import re
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, func, insert, select, update

from webapp import logs, queue
from webapp import storage as store
from webapp.extensions import db
from webapp.models import FileRequest, Share, Upload, UploadStatus, User
from webapp.models.base import utcnow
from webapp.models.upload import AWAITING_VERDICT, LISTED, UPLOAD_ID, new_upload_id
from webapp.scanning.filetypes import normalize_type
from webapp.scanning.images import STRIPPABLE
from webapp.services import audit, webhooks
from webapp.services.names import clean_filename, content_disposition, download_name
from webapp.services.refusals import Conflict, InvalidInput, NotFound, ServiceError, TooLarge, Unavailable

#: What S3 hands back as a part's ETag: hex, quoted or not.
_ETAG_PATTERN = re.compile(r'"?[A-Za-z0-9-]{1,100}"?')


def _storage_unavailable():
    return Unavailable("File storage is unreachable; try again shortly.", "storage_unavailable")


def parse_size(value, limit):
    """The declared size as a positive int within limit, or InvalidInput/TooLarge."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("size must be a whole number of bytes.", "invalid_size")
    if value <= 0:
        raise InvalidInput("size must be greater than zero.", "invalid_size")
    if value > limit:
        raise TooLarge(f"The file is larger than the {limit} byte limit.", "file_too_large")
    return value


def parse_content_type(value, allowed):
    """The declared type, normalised, if it is on the allowlist."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("content_type is required.", "invalid_content_type")
    mime = normalize_type(value)
    if mime not in allowed:
        raise InvalidInput(f"Files of type {mime[:100]} are not accepted.", "type_not_allowed", status=415)
    return mime


def quota_for(user):
    """Bytes the user may hold."""
    if user.quota_bytes is not None:
        return user.quota_bytes
    return current_app.config["DEFAULT_QUOTA_BYTES"]


def lock_user(user_id):
    """What the quota checks read of the user's row, locked and read afresh: quota checks per user
    are serialised on PostgreSQL, so parallel presigns cannot overbook, and see the usage counters
    as the last commit left them."""
    return db.session.execute(_LOCK_USER, {"user_id": user_id}).one()


# Built once: a statement object reused with new parameters skips SQLAlchemy's cache-key work.
_LOCK_USER = (
    select(
        User.id,
        User.is_banned,
        User.pending_uploads,
        User.quota_bytes,
        (User.bytes_held + User.bytes_reserved).label("bytes_used"),
    )
    .where(User.id == bindparam("user_id"))
    .with_for_update()
)
_INSERT_UPLOAD = insert(Upload.__table__)


def _too_many_pending(message, code="too_many_pending"):
    db.session.rollback()
    return ServiceError(message, code, status=429)


def admit(user_id, size, stranger=False):
    """Lock the user's row and check that an upload of size bytes may begin (not banned, under the
    pending cap, within quota); returns what lock_user read. Refusals roll back; for a stranger sending
    the user a file (stranger), they say nothing about the user's account."""
    owner = lock_user(user_id)
    if owner.is_banned:
        db.session.rollback()
        raise NotFound()
    pending = owner.pending_uploads
    if pending >= current_app.config["MAX_PENDING_UPLOADS"]:
        if stranger:
            raise _too_many_pending("This request is busy; try again in a few minutes.", "busy")
        raise _too_many_pending(f"You have {pending} uploads waiting for their bytes; finish or cancel some first.")
    if owner.bytes_used + size > quota_for(owner):
        db.session.rollback()
        if stranger:
            raise TooLarge("The person who asked for these files has no room for this one.", "no_room")
        raise TooLarge("This upload would take you over your storage quota.", "quota_exceeded")
    return owner


def _part_plan(size):
    """(part size, part count) when size bytes go up in parts, None for one PUT (which S3 caps at 5 GiB)."""
    config = current_app.config
    if size < config["MULTIPART_THRESHOLD"] and size <= store.MAX_PART:
        return None
    return store.part_plan(size, config["MULTIPART_PART_SIZE"])


def max_file_bytes():
    """The largest file one may upload: MAX_UPLOAD_BYTES, or less if clamd reads less whole."""
    config = current_app.config
    return min(config["MAX_UPLOAD_BYTES"], config["SCANNER_MAX_BYTES"])


def begin_upload(user, filename, size, content_type, file_request=None, sender=None):
    """Reserve quota, record a pending upload and return the URL (or multipart plan) for the bytes.

    Through a file request, user is the request's owner (whose quota it counts against), sender the
    digest of the sending browser's cookie, and the request's own size and count limits apply too.
    """
    config = current_app.config
    filename = clean_filename(filename, config["MAX_FILENAME_BYTES"])
    size = parse_size(size, config["MAX_UPLOAD_BYTES"])
    if size > config["SCANNER_MAX_BYTES"]:
        # Bytes the scanner would not read whole could never be served: refuse them up front.
        raise TooLarge(
            f"The file is larger than the {config['SCANNER_MAX_BYTES']} bytes the virus scanner can check.",
            "too_large_to_scan",
        )
    if file_request is not None and size > file_request.max_file_bytes:
        raise TooLarge(f"This request takes files of up to {file_request.max_file_bytes} bytes.", "file_too_large")
    content_type = parse_content_type(content_type, config["ALLOWED_TYPES"])
    storage = store.get_storage()

    owner = admit(user.id, size, stranger=file_request is not None)
    if file_request is not None:
        _make_room(file_request, sender)
    upload_id = new_upload_id()
    logs.bind(upload_id=upload_id)
    key = store.incoming_key(owner.id, upload_id)
    now = utcnow()
    ttl = config["UPLOAD_URL_TTL"]
    row = {
        "id": upload_id,
        "user_id": owner.id,
        "filename": filename,
        "size": size,
        "declared_type": content_type,
        "status": UploadStatus.PENDING.value,
        "incoming_key": key,
        "scan_failures": 0,
        "unscanned": False,
        "file_request_id": file_request.id if file_request is not None else None,
        "request_sender": sender,
        "created_at": now,
        "updated_at": now,
        # Through a request, bytes that do not come soon stop holding the owner's quota (and the
        # request's room) sooner.
        "expires_at": now
        + timedelta(seconds=config["REQUEST_PENDING_UPLOAD_TTL" if file_request else "PENDING_UPLOAD_TTL"]),
    }
    plan = _part_plan(size)
    result = {"method": "PUT", "expires_at": (now + timedelta(seconds=ttl)).isoformat()}
    if plan:
        row["part_size"], row["part_count"] = plan
        result["multipart"] = {"part_size": plan[0], "part_count": plan[1]}
    else:
        result["url"] = storage.presign_put(key, content_type, size, ttl)
        result["headers"] = {"Content-Type": content_type}
    try:
        # One INSERT, without the unit of work: the answer is built from the same values.
        db.session.execute(_INSERT_UPLOAD, row)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if plan:
        # The row is committed before storage's upload exists, as it is before a PUT URL exists, so
        # maintenance never finds an upload in storage whose row may still be on its way.
        row["multipart_upload_id"] = _start_multipart(upload_id, key, content_type)
    result["upload"] = Upload(**row).to_dict()
    return result


def count_request_files(request_id):
    """The query counting the files a request holds for its owner (request_id: a value or a column)."""
    return (
        select(func.count())
        .select_from(Upload)
        .where(Upload.file_request_id == request_id, Upload.status.in_([s.value for s in LISTED]))
    )


def _make_room(file_request, sender):
    """Refuse one more file through a request that was closed meanwhile, that holds as many files as it
    takes, or whose sender has too many uploads waiting for their bytes: checked under the owner's row
    lock that admit took (which closing a request takes too), so parallel senders cannot overfill it
    and nothing slips in after a close. Refusals roll back."""
    closed_at, expires_at = db.session.execute(
        select(FileRequest.closed_at, FileRequest.expires_at).where(FileRequest.id == file_request.id)
    ).one()
    if closed_at is not None or expires_at <= utcnow():
        db.session.rollback()
        raise NotFound()
    waiting = db.session.scalar(
        select(func.count())
        .select_from(Upload)
        .where(
            Upload.file_request_id == file_request.id,
            Upload.request_sender == sender,
            Upload.status == UploadStatus.PENDING.value,
        )
    )
    if waiting >= current_app.config["REQUEST_MAX_PENDING_PER_SENDER"]:
        raise _too_many_pending(f"You have {waiting} files on their way through this request; let them finish first.")
    if db.session.scalar(count_request_files(file_request.id)) >= file_request.max_files:
        db.session.rollback()
        raise Conflict(f"This request has received the {file_request.max_files} files it asked for.", "request_full")


def _start_multipart(upload_id, key, content_type):
    """Begin the multipart upload in storage for a committed row and record its id; on failure the row
    goes (and with it the quota it reserved)."""
    try:
        multipart_id = store.get_storage().create_multipart(key, content_type)
    except store.StorageError as exc:
        db.session.execute(delete(Upload).where(Upload.id == upload_id))
        db.session.commit()
        raise _storage_unavailable() from exc
    db.session.execute(update(Upload).where(Upload.id == upload_id).values(multipart_upload_id=multipart_id))
    db.session.commit()
    return multipart_id


def _lookup(upload_id, statuses, owner_id=None):
    """The live upload with this id (of owner_id when given) in one of statuses, or NotFound."""
    if not isinstance(upload_id, str) or not UPLOAD_ID.fullmatch(upload_id):
        raise NotFound()
    query = select(Upload).where(Upload.id == upload_id)
    if owner_id is not None:
        query = query.where(Upload.user_id == owner_id)
    upload = db.session.scalar(query)
    if upload is None or upload.status == UploadStatus.DELETED.value:
        raise NotFound()
    if statuses is not None and upload.status not in {s.value for s in statuses}:
        raise NotFound()
    return upload


def find_upload(upload_id):
    """The live upload with this id, whoever owns it, or NotFound: for callers that check access themselves."""
    return _lookup(upload_id, None)


def own_upload(user, upload_id, statuses=None):
    """The user's own upload, or NotFound: other people's ids do not exist, even for admins."""
    return _lookup(upload_id, statuses, owner_id=user.id)


def any_upload_for_admin(admin, upload_id, statuses=None):
    """Anyone's upload, for an admin; NotFound for everyone else."""
    if not admin.is_admin:
        raise NotFound()
    return _lookup(upload_id, statuses)


def readable_upload(user, upload_id, statuses=None):
    """An upload the user may read: their own, or anyone's for an admin."""
    lookup = any_upload_for_admin if user.is_admin else own_upload
    return lookup(user, upload_id, statuses)


def _pending_multipart(upload):
    if upload.status != UploadStatus.PENDING.value or not upload.multipart_upload_id:
        raise Conflict("This upload is not a pending multipart upload.", "not_multipart")
    return upload


def _part_length(upload, number):
    """The bytes part number of upload must hold: part_size, the last one the rest."""
    return min(upload.part_size, upload.size - (number - 1) * upload.part_size)


def _held_parts(upload):
    """The parts storage holds for a pending multipart upload; Conflict if storage dropped the upload."""
    try:
        return store.get_storage().list_parts(upload.incoming_key, upload.multipart_upload_id)
    except store.ObjectMissing as exc:
        raise Conflict("Storage no longer holds this upload; start it again.", "upload_gone") from exc
    except store.StorageError as exc:
        raise _storage_unavailable() from exc


def stored_parts(upload):
    """The parts of a pending multipart upload that storage holds, so that a client can resume."""
    upload = _pending_multipart(upload)
    return [{key: part[key] for key in ("part_number", "size", "etag")} for part in _held_parts(upload)]


def presign_parts(upload, part_numbers):
    """Signed URLs for the given parts of a pending multipart upload."""
    upload = _pending_multipart(upload)
    if (
        not isinstance(part_numbers, list)
        or not part_numbers
        or len(part_numbers) > 1000
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in part_numbers)
    ):
        raise InvalidInput("part_numbers must be a list of part numbers.", "invalid_parts")
    ttl = current_app.config["UPLOAD_URL_TTL"]
    storage = store.get_storage()
    urls = {}
    for number in part_numbers:
        if not 1 <= number <= upload.part_count:
            raise InvalidInput(f"Part {number} is out of range.", "invalid_parts")
        length = _part_length(upload, number)
        urls[str(number)] = storage.presign_part(upload.incoming_key, upload.multipart_upload_id, number, length, ttl)
    return {"parts": urls, "expires_at": (utcnow() + timedelta(seconds=ttl)).isoformat()}


def _parse_parts(parts, part_count):
    if not isinstance(parts, list) or not parts:
        raise InvalidInput("parts must list every part_number with its etag.", "invalid_parts")
    seen = {}
    for item in parts:
        if not isinstance(item, dict):
            raise InvalidInput("Each part needs a part_number and an etag.", "invalid_parts")
        number, etag = item.get("part_number"), item.get("etag")
        if (
            not isinstance(number, int)
            or isinstance(number, bool)
            or not isinstance(etag, str)
            or not _ETAG_PATTERN.fullmatch(etag)
            or not 1 <= number <= part_count
        ):
            raise InvalidInput("Each part needs a valid part_number and etag.", "invalid_parts")
        seen[number] = etag
    if sorted(seen) != list(range(1, part_count + 1)):
        raise InvalidInput(f"All {part_count} parts must be listed.", "invalid_parts")
    return sorted(seen.items())


def check_parts(upload, held):
    """The [(number, etag)] to assemble a multipart upload from, if storage holds every part with
    the size the plan gives it; Conflict naming the first part that is missing or of the wrong size."""
    by_number = {part["part_number"]: part for part in held}
    for number in range(1, upload.part_count + 1):
        part = by_number.get(number)
        if part is None:
            raise Conflict(f"Part {number} has not arrived in storage.", "part_missing")
        expected = _part_length(upload, number)
        if part["size"] != expected:
            raise Conflict(
                f"Part {number} holds {part['size']} bytes; it must hold {expected}. Send it again.",
                "part_size_mismatch",
            )
    extra = sorted(set(by_number) - set(range(1, upload.part_count + 1)))
    if extra:
        raise Conflict(f"Part {extra[0]} is beyond the upload's {upload.part_count} parts.", "invalid_parts")
    return [(number, by_number[number]["etag"]) for number in range(1, upload.part_count + 1)]


def _same_etag(a, b):
    return a.strip('"') == b.strip('"')


def assemble_multipart(upload, claimed=None):
    """Complete a pending multipart upload in storage from the parts it holds, each checked against
    the plan (and against claimed [(number, etag)] when the client sent its list). Completing one
    that storage already assembled (the browser and maintenance racing) is not an error."""
    storage = store.get_storage()
    try:
        held = storage.list_parts(upload.incoming_key, upload.multipart_upload_id)
    except store.ObjectMissing:
        if assembled(storage, upload):
            return
        raise Conflict("Storage no longer holds this upload; start it again.", "upload_gone") from None
    plan = check_parts(upload, held)
    if claimed is not None:
        for (number, etag), (_, claimed_etag) in zip(plan, claimed, strict=True):
            if not _same_etag(etag, claimed_etag):
                raise Conflict(f"Part {number} in storage is not the one you sent (its ETag differs).", "part_changed")
    try:
        storage.complete_multipart(upload.incoming_key, upload.multipart_upload_id, plan)
    except store.ObjectMissing:
        if not assembled(storage, upload):
            raise


def assembled(storage, upload):
    """True when the upload's object is there with its declared size (its multipart upload completed)."""
    try:
        return storage.head(upload.incoming_key)["size"] == upload.size
    except store.ObjectMissing:
        return False


def complete_upload(upload, parts=None):
    """Mark a pending upload uploaded once its bytes are in storage, then queue its scan.

    For a multipart upload, parts (every part's number and ETag) is checked against what storage
    holds; without it, storage's list is used as it stands.
    """
    if upload.status == UploadStatus.UPLOADED.value:
        # Completing again is harmless, and re-queues a scan whose enqueue was lost.
        queue_scan(upload.id)
        return upload
    if upload.status != UploadStatus.PENDING.value:
        return upload
    if upload.via_form:
        # Its size and name are learnt from storage when the form's redirect (or maintenance) finds it.
        raise Conflict("This upload was sent by the upload form, which completes it.", "form_upload")
    storage = store.get_storage()
    try:
        if upload.multipart_upload_id:
            claimed = None if parts is None else _parse_parts(parts, upload.part_count)
            assemble_multipart(upload, claimed)
        else:
            storage.head(upload.incoming_key)
    except store.ObjectMissing as exc:
        raise Conflict("The file's bytes have not arrived in storage yet.", "object_missing") from exc
    except store.StorageError as exc:
        raise _storage_unavailable() from exc
    mark_uploaded(upload.id)
    db.session.refresh(upload)
    return upload


def mark_uploaded(upload_id):
    """pending -> uploaded (compare-and-set), commit, then queue the scan."""
    now = utcnow()
    result = db.session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.status == UploadStatus.PENDING.value)
        .values(
            status=UploadStatus.UPLOADED.value, uploaded_at=now, updated_at=now, job_id=queue.scan_job_id(upload_id)
        )
    )
    db.session.commit()
    if result.rowcount:
        queue_scan(upload_id)
    return bool(result.rowcount)


def queue_scan(upload_id):
    """Queue an upload's scan (unless queued already); False if Redis is down.

    While fewer than SCAN_FAIR_SHARE of its owner's files that arrived before it wait for a verdict,
    it joins the scan queue in turn; past that, the backlog, which workers take only when no other
    scan waits. One user's flood of uploads thus delays the others' scans by at most that many jobs
    per flooding user.
    """
    size, user_id, uploaded_at = db.session.execute(
        select(Upload.size, Upload.user_id, Upload.uploaded_at).where(Upload.id == upload_id)
    ).one()
    ahead = db.session.scalar(
        select(func.count())
        .select_from(Upload)
        .where(
            Upload.user_id == user_id,
            Upload.status.in_([status.value for status in AWAITING_VERDICT]),
            Upload.uploaded_at < uploaded_at,
        )
    )
    return queue.enqueue_scan(upload_id, size, backlog=ahead >= current_app.config["SCAN_FAIR_SHARE"])


def delete_upload(user, upload_id, ip=None):
    """Abort one of the user's pending uploads or delete one of their files; returns its name."""
    return discard(own_upload(user, upload_id), user, ip)


def discard(upload, actor=None, ip=None, only_pending=False):
    """Abort a pending upload or delete a file: its objects first, then its row; returns its name.
    Deleting a file (not merely a pending upload) is audited as actor's. With only_pending, an upload
    whose bytes arrived meanwhile is left alone (Conflict)."""
    was = upload.status
    # Hide the row first (compare-and-set), so a scan finishing meanwhile cannot promote it;
    # only then are its keys final.
    visible = [Upload.id == upload.id, Upload.status != UploadStatus.DELETED.value]
    if only_pending:
        visible.append(Upload.status == UploadStatus.PENDING.value)
    hidden = db.session.execute(
        update(Upload).where(*visible).values(status=UploadStatus.DELETED.value, updated_at=utcnow())
    )
    if only_pending and not hidden.rowcount:
        db.session.rollback()
        raise Conflict("This file has been sent: only the request's owner can delete it now.", "already_sent")
    revoked = revoke_shares(upload.id)
    if was != UploadStatus.PENDING.value and hidden.rowcount:
        webhooks.emit("upload.deleted", upload.id, {"previous_status": was})
        audit.record(
            "file_deleted",
            actor,
            "upload",
            upload.id,
            ip=ip,
            details={"filename": upload.filename, "status": was, "shares_revoked": revoked},
        )
    db.session.commit()
    db.session.refresh(upload)
    storage = store.get_storage()
    try:
        if upload.multipart_upload_id:
            storage.abort_multipart(upload.incoming_key, upload.multipart_upload_id)
        storage.delete(upload.incoming_key, upload.file_key, *upload.derived_keys)
    except store.StorageError:
        # The row stays "deleted" (never listed or served) until storage answers again.
        current_app.logger.warning("storage unreachable while deleting %s", upload.id)
        return upload.filename
    name = upload.filename
    db.session.delete(upload)
    db.session.commit()
    return name


def own_uploads(user, upload_ids):
    """The user's own listed uploads among upload_ids (other ids, malformed or not theirs, are left out)."""
    wanted = {i for i in upload_ids if isinstance(i, str) and UPLOAD_ID.fullmatch(i)}
    if not wanted:
        return []
    return list(
        db.session.scalars(
            select(Upload)
            .where(Upload.user_id == user.id, Upload.id.in_(wanted), Upload.status.in_([s.value for s in LISTED]))
            .order_by(Upload.created_at.desc(), Upload.id.desc())
        )
    )


def rename_upload(user, upload_id, filename, ip=None):
    """Give one of the user's files a new name (shown and downloaded); the bytes and keys stay."""
    upload = own_upload(user, upload_id, statuses=[s for s in LISTED if s != UploadStatus.REMOVED])
    name = clean_filename(filename, current_app.config["MAX_FILENAME_BYTES"])
    if name != upload.filename:
        audit.record("file_renamed", user, "upload", upload.id, ip=ip, details={"from": upload.filename, "to": name})
        upload.filename = name
        db.session.commit()
    return upload


def revoke_shares(upload_id):
    """Revoke every live link to an upload (caller commits); returns how many."""
    result = db.session.execute(
        update(Share).where(Share.upload_id == upload_id, Share.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return result.rowcount


def download_url(user, upload_id):
    """A short-lived presigned GET for an available file, forced to download as an attachment."""
    return signed_download(readable_upload(user, upload_id, statuses=[UploadStatus.AVAILABLE]))


def thumbnail_url(user, upload_id):
    """A short-lived URL of the re-encoded preview of an available image."""
    return signed_preview(readable_upload(user, upload_id, statuses=[UploadStatus.AVAILABLE]))


def _servable(upload):
    """Refuse a file accepted while scanning was off, now that a scanner is there to scan it first."""
    if upload.unscanned and current_app.config["SCANNER"] == "clamd":
        raise Conflict(
            "This file was accepted while virus scanning was off and is waiting for its scan; try again shortly.",
            "awaiting_scan",
        )


def signed_download(upload, shared=False):
    """Presigned GET of an available upload's verified object, as an attachment of its detected type;
    for a share link (shared), an image's copy without its location and camera metadata when there is one."""
    _servable(upload)
    key = upload.file_key
    if shared and current_app.config["STRIP_SHARED_IMAGE_METADATA"] and upload.detected_type in STRIPPABLE:
        if not upload.shared_key:
            raise NotFound()  # no copy without its metadata (made before it was switched on): not shared
        key = upload.shared_key
    extension = upload.file_key.rsplit(".", 1)[-1]
    header = content_disposition(download_name(upload.filename, extension))
    return store.get_storage().presign_get(key, current_app.config["DOWNLOAD_URL_TTL"], header, upload.detected_type)


def signed_preview(upload):
    """Presigned GET of the re-encoded PNG preview, or NotFound when there is none."""
    if not upload.thumbnail_key:
        raise NotFound()
    _servable(upload)
    return store.get_storage().presign_get(
        upload.thumbnail_key, current_app.config["DOWNLOAD_URL_TTL"], "inline", "image/png"
    )
