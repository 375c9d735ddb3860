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
from webapp.scanning.archives import ArchiveRejected, check_zip
from webapp.scanning.clamd import ClamdClient, ScanIncomplete, ScanLimitsExceeded, ScannerUnavailable
from webapp.scanning.filetypes import RASTER_IMAGES, SNIFF_BYTES, effective_type, sniff_type, types_consistent
from webapp.scanning.images import ImageRejected, check_image
from webapp.scanning.pdfs import PdfRejected, check_pdf
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
        .where(Upload.id == upload_id, Upload.status.in_([UploadStatus.UPLOADED.value, UploadStatus.SCANNING.value]))
        .values(
            status=UploadStatus.SCANNING.value,
            scan_token=token,
            job_id=job_id,
            updated_at=utcnow(),
            scan_failures=Upload.scan_failures + case((Upload.status == UploadStatus.SCANNING.value, 1), else_=0),
        )
    )
    db.session.commit()
    return token if result.rowcount else None


def _owned(upload_id, token):
    return update(Upload).where(
        Upload.id == upload_id, Upload.status == UploadStatus.SCANNING.value, Upload.scan_token == token
    )


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
        db.session.execute(_owned(upload_id, token).values(status=UploadStatus.UPLOADED.value, updated_at=utcnow()))
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
        _remove_everything(upload)
    return UploadStatus.REJECTED


def _remove_everything(upload):
    """A refused upload's objects: the browser's, and whatever its scan runs wrote."""
    storage = store.get_storage()
    storage.delete(upload.incoming_key)
    _remove_other_runs(upload, storage, keep=[])


def _audit_verdict(upload_id, status, reason, **details):
    """Record an upload's verdict in the audit log (caller commits, with the verdict itself)."""
    audit.record(
        "scan_verdict",
        None,
        "upload",
        upload_id,
        reason=reason,
        details={"status": status, "job_id": logs.current().get("job_id"), **details},
    )


def _finish(upload_id, token, **values):
    """Write the verdict only if this run still owns the row; True on success.

    A final status is audited in the same transaction, so each upload's verdict is recorded once.
    """
    result = db.session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.status == UploadStatus.SCANNING.value, Upload.scan_token == token)
        .values(scanned_at=utcnow(), updated_at=utcnow(), **values)
    )
    if result.rowcount and "status" in values:
        _audit_verdict(upload_id, values["status"], values.get("reason"), detected_type=values.get("detected_type"))
    db.session.commit()
    return bool(result.rowcount)


def scan_upload(upload_id, job_id=None):
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
        # reconciler); anything else counts: a bug, a job timeout, a file that breaks a parser,
        # exhausts the job's memory, or makes clamd time out or drop the stream (ScanAborted).
        transient = isinstance(exc, TRANSIENT)
        if not transient:
            log.exception("scan of upload %s failed", upload_id)
        failures = _after_failure(upload_id, token, counted=not transient)
        if failures is not None and failures >= limit:
            return _give_up(upload_id, token, failures)
        _release(upload_id, token)
        raise
    if _finish(upload_id, token, status=UploadStatus.REJECTED.value, reason="modified_during_scan"):
        _remove_everything(upload)
    return UploadStatus.REJECTED


def _run_pipeline(upload, token):
    config = current_app.config
    storage = store.get_storage()
    held = {}  # the keys this run wrote: the scanned copy, then the preview
    try:
        values = _inspect(upload, storage, config, token, held)
    except Verdict as verdict:
        # A quarantined file keeps its scanned copy, unserved, for a moderator to approve or remove.
        keep = verdict.status == UploadStatus.QUARANTINED and held.get("file_key")
        if keep:
            verdict.values["file_key"] = keep
        finished = _finish(upload.id, token, status=verdict.status.value, reason=verdict.reason, **verdict.values)
        storage.delete(*(k for k in held.values() if not (finished and k == keep)))
        if finished:
            storage.delete(upload.incoming_key)  # the verdict is on the copy: the original is not needed
            _remove_other_runs(upload, storage, keep=[keep])
        log.info("upload %s %s: %s", upload.id, verdict.status.value, verdict.reason)
        return verdict.status
    except BaseException as exc:
        storage.delete(*held.values())
        if isinstance(exc, store.PreconditionFailed):
            raise ObjectChanged() from None
        if isinstance(exc, store.ObjectMissing):
            _finish(upload.id, token, status=UploadStatus.REJECTED.value, reason="object_missing")
            return UploadStatus.REJECTED
        raise

    values.update(status=UploadStatus.AVAILABLE.value, reason=None)
    if not _finish(upload.id, token, **values):
        storage.delete(*held.values())  # another run owns the row now
        return None
    storage.delete(upload.incoming_key)
    _remove_other_runs(upload, storage, keep=list(held.values()))
    if is_blocked(values["sha256"]):
        # A moderator blocked these bytes while this scan ran (after its check): take it down.
        _take_down_blocked(upload.id, list(held.values()))
        return UploadStatus.REMOVED
    return UploadStatus.AVAILABLE


