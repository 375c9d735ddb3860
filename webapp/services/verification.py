"""The scan pipeline: check an uploaded object and promote it, or refuse it with a reason."""
import hashlib
import logging
import secrets

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import case, select, update
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from webapp import logs
from webapp import storage as store
from webapp.extensions import db
from webapp.models import BlockedHash, Upload, UploadStatus
from webapp.models.base import utcnow
from webapp.scanning import (
    RASTER_IMAGES,
    SNIFF_BYTES,
    ArchiveRejected,
    ClamdClient,
    ImageRejected,
    PdfRejected,
    ScanIncomplete,
    ScannerUnavailable,
    check_image,
    check_pdf,
    check_zip,
    effective_type,
    sniff_type,
    types_consistent,
)
from webapp.services import audit

log = logging.getLogger(__name__)

#: How often a scan restarts because the object changed under it before giving up.
MAX_CHANGED_RESTARTS = 3

#: Failures that pass (a dependency is down or restarting): not counted against the upload.
TRANSIENT = (store.StorageError, ScannerUnavailable, RedisError, OperationalError, InterfaceError)


class ObjectChanged(Exception):
    """The incoming object was rewritten while it was being scanned."""


class Verdict(Exception):
    """A final refusal: status and reason, plus what was learnt about the bytes (signature, hash)."""

    def __init__(self, status, reason, **values):
        super().__init__(reason)
        self.status, self.reason, self.values = status, reason, values


def _reject(reason):
    return Verdict(UploadStatus.REJECTED, reason)


def _claim(upload_id, job_id):
    """uploaded/scanning -> scanning with a fresh token; None if the upload needs no scan.

    Finding the row still `scanning` means the run that claimed it never finished (its worker was
    killed, or it timed out): that counts as one failed scan of this upload.
    """
    token = secrets.token_hex(8)
    result = db.session.execute(
        update(Upload)
        .where(Upload.id == upload_id,
               Upload.status.in_([UploadStatus.UPLOADED.value, UploadStatus.SCANNING.value]))
        .values(status=UploadStatus.SCANNING.value, scan_token=token, job_id=job_id, updated_at=utcnow(),
                scan_failures=Upload.scan_failures + case(
                    (Upload.status == UploadStatus.SCANNING.value, 1), else_=0)))
    db.session.commit()
    return token if result.rowcount else None


def _owned(upload_id, token):
    return update(Upload).where(Upload.id == upload_id, Upload.status == UploadStatus.SCANNING.value,
                                Upload.scan_token == token)


def _after_failure(upload_id, token, counted):
    """A run raised: count it if it is the upload's fault; the failures so far, or None if unknown."""
    try:
        db.session.rollback()
        if counted:
            db.session.execute(_owned(upload_id, token).values(scan_failures=Upload.scan_failures + 1))
            db.session.commit()
        return db.session.scalar(select(Upload.scan_failures).where(Upload.id == upload_id))
    except SQLAlchemyError:
        db.session.rollback()
        return None


def _release(upload_id, token):
    """scanning -> uploaded, so the retry's claim is not taken for a crashed run."""
    try:
        db.session.execute(_owned(upload_id, token).values(status=UploadStatus.UPLOADED.value,
                                                           updated_at=utcnow()))
        db.session.commit()
    except SQLAlchemyError:
        # The database is what failed: the row stays `scanning`, and the next claim counts it.
        log.warning("could not release the scan of %s", upload_id)
        db.session.rollback()


def _give_up(upload_id, token, failures):
    """Too many failed scans: refuse the upload (never served) instead of retrying forever."""
    log.error("upload %s rejected after %d failed scans", upload_id, failures)
    upload = db.session.get(Upload, upload_id)
    if _finish(upload_id, token, status=UploadStatus.REJECTED.value, reason="scan_failed"):
        store.get_storage().delete(upload.incoming_key)
    return UploadStatus.REJECTED


def _finish(upload_id, token, **values):
    """Write the verdict only if this run still owns the row; True on success.

    A final status is audited in the same transaction, so each upload's verdict is recorded once.
    """
    result = db.session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.status == UploadStatus.SCANNING.value,
               Upload.scan_token == token)
        .values(scanned_at=utcnow(), updated_at=utcnow(), **values))
    if result.rowcount and "status" in values:
        audit.record("scan_verdict", None, "upload", upload_id, reason=values.get("reason"),
                     details={"status": values["status"], "job_id": logs.current().get("job_id"),
                              "detected_type": values.get("detected_type")})
    db.session.commit()
    return bool(result.rowcount)


