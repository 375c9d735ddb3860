"""The scan pipeline: check an uploaded object and promote it, or refuse it with a reason."""

import hashlib
import logging
import secrets
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import case, select, update
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from webapp import logs, metrics
from webapp import storage as store
from webapp.extensions import db
from webapp.models import BlockedHash, Upload, UploadStatus
from webapp.models.base import utcnow
from webapp.models.upload import FORM_TYPE
from webapp.scanning.archives import ArchiveRejected, check_zip
from webapp.scanning.clamd import ClamdClient, ScanIncomplete, ScanLimitsExceeded, ScannerUnavailable
from webapp.scanning.filetypes import RASTER_IMAGES, SNIFF_BYTES, effective_type, sniff_type, types_consistent
from webapp.scanning.images import STRIPPABLE, ImageRejected, check_image, strip_metadata
from webapp.scanning.pdfs import PdfRejected, check_pdf
from webapp.scanning.readahead import read_ahead
from webapp.services import audit, webhooks

log = logging.getLogger(__name__)

#: How often a scan restarts because the object changed under it before giving up.
MAX_CHANGED_RESTARTS = 3

#: Failures that pass (a dependency is down or restarting): not counted against the upload.
TRANSIENT = (store.StorageError, ScannerUnavailable, RedisError, OperationalError, InterfaceError)


class ObjectChanged(Exception):
    """The incoming object was rewritten while it was being scanned."""


@dataclass
class Verdict:
    """The outcome of a scan: a status, the reason for a refusal, and the columns to record."""

    status: UploadStatus
    reason: str | None = None
    values: dict = field(default_factory=dict)


def _reject(reason, **values):
    return Verdict(UploadStatus.REJECTED, reason, values)


@dataclass
class _Run:
    """One run of the pipeline over one upload: what its steps learn, in the order they learn it."""

    upload: Upload
    storage: store.Storage
    config: dict
    token: str
    held: dict = field(default_factory=dict)  # the keys this run wrote: the scanned copy, then the preview
    key: str | None = None  # the private copy every check reads
    head: dict | None = None
    detected: str | None = None
    data: bytearray | None = None  # the bytes, for the checks made in memory (images, PDFs)
    signature: str | None = None
    values: dict = field(default_factory=dict)  # the columns learnt from the bytes
    ms: dict = field(default_factory=dict)  # milliseconds per step (and the copy on its own), logged


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
    written = db.session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.status == UploadStatus.SCANNING.value, Upload.scan_token == token)
        .values(scanned_at=utcnow(), updated_at=utcnow(), **values)
        .returning(Upload.size)
    ).first()
    verdict = written is not None and "status" in values
    if verdict:
        _audit_verdict(upload_id, values["status"], values.get("reason"), detected_type=values.get("detected_type"))
        if values["status"] in webhooks.VERDICT_EVENTS:
            webhooks.emit(webhooks.VERDICT_EVENTS[values["status"]], upload_id)
    db.session.commit()
    if verdict:
        metrics.upload_finished(values["status"], values.get("reason"), written.size)
    return written is not None


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
    run = _Run(upload, store.get_storage(), current_app.config, token)
    try:
        verdict = _inspect(run)
    except BaseException as exc:
        run.storage.delete(*run.held.values())
        if isinstance(exc, store.PreconditionFailed):
            raise ObjectChanged() from None
        if isinstance(exc, store.ObjectMissing):
            _finish(upload.id, token, status=UploadStatus.REJECTED.value, reason="object_missing")
            return UploadStatus.REJECTED
        raise
    with _timed(run, "record"):
        status = _promote(run, verdict) if verdict.status == UploadStatus.AVAILABLE else _refuse(run, verdict)
    log.info(
        "scanned %s in %.0f ms",
        upload.id,
        sum(ms for name, ms in run.ms.items() if name != "copy"),
        extra={"fields": {"event": "scan_steps", "size": upload.size, "steps_ms": run.ms}},
    )
    return status