def _remove_other_runs(upload, storage, keep):
    """Delete what earlier runs of this upload wrote and left behind (a run killed mid-scan)."""
    for prefix in store.run_key_prefixes(upload.user_id, upload.id):
        storage.delete(*(key for key in storage.list_keys(prefix) if key not in keep))


def is_blocked(sha256):
    """True when a moderator put these bytes on the block list."""
    return db.session.get(BlockedHash, sha256) is not None


def _take_down_blocked(upload_id, keys):
    result = db.session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.status == UploadStatus.AVAILABLE.value)
        .values(status=UploadStatus.REMOVED.value, reason="blocked_content", updated_at=utcnow())
    )
    db.session.commit()
    if result.rowcount:
        store.get_storage().delete(*keys)


def _check_size(size, upload, config):
    """Refuse an object whose size is not the one signed, or over the limits."""
    if size > config["MAX_UPLOAD_BYTES"]:
        raise _reject("too_large")
    if size > config["SCANNER_MAX_BYTES"]:
        # Past what clamd is configured (and checked) to read whole: never streamed.
        raise _reject("too_large_to_scan")
    if size != upload.size:
        raise _reject("size_mismatch")


def _check_type(first_bytes, upload, config):
    """The allowed type libmagic finds in the first bytes, consistent with the declared one."""
    detected = sniff_type(first_bytes)
    if detected not in config["ALLOWED_TYPES"]:
        raise Verdict(UploadStatus.REJECTED, "type_not_allowed", detected_type=detected[:127])
    if not types_consistent(upload.declared_type, detected):
        raise Verdict(UploadStatus.REJECTED, "type_mismatch", detected_type=detected[:127])
    return effective_type(upload.declared_type, detected)


def _hold_copy(upload, storage, config, token, held):
    """Copy the upload to a key no upload URL can write; returns (key, its HEAD, detected type).

    Every later check reads this copy, and serving it is what promotion means: the bytes served are
    exactly the bytes scanned, whatever the browser writes to incoming/ meanwhile. An ETag is an MD5
    that a same-length collision can match, so no comparison of ETags could promise that.
    """
    head = storage.head(upload.incoming_key)
    _check_size(head["size"], upload, config)  # cheap refusals before any copy
    detected = _check_type(storage.read_range(upload.incoming_key, 0, SNIFF_BYTES, etag=head["etag"]), upload, config)
    key = held["file_key"] = store.file_key(upload.user_id, upload.id, token, config["ALLOWED_TYPES"][detected])
    storage.copy(upload.incoming_key, key, head["etag"], detected)
    head = storage.head(key)
    _check_size(head["size"], upload, config)
    if _check_type(storage.read_range(key, 0, SNIFF_BYTES, etag=head["etag"]), upload, config) != detected:
        raise ObjectChanged()  # rewritten between the first look and the copy: its key has the wrong type
    return key, head, detected