def verify_upload(upload_id, job_id=None):
    """Scan one upload end to end; returns the final status, or None if nothing was to be done.

    Transient failures (S3, clamd) raise so that RQ retries the job; the row stays unserved.
    """
    upload = db.session.get(Upload, upload_id)
    if upload is None:
        return None
    if upload.status == UploadStatus.AVAILABLE.value:
        # A previous run promoted it but may have died before removing the incoming object.
        store.get_storage().delete(upload.incoming_key)
        return None
    token = _claim(upload_id, job_id)
    if token is None:
        return None
    db.session.refresh(upload)
    limit = current_app.config["MAX_SCAN_FAILURES"]
    if upload.scan_failures >= limit:
        return _give_up(upload_id, token, upload.scan_failures)
    try:
        for _ in range(MAX_CHANGED_RESTARTS):
            try:
                return _run_pipeline(upload, token)
            except ObjectChanged:
                log.info("upload %s changed during its scan; scanning again", upload_id)
    except Exception as exc:
        # Transient failures are retried for as long as they last (RQ's backoff, then the
        # reconciler); anything else (a bug, a timeout, a file that breaks a parser) counts.
        transient = isinstance(exc, TRANSIENT)
        if not transient:
            log.exception("scan of upload %s failed", upload_id)
        failures = _after_failure(upload_id, token, counted=not transient)
        if failures is not None and failures >= limit:
            return _give_up(upload_id, token, failures)
        _release(upload_id, token)
        raise
    _finish(upload_id, token, status=UploadStatus.REJECTED.value, reason="modified_during_scan")
    return UploadStatus.REJECTED


def _run_pipeline(upload, token):
    config = current_app.config
    storage = store.get_storage()
    try:
        values = _inspect(upload, storage, config, token)
    except Verdict as verdict:
        if _finish(upload.id, token, status=verdict.status.value, reason=verdict.reason,
                   **verdict.values) and verdict.status == UploadStatus.REJECTED:
            # Refused bytes are never needed again; quarantined ones stay for moderation.
            storage.delete(upload.incoming_key)
        log.info("upload %s %s: %s", upload.id, verdict.status.value, verdict.reason)
        return verdict.status
    except store.PreconditionFailed:
        raise ObjectChanged() from None
    except store.ObjectMissing:
        _finish(upload.id, token, status=UploadStatus.REJECTED.value, reason="object_missing")
        return UploadStatus.REJECTED

    extension = config["ALLOWED_TYPES"][values["detected_type"]]
    # Each run promotes to a key of its own, so a run that lost the row (a duplicate delivery,
    # a delete) can never overwrite what the winning run promoted: it removes only its own copy.
    dest = store.file_key(upload.user_id, upload.id, token, extension)
    own_keys = [dest, values.get("thumbnail_key")]
    try:
        new_etag = storage.copy(upload.incoming_key, dest, values["etag"], values["detected_type"])
    except (store.PreconditionFailed, store.ObjectMissing):
        storage.delete(*own_keys)
        raise ObjectChanged() from None
    if values["etag"] != new_etag and "-" not in values["etag"]:
        # Endpoints that ignore CopySourceIfMatch: the copy must still be the bytes we scanned.
        storage.delete(*own_keys)
        raise ObjectChanged()
    values.update(status=UploadStatus.AVAILABLE.value, file_key=dest, reason=None)
    if not _finish(upload.id, token, **values):
        storage.delete(*own_keys)
        return None
    storage.delete(upload.incoming_key)
    if is_blocked(values["sha256"]):
        # A moderator blocked these bytes while this scan ran (after its check): take it down.
        _take_down_blocked(upload.id, own_keys)
        return UploadStatus.REMOVED
    return UploadStatus.AVAILABLE


def is_blocked(sha256):
    """True when a moderator put these bytes on the block list."""
    return db.session.get(BlockedHash, sha256) is not None


def _take_down_blocked(upload_id, keys):
    result = db.session.execute(
        update(Upload).where(Upload.id == upload_id, Upload.status == UploadStatus.AVAILABLE.value)
        .values(status=UploadStatus.REMOVED.value, reason="blocked_content", updated_at=utcnow()))
    db.session.commit()
    if result.rowcount:
        store.get_storage().delete(*keys)