def _promote(run, verdict):
    """Serve the scanned copy: record the verdict, then remove the browser's object and older runs."""
    upload, storage, keys = run.upload, run.storage, list(run.held.values())
    if not _finish(upload.id, run.token, status=verdict.status.value, reason=None, **verdict.values):
        storage.delete(*keys)  # another run owns the row now
        return None
    storage.delete(upload.incoming_key)
    _remove_other_runs(upload, storage, keep=keys)
    if is_blocked(verdict.values["sha256"]):
        # A moderator blocked these bytes while this scan ran (after its check): take it down.
        _take_down_blocked(upload.id, keys)
        return UploadStatus.REMOVED
    return UploadStatus.AVAILABLE


def _refuse(run, verdict):
    """Record a refusal; a quarantined file keeps its scanned copy, unserved, for a moderator."""
    upload, storage = run.upload, run.storage
    keep = verdict.status == UploadStatus.QUARANTINED and run.held.get("file_key")
    if keep:
        verdict.values["file_key"] = keep
    finished = _finish(upload.id, run.token, status=verdict.status.value, reason=verdict.reason, **verdict.values)
    storage.delete(*(k for k in run.held.values() if not (finished and k == keep)))
    if finished:
        storage.delete(upload.incoming_key)  # the verdict is on the copy: the original is not needed
        _remove_other_runs(upload, storage, keep=[keep])
    log.info("upload %s %s: %s", upload.id, verdict.status.value, verdict.reason)
    return verdict.status


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


def _inspect(run):
    """Run every check on a private copy of the upload, in order; the first refusal is the verdict."""
    steps = (
        _hold_copy,
        _check_archive,
        _check_memory_caps,
        _stream_through_scanner,
        _check_block_list,
        _check_malware,
        _check_content,
    )
    for step in steps:
        with _timed(run, step.__name__.lstrip("_")):
            verdict = step(run)
        if verdict is not None:
            return verdict
    return Verdict(UploadStatus.AVAILABLE, None, dict(run.values, file_key=run.key))


@contextmanager
def _timed(run, name):
    started = time.perf_counter()
    try:
        yield
    finally:
        run.ms[name] = round((time.perf_counter() - started) * 1000, 1)


def _check_size(size, upload, config):
    """A refusal for an object whose size is not the one signed, or over the limits."""
    if size > config["MAX_UPLOAD_BYTES"]:
        return _reject("too_large")
    if size > config["SCANNER_MAX_BYTES"]:
        # Past what clamd is configured (and checked) to read whole: never streamed.
        return _reject("too_large_to_scan")
    if size != upload.size:
        return _reject("size_mismatch")
    return None


def _check_type(first_bytes, upload, config):
    """(effective type, None) for an allowed type consistent with the declared one; else (None, refusal)."""
    detected = sniff_type(first_bytes)
    if detected not in config["ALLOWED_TYPES"]:
        return None, _reject("type_not_allowed", detected_type=detected[:127])
    if not (upload.via_form and upload.declared_type == FORM_TYPE) and not types_consistent(
        upload.declared_type, detected
    ):
        return None, _reject("type_mismatch", detected_type=detected[:127])
    return effective_type(upload.declared_type, detected), None