def _inspect(upload, storage, config, token, held):
    """Run every check on a private copy of the upload; returns the columns to set, or raises Verdict."""
    key, head, detected = _hold_copy(upload, storage, config, token, held)
    etag = head["etag"]

    if detected == "application/zip":
        try:
            check_zip(
                storage.open_ranged(key, head["size"], etag),
                config["ZIP_MAX_ENTRIES"],
                config["ZIP_MAX_TOTAL_BYTES"],
                config["ZIP_MAX_RATIO"],
                max_directory_bytes=config["ZIP_MAX_DIRECTORY_BYTES"],
            )
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
        for chunk in storage.iter_chunks(key, etag=etag):
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
        except ScanLimitsExceeded:
            raise _reject("scan_limits_exceeded") from None
        except ScanIncomplete:
            raise _reject("scan_incomplete") from None
    else:
        for _ in chunks():
            pass
    if received != head["size"]:
        raise store.StorageError("the object's stream ended early")

    values = {
        "etag": etag,
        "sha256": digest.hexdigest(),
        "detected_type": detected,
        # accepted without a malware scan (SCANNER=disabled): scanned once a scanner is configured
        "unscanned": config["SCANNER"] != "clamd",
    }
    if is_blocked(values["sha256"]):
        # Before the malware verdict: blocked bytes are refused outright, never queued for approval.
        raise Verdict(UploadStatus.REJECTED, "blocked_content", signature=signature and signature[:255], **values)
    if signature:
        # Kept with its hash: a moderator may approve it, or block the content.
        raise Verdict(UploadStatus.QUARANTINED, "malware", signature=signature[:255], **values)
    try:
        values["thumbnail_key"] = content_checks(upload, detected, held_bytes, storage, config, token)
    except Verdict as verdict:
        verdict.values.update(values)
        raise
    if values["thumbnail_key"]:
        held["thumbnail_key"] = values["thumbnail_key"]
    values["file_key"] = key
    return values


def content_checks(upload, detected, data, storage, config, run):
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


def rescan_upload(upload_id):
    """Malware-scan an available file that was accepted while scanning was off.

    Clean: it is marked scanned. Flagged, not read whole, or failing MAX_SCAN_FAILURES times: it is
    quarantined (unserved, kept for a moderator). Blocked bytes are taken down. Until then the file
    is not served (uploads.signed_download). Returns the status it ends in, or None.
    """
    upload = db.session.get(Upload, upload_id)
    config = current_app.config
    if (
        upload is None
        or not upload.unscanned
        or upload.status != UploadStatus.AVAILABLE.value
        or config["SCANNER"] != "clamd"
    ):
        return None
    if is_blocked(upload.sha256):
        _take_down_blocked(upload.id, [upload.file_key, upload.thumbnail_key])
        return UploadStatus.REMOVED
    try:
        signature, reason = _rescan_stream(upload, config), "malware"
    except ScanLimitsExceeded:
        signature, reason = None, "scan_limits_exceeded"
    except ScanIncomplete:
        signature, reason = None, "scan_incomplete"
    except TRANSIENT:
        raise
    except Exception:
        # The file, not a dependency, made the scan fail: count it, and stop retrying at the limit.
        log.exception("scan of unscanned upload %s failed", upload_id)
        db.session.rollback()
        db.session.execute(_unscanned(upload_id).values(scan_failures=Upload.scan_failures + 1))
        db.session.commit()
        db.session.refresh(upload)
        if upload.scan_failures < config["MAX_SCAN_FAILURES"]:
            raise
        signature, reason = None, "scan_failed"
    values = {"unscanned": False, "scanned_at": utcnow(), "updated_at": utcnow()}
    status = UploadStatus.AVAILABLE
    if signature or reason != "malware":
        status = UploadStatus.QUARANTINED
        values.update(status=status.value, reason=reason, signature=signature and signature[:255])
    result = db.session.execute(_unscanned(upload_id).values(**values))
    if result.rowcount:
        _audit_verdict(upload_id, status.value, values.get("reason"), rescan=True)
    db.session.commit()
    return status if result.rowcount else None


def _unscanned(upload_id):
    return update(Upload).where(
        Upload.id == upload_id, Upload.status == UploadStatus.AVAILABLE.value, Upload.unscanned.is_(True)
    )


def _rescan_stream(upload, config):
    """Stream the stored file through clamd; its signature name or None, checking the bytes are the
    ones accepted."""
    digest = hashlib.sha256()

    def chunks():
        for chunk in store.get_storage().iter_chunks(upload.file_key):
            digest.update(chunk)
            yield chunk

    signature = ClamdClient(config["CLAMD_URL"], timeout=config["CLAMD_TIMEOUT"]).scan_stream(chunks())
    if digest.hexdigest() != upload.sha256:
        raise store.StorageError("the stored file is not the one accepted")
    return signature
