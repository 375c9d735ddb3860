"""File requests: the owner makes, lists and closes them; a sender opens one and sends files through it.

A sender has no account. Their browser holds a random cookie (SENDER_COOKIE); an HMAC of it and the
request (keyed with SECRET_KEY, so the same browser is not recognisable across requests in the
database) marks what they send, and it is all they can see: the status of their own uploads through
that request. What
arrives is an upload of the owner's like any other (uploads.begin_upload), so the same presign, scan,
promotion and quota apply.
"""

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload

from webapp.extensions import db
from webapp.models import FileRequest, RequestReport, Upload, UploadStatus, User
from webapp.models.base import utcnow
from webapp.models.upload import LISTED
from webapp.services import audit, uploads
from webapp.services.refusals import Conflict, InvalidInput, NotFound
from webapp.services.sharing import MAX_PASSWORD, MIN_PASSWORD, hash_password, password_matches

_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")
_SENDER = re.compile(r"[A-Za-z0-9_-]{32,64}")
#: The cookie that tells one sending browser from another (random; only its digest is stored).
SENDER_COOKIE = "satchel_sender"
MAX_DAYS = 90
MAX_FILES = 1000
MAX_TITLE, MAX_MESSAGE = 200, 2000
MiB = 1024 * 1024


def new_sender():
    """A fresh sender cookie value (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def sender_digest(cookie, file_request):
    """What uploads through file_request record of a sender's cookie, or None for a missing or malformed one."""
    if not isinstance(cookie, str) or not _SENDER.fullmatch(cookie):
        return None
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{file_request.id}:{cookie}".encode(), hashlib.sha256).hexdigest()


def _whole(value, low, high, message, code):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(message, code)
    return value