def _hold_copy(run):
    """Copy the upload to a key no upload URL can write, and learn its HEAD and type from the copy.

    Every later check reads this copy, and serving it is what promotion means: the bytes served are
    exactly the bytes scanned, whatever the browser writes to incoming/ meanwhile. An ETag is an MD5
    that a same-length collision can match, so no comparison of ETags could promise that.
    """
    upload, storage, config = run.upload, run.storage, run.config
    head = storage.head(upload.incoming_key)
    refusal = _check_size(head["size"], upload, config)  # cheap refusals before any copy
    if refusal:
        return refusal
    first_bytes = storage.read_range(upload.incoming_key, 0, SNIFF_BYTES, etag=head["etag"])
    detected, refusal = _check_type(first_bytes, upload, config)
    if refusal:
        return refusal
    key = run.held["file_key"] = store.file_key(upload.user_id, upload.id, run.token, config["ALLOWED_TYPES"][detected])
    with _timed(run, "copy"):  # the one time the bytes move inside storage: promotion serves this copy
        storage.copy(upload.incoming_key, key, head["etag"], detected, head["size"])
    head = storage.head(key)
    refusal = _check_size(head["size"], upload, config)
    if refusal:
        return refusal
    copied_type, refusal = _check_type(storage.read_range(key, 0, SNIFF_BYTES, etag=head["etag"]), upload, config)
    if refusal:
        return refusal
    if copied_type != detected:
        raise ObjectChanged()  # rewritten between the first look and the copy: its key has the wrong type
    run.key, run.head, run.detected = key, head, detected
    return None


def _check_archive(run):
    """A ZIP's directory, read by ranges: entry count, expanded size and ratio within the limits."""
    if run.detected != "application/zip":
        return None
    config = run.config
    try:
        check_zip(
            run.storage.open_ranged(run.key, run.head["size"], run.head["etag"]),
            config["ZIP_MAX_ENTRIES"],
            config["ZIP_MAX_TOTAL_BYTES"],
            config["ZIP_MAX_RATIO"],
            max_directory_bytes=config["ZIP_MAX_DIRECTORY_BYTES"],
        )
    except ArchiveRejected as exc:
        return _reject(exc.reason, detected_type=run.detected)
    return None


def checked_in_memory(detected, config):
    """Images and PDFs (when their active content is checked) are checked in memory."""
    return detected in RASTER_IMAGES or (detected == "application/pdf" and config["PDF_ACTIVE_CONTENT"] != "allow")


def _check_memory_caps(run):
    """Refuse a file checked in memory past its cap, before any byte of it is read."""
    if not checked_in_memory(run.detected, run.config):
        return None
    if run.detected in RASTER_IMAGES:
        return _reject("image_too_large") if run.head["size"] > run.config["MAX_IMAGE_BYTES"] else None
    return _reject("pdf_too_large_to_check") if run.head["size"] > run.config["MAX_PDF_BYTES"] else None


def _stream_through_scanner(run):
    """Stream the copy once through clamd (when configured) and SHA-256, holding it if checked in memory."""
    config, etag = run.config, run.head["etag"]
    digest = hashlib.sha256()
    run.data = bytearray() if checked_in_memory(run.detected, config) else None
    received = 0

    def chunks():
        nonlocal received
        for chunk in run.storage.iter_chunks(run.key, etag=etag):
            received += len(chunk)
            digest.update(chunk)
            if run.data is not None:
                run.data.extend(chunk)
            yield chunk

    if config["SCANNER"] == "clamd":
        client = ClamdClient(config["CLAMD_URL"], timeout=config["CLAMD_TIMEOUT"])
        try:
            # S3 read (and hashed) by one thread while this one feeds clamd: the slower sets the pace.
            with closing(read_ahead(chunks())) as stream:
                run.signature = client.scan_stream(stream)
        except ScanLimitsExceeded:
            return _reject("scan_limits_exceeded")
        except ScanIncomplete:
            return _reject("scan_incomplete")
    else:
        for _ in chunks():
            pass
    if received != run.head["size"]:
        raise store.StorageError("the object's stream ended early")
    run.values = {
        "etag": etag,
        "sha256": digest.hexdigest(),
        "detected_type": run.detected,
        # accepted without a malware scan (SCANNER=disabled): scanned once a scanner is configured
        "unscanned": config["SCANNER"] != "clamd",
        "scanner_version": scanner_version(config) if config["SCANNER"] == "clamd" else None,
    }
    return None


#: clamd's VERSION line per address, with when it was read: asked at most once a minute per process.
_VERSIONS = {}
VERSION_MAX_AGE = 60