def _inspect(upload, storage, config, token):
    """Run every check on the incoming object; returns the columns to set, or raises Verdict."""
    head = storage.head(upload.incoming_key)
    etag = head["etag"]
    if head["size"] > config["MAX_UPLOAD_BYTES"]:
        raise _reject("too_large")
    if head["size"] != upload.size:
        raise _reject("size_mismatch")

    first = storage.read_range(upload.incoming_key, 0, SNIFF_BYTES, etag=etag)
    detected = sniff_type(first)
    if detected not in config["ALLOWED_TYPES"]:
        raise Verdict(UploadStatus.REJECTED, "type_not_allowed", detected_type=detected[:127])
    if not types_consistent(upload.declared_type, detected):
        raise Verdict(UploadStatus.REJECTED, "type_mismatch", detected_type=detected[:127])
    detected = effective_type(upload.declared_type, detected)

    if detected == "application/zip":
        try:
            check_zip(storage.open_ranged(upload.incoming_key, head["size"], etag), config["ZIP_MAX_ENTRIES"],
                      config["ZIP_MAX_TOTAL_BYTES"], config["ZIP_MAX_RATIO"],
                      max_directory_bytes=config["ZIP_MAX_DIRECTORY_BYTES"])
        except ArchiveRejected as exc:
            raise Verdict(UploadStatus.REJECTED, exc.reason, detected_type=detected) from None

    is_image = detected in RASTER_IMAGES
    if is_image and head["size"] > config["MAX_IMAGE_BYTES"]:
        raise _reject("image_too_large")
    check_pdf_content = detected == "application/pdf" and config["PDF_ACTIVE_CONTENT"] != "allow"
    if check_pdf_content and head["size"] > config["MAX_PDF_BYTES"]:
        raise _reject("pdf_too_large_to_check")
    digest = hashlib.sha256()
    # Images and PDFs are checked in memory (both capped above); everything else only streams.
    held_bytes = bytearray() if is_image or check_pdf_content else None
    received = 0

    def chunks():
        nonlocal received
        for chunk in storage.iter_chunks(upload.incoming_key, etag=etag):
            received += len(chunk)
            digest.update(chunk)
            if held_bytes is not None:
                held_bytes.extend(chunk)
            yield chunk

    signature = None
    if config["SCANNER"] == "clamd":
        client = ClamdClient(config["CLAMD_URL"], timeout=config["CLAMD_TIMEOUT"])
        try:
            signature = client.scan_stream(chunks())
        except ScanIncomplete:
            raise _reject("scan_incomplete") from None
    else:
        for _ in chunks():
            pass
    if received != head["size"]:
        raise ObjectChanged()

    values = {"etag": etag, "sha256": digest.hexdigest(), "detected_type": detected}
    if is_blocked(values["sha256"]):
        # Before the malware verdict: blocked bytes are refused outright, never queued for approval.
        raise Verdict(UploadStatus.REJECTED, "blocked_content", signature=signature and signature[:255], **values)
    if signature:
        # Kept with its hash and ETag: a moderator may approve it, or block the content.
        raise Verdict(UploadStatus.QUARANTINED, "malware", signature=signature[:255], **values)
    try:
        values["thumbnail_key"] = _content_checks(upload, detected, held_bytes, storage, config, token)
    except Verdict as verdict:
        verdict.values.update(values)
        raise
    return values


def _content_checks(upload, detected, data, storage, config, run):
    """The checks that follow the malware verdict: PDF active content and image sanity.

    Returns the key of the preview rebuilt from an image's pixels (None for other types), or raises
    a rejecting Verdict.
    """
    if detected == "application/pdf" and config["PDF_ACTIVE_CONTENT"] != "allow":
        try:
            check_pdf(bytes(data), config["PDF_MAX_OBJECTS"], config["PDF_CHECK_SECONDS"])
        except PdfRejected as exc:
            raise _reject(exc.reason) from None
    if detected not in RASTER_IMAGES:
        return None
    try:
        thumbnail = check_image(bytes(data), config["MAX_IMAGE_PIXELS"], config["THUMBNAIL_SIZE"])
    except ImageRejected as exc:
        raise _reject(exc.reason) from None
    key = store.thumbnail_key(upload.user_id, upload.id, run)
    storage.put(key, thumbnail, "image/png")
    return key


def promote_quarantined(upload_id):
    """Serve a quarantined upload a moderator judged clean: copy the scanned bytes to files/.

    The copy is conditioned on the ETag that was scanned; bytes rewritten since are refused
    (ObjectChanged) rather than served.
    """
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.status != UploadStatus.QUARANTINED.value or not upload.etag:
        return False
    config = current_app.config
    storage = store.get_storage()
    run = secrets.token_hex(8)
    # The malware verdict came first, so the checks after it never ran: run them now (a Verdict
    # raised here means the file cannot be approved, whatever the scanner's flag was).
    data = None
    if upload.detected_type in RASTER_IMAGES or upload.detected_type == "application/pdf":
        try:
            data = b"".join(storage.iter_chunks(upload.incoming_key, etag=upload.etag))
        except (store.PreconditionFailed, store.ObjectMissing):
            raise ObjectChanged() from None
    thumbnail_key = _content_checks(upload, upload.detected_type, data, storage, config, run)
    extension = config["ALLOWED_TYPES"].get(upload.detected_type, "bin")
    dest = store.file_key(upload.user_id, upload.id, run, extension)
    own_keys = [dest, thumbnail_key]
    try:
        new_etag = storage.copy(upload.incoming_key, dest, upload.etag, upload.detected_type)
    except (store.PreconditionFailed, store.ObjectMissing):
        storage.delete(*own_keys)
        raise ObjectChanged() from None
    if new_etag != upload.etag and "-" not in upload.etag:
        storage.delete(*own_keys)
        raise ObjectChanged()
    result = db.session.execute(
        update(Upload).where(Upload.id == upload_id, Upload.status == UploadStatus.QUARANTINED.value)
        .values(status=UploadStatus.AVAILABLE.value, file_key=dest, thumbnail_key=thumbnail_key,
                reason="approved_by_moderator", updated_at=utcnow()))
    if not result.rowcount:
        db.session.rollback()
        storage.delete(*own_keys)
        return False
    return True