def create_request(user, title, days, max_file_mb, max_files, message=None, password=None, ip=None):
    """A new request of the user's, open for days, taking up to max_files files of max_file_mb MiB each."""
    title = " ".join((title or "").split())
    if not 1 <= len(title) <= MAX_TITLE:
        raise InvalidInput(f"Give the request a title of up to {MAX_TITLE} characters.", "invalid_title")
    message = (message or "").strip() or None
    if message is not None and len(message) > MAX_MESSAGE:
        raise InvalidInput(f"Keep the message to {MAX_MESSAGE} characters.", "invalid_message")
    days = _whole(days, 1, MAX_DAYS, f"A request stays open from 1 to {MAX_DAYS} days.", "invalid_expiry")
    largest = uploads.max_file_bytes()
    max_file_mb = _whole(
        max_file_mb,
        1,
        max(1, largest // MiB),
        f"The largest file can be from 1 to {largest // MiB} MiB.",
        "invalid_max_size",
    )
    max_files = _whole(max_files, 1, MAX_FILES, f"A request takes from 1 to {MAX_FILES} files.", "invalid_max_files")
    if password is not None and not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters.", "invalid_password")
    file_request = FileRequest(
        user_id=user.id,
        title=title,
        message=message,
        max_file_bytes=min(max_file_mb * MiB, largest),
        max_files=max_files,
        password_hash=hash_password(password),
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(file_request)
    db.session.flush()
    details = {"title": title, "days": days, "max_file_bytes": file_request.max_file_bytes, "max_files": max_files}
    audit.record("request_created", user, "file_request", str(file_request.id), details=details, ip=ip)
    db.session.commit()
    return file_request


def requests_of(user, limit=200):
    """The user's newest requests, each with how many files it holds: [(request, count)]."""
    held = uploads.count_request_files(FileRequest.id).scalar_subquery()
    query = select(FileRequest, held).where(FileRequest.user_id == user.id).order_by(FileRequest.id.desc()).limit(limit)
    return [tuple(row) for row in db.session.execute(query)]


def own_request(user, request_id):
    """One of the user's requests, or NotFound (other people's ids do not exist)."""
    if isinstance(request_id, int) and 0 < request_id < 2**31:
        found = db.session.get(FileRequest, request_id)
        if found is not None and found.user_id == user.id:
            return found
    raise NotFound()


def files_held(file_request):
    """How many of the request's files the owner holds (what counts against its limit)."""
    return db.session.scalar(uploads.count_request_files(file_request.id))


def close_request(user, request_id, ip=None):
    """Close one of the user's requests: its link answers 404 from now on; what arrived stays."""
    file_request = own_request(user, request_id)
    _close(file_request, user, ip=ip)
    return file_request


def _close(file_request, actor, reason=None, details=None, ip=None):
    """Close a request (under its owner's row lock, which starting an upload through it takes too, so
    none slips in after), then cancel its uploads still waiting for their bytes: whatever a sender still
    holds URLs for is refused. Caller has resolved any reports (in the same transaction)."""
    uploads.lock_user(file_request.user_id)
    if file_request.closed_at is None:
        file_request.closed_at = utcnow()
        file_request.closed_by = actor.id
        audit.record(
            "request_closed", actor, "file_request", str(file_request.id), reason=reason, details=details, ip=ip
        )
    db.session.commit()
    pending = db.session.scalars(
        select(Upload).where(Upload.file_request_id == file_request.id, Upload.status == UploadStatus.PENDING.value)
    )
    for upload in list(pending):
        try:
            uploads.discard(upload, only_pending=True)
        except Conflict:
            pass  # its bytes arrived just now: a file like the others that came before the close


def resolve(token):
    """The open request behind a public token; NotFound for anything else (unknown, closed, expired, or
    its owner banned), all alike."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise NotFound()
    file_request = db.session.scalar(select(FileRequest).where(FileRequest.token == token))
    if file_request is None or not file_request.is_open():
        raise NotFound()
    owner = db.session.get(User, file_request.user_id)
    if owner is None or owner.is_banned:
        raise NotFound()
    return file_request


def unlock(token, password):
    """The open request behind token if password is its password; NotFound otherwise, exactly as for
    a request that does not exist."""
    try:
        file_request = resolve(token)
    except NotFound:
        file_request = None
    if not password_matches(file_request.password_hash if file_request is not None else None, password):
        raise NotFound()
    return file_request


def begin(file_request, sender, filename, size, content_type):
    """Start an upload through the request for the sender (a sender_digest): the owner's quota and
    pending cap (told in words that give a stranger nothing about the owner's account), the request's
    size and count limits, the sender's own pending cap."""
    if sender is None:
        raise InvalidInput("Your browser sent no sender cookie; allow cookies for this site and reload.", "no_sender")
    return uploads.begin_upload(
        file_request.owner, filename, size, content_type, file_request=file_request, sender=sender
    )


def sent_upload(file_request, sender, upload_id):
    """An upload this sender sent through this request, or NotFound."""
    upload = uploads.find_upload(upload_id)
    if sender is None or upload.file_request_id != file_request.id or upload.request_sender != sender:
        raise NotFound()
    return upload


def sent_uploads(file_request, sender, limit=100):
    """What this sender sent through this request and the owner still holds, newest first."""
    if sender is None:
        return []
    return list(
        db.session.scalars(
            select(Upload)
            .where(
                Upload.file_request_id == file_request.id,
                Upload.request_sender == sender,
                Upload.status.in_([s.value for s in LISTED]),
            )
            .order_by(Upload.created_at.desc(), Upload.id.desc())
            .limit(limit)
        )
    )


def cancel(upload):
    """A sender stops one of their uploads before its bytes are in: once sent, a file is the owner's
    (checked as the row is hidden, so a complete racing the cancel wins or loses whole)."""
    uploads.discard(upload, only_pending=True)


def report(token, reason, reporter=None, ip=None):
    """Record that someone finds the request abusive; it goes to the moderation queue."""
    file_request = resolve(token)
    reason = (reason or "").strip()
    if not 3 <= len(reason) <= 1000:
        raise InvalidInput("Say in a few words (up to 1000 characters) what is wrong.", "invalid_reason")
    db.session.add(
        RequestReport(file_request_id=file_request.id, reporter_id=getattr(reporter, "id", None), reason=reason)
    )
    audit.record("request_reported", reporter, "file_request", str(file_request.id), reason=reason, ip=ip)
    db.session.commit()


def reported_requests(limit=20, reports_each=10):
    """The requests most recently reported (open reports only), with their owners and newest reports:
    [(request, owner, [reports])]."""
    latest = (
        select(RequestReport.file_request_id, func.max(RequestReport.id).label("last"))
        .where(RequestReport.resolved_at.is_(None))
        .group_by(RequestReport.file_request_id)
        .order_by(func.max(RequestReport.id).desc())
        .limit(limit)
    )
    ids = [row.file_request_id for row in db.session.execute(latest)]
    if not ids:
        return []
    found = {
        r.id: r
        for r in db.session.scalars(
            select(FileRequest).where(FileRequest.id.in_(ids)).options(selectinload(FileRequest.owner))
        )
    }
    shown = []
    for request_id in ids:
        reports = db.session.scalars(
            select(RequestReport)
            .where(RequestReport.file_request_id == request_id, RequestReport.resolved_at.is_(None))
            .order_by(RequestReport.id.desc())
            .limit(reports_each)
        )
        shown.append((found[request_id], found[request_id].owner, list(reports)))
    return shown


def moderate(admin, request_id, action, reason, ip=None):
    """An admin closes a reported request (close) or keeps it open (dismiss); its open reports are resolved."""
    if not admin.is_admin or action not in ("close", "dismiss"):
        raise NotFound()
    file_request = db.session.get(FileRequest, request_id) if 0 < request_id < 2**31 else None
    if file_request is None:
        raise NotFound()
    open_reports = select(RequestReport.id).where(
        RequestReport.file_request_id == file_request.id, RequestReport.resolved_at.is_(None)
    )
    if db.session.scalar(open_reports.limit(1)) is None:
        raise Conflict("Nobody has reported this request (or its reports are resolved).", "not_reported")
    resolved = db.session.execute(
        update(RequestReport)
        .where(RequestReport.file_request_id == file_request.id, RequestReport.resolved_at.is_(None))
        .values(resolved_at=utcnow(), resolution="closed" if action == "close" else "dismissed")
    ).rowcount
    details = {"reports_resolved": resolved}
    if action == "close":
        _close(file_request, admin, reason=reason, details=details, ip=ip)
    else:
        audit.record("request_kept", admin, "file_request", str(file_request.id), reason=reason, details=details, ip=ip)
        db.session.commit()
    if action == "close":
        return f"Closed the request “{file_request.title}”."
    return f"Kept the request “{file_request.title}” open."