def scanner_version(config, now=None):
    """The engine and signature database clamd reports ("ClamAV 1.4.6/27000/..."), or None if it
    does not answer (the verdict stands without it)."""
    now = time.monotonic() if now is None else now
    url = config["CLAMD_URL"]
    known = _VERSIONS.get(url)
    if known and now - known[0] < VERSION_MAX_AGE:
        return known[1]
    try:
        text = ClamdClient(url, timeout=5).version().strip()[:255]
    except (ScannerUnavailable, OSError, UnicodeDecodeError):
        text = known[1] if known else None  # kept (or None) for a minute: no scan waits on it again
    _VERSIONS[url] = (now, text)
    return text


def _check_block_list(run):
    """Blocked bytes are refused outright, before the malware verdict: never queued for approval."""
    if not is_blocked(run.values["sha256"]):
        return None
    return _reject("blocked_content", signature=run.signature and run.signature[:255], **run.values)


def _check_malware(run):
    """A file clamd flags is quarantined, kept with its hash: a moderator may approve it or block it."""
    if not run.signature:
        return None
    return Verdict(UploadStatus.QUARANTINED, "malware", dict(run.values, signature=run.signature[:255]))


def _check_content(run):
    """PDF active content and image sanity; an image's preview is rebuilt from its pixels."""
    refusal, derived = content_checks(run.upload, run.detected, run.data, run.storage, run.config, run.token)
    if refusal:
        refusal.values.update(run.values)
        return refusal
    for column, key in derived.items():
        run.values[column] = key
        if key:
            run.held[column] = key
    return None


def content_checks(upload, detected, data, storage, config, run):
    """The checks that follow the malware verdict: PDF active content and image sanity.

    Returns (refusal, derived): a rejecting Verdict and {}, or None and the objects made from an
    image, by column: the preview rebuilt from its pixels (thumbnail_key) and, for JPEG, PNG and
    WebP unless STRIP_SHARED_IMAGE_METADATA is off, the copy share links serve without its
    location and camera metadata (shared_key); None for what was not made.
    """
    derived = {"thumbnail_key": None, "shared_key": None}
    if detected == "application/pdf" and config["PDF_ACTIVE_CONTENT"] != "allow":
        try:
            check_pdf(bytes(data), config["PDF_MAX_OBJECTS"], config["PDF_CHECK_SECONDS"])
        except PdfRejected as exc:
            return _reject(exc.reason), {}
    if detected not in RASTER_IMAGES:
        return None, derived
    try:
        thumbnail = check_image(bytes(data), config["MAX_IMAGE_PIXELS"], config["THUMBNAIL_SIZE"])
    except ImageRejected as exc:
        return _reject(exc.reason), {}
    derived["thumbnail_key"] = store.thumbnail_key(upload.user_id, upload.id, run)
    storage.put(derived["thumbnail_key"], thumbnail, "image/png")
    if config["STRIP_SHARED_IMAGE_METADATA"] and detected in STRIPPABLE:
        derived["shared_key"] = _shared_copy(upload, detected, data, storage, config, run)
    return None, derived


def _shared_copy(upload, detected, data, storage, config, run):
    """Store the copy share links serve; None (share links then serve nothing of it) if Pillow cannot
    write one, which is no verdict on the file."""
    try:
        stripped = strip_metadata(bytes(data), detected)
    except (OSError, ValueError, SyntaxError, EOFError):
        log.warning("no metadata-free copy of upload %s could be made", upload.id, exc_info=True)
        return None
    key = store.shared_key(upload.user_id, upload.id, run, config["ALLOWED_TYPES"][detected])
    storage.put(key, stripped, detected)
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
        _take_down_blocked(upload.id, [upload.file_key, *upload.derived_keys])
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
        if status == UploadStatus.QUARANTINED:
            webhooks.emit("upload.quarantined", upload_id, {"rescan": True})
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
