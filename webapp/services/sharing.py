"""Share links: create and revoke them, resolve a public token, and take reports about a file."""

import re
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import db
from webapp.models import Report, Share, Upload, UploadStatus, User
from webapp.models.base import utcnow
from webapp.services import audit, webhooks
from webapp.services.refusals import InvalidInput, NotFound
from webapp.services.uploads import own_upload, readable_upload, signed_download, signed_preview

_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")
MAX_SHARE_DAYS = 365
MAX_DOWNLOADS = 100_000
MIN_PASSWORD, MAX_PASSWORD = 4, 200


def create_share(user, upload_id, days=None, ip=None, password=None, max_downloads=None):
    """A new public link to one of the user's available files: optionally expiring after days, asking
    for a password, and stopping after max_downloads downloads."""
    upload = own_upload(user, upload_id, statuses=[UploadStatus.AVAILABLE])
    if days is not None and (not isinstance(days, int) or not 1 <= days <= MAX_SHARE_DAYS):
        raise InvalidInput(f"A link can last from 1 to {MAX_SHARE_DAYS} days.", "invalid_expiry")
    if max_downloads is not None and (
        isinstance(max_downloads, bool) or not isinstance(max_downloads, int) or not 1 <= max_downloads <= MAX_DOWNLOADS
    ):
        raise InvalidInput(f"A download limit is from 1 to {MAX_DOWNLOADS}.", "invalid_max_downloads")
    if password is not None and not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"A link's password has {MIN_PASSWORD} to {MAX_PASSWORD} characters.", "invalid_password")
    share = Share(
        upload_id=upload.id,
        created_by=user.id,
        expires_at=utcnow() + timedelta(days=days) if days else None,
        password_hash=hash_password(password),
        max_downloads=max_downloads,
    )
    db.session.add(share)
    db.session.flush()
    details = {"share_id": share.id, "days": days, "password": bool(password), "max_downloads": max_downloads}
    audit.record("share_created", user, "upload", upload.id, details=details, ip=ip)
    db.session.commit()
    return share


def revoke_share(user, share_id, upload_id=None, ip=None):
    """Revoke one of the user's links (it answers 404 from now on); of upload_id's when given."""
    share = None
    if isinstance(share_id, int) and 0 < share_id < 2**31:
        query = select(Share).join(Upload).where(Share.id == share_id, Upload.user_id == user.id)
        if upload_id is not None:
            query = query.where(Share.upload_id == upload_id)
        share = db.session.scalar(query)
    if share is None:
        raise NotFound()
    if share.revoked_at is None:
        share.revoked_at = utcnow()
        audit.record("share_revoked", user, "upload", share.upload_id, details={"share_id": share.id}, ip=ip)
        db.session.commit()
    return share


def shares_of(user, upload_id):
    """The links to a file the user may read (their own, or anyone's for an admin), newest first."""
    readable_upload(user, upload_id)
    return list(db.session.scalars(select(Share).where(Share.upload_id == upload_id).order_by(Share.id.desc())))


def resolve(token):
    """The live share and its file for a public token; NotFound for anything not servable."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise NotFound()
    share = db.session.scalar(select(Share).where(Share.token == token))
    if share is None or not share.is_live():
        raise NotFound()
    upload = share.upload
    owner = db.session.get(User, upload.user_id)
    if upload.status != UploadStatus.AVAILABLE.value or owner is None or owner.is_banned:
        raise NotFound()
    return share, upload


def unlock(token, password):
    """The live share behind token if password is its password; NotFound otherwise, exactly as for a
    link that does not exist (the hash is checked even then, so timing tells nothing either)."""
    try:
        share, _ = resolve(token)
    except NotFound:
        share = None
    if not password_matches(share.password_hash if share is not None else None, password):
        raise NotFound()
    return share


def hash_password(password):
    """A link's password as stored: hashed like account passwords (None for no password)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"]) if password else None


def password_matches(stored, password):
    """True if password matches the stored hash; False, at the same cost, when there is no hash (a link
    that does not exist or has no password), so that timing tells a wrong token from a wrong password."""
    matches = check_password_hash(stored or _decoy_hash(), password or "")
    return bool(stored) and matches


def _decoy_hash():
    """Checked against when a link does not exist or has no password (made once per app, with the
    app's own hash method)."""
    extensions = current_app.extensions
    if "satchel.share_decoy" not in extensions:
        method = current_app.config["PASSWORD_HASH_METHOD"]
        extensions["satchel.share_decoy"] = generate_password_hash("no link has this password", method=method)
    return extensions["satchel.share_decoy"]


def share_download_url(token):
    """A short-lived attachment URL for the file behind a public token; counts the download and
    refuses (NotFound) once the link's downloads are used up."""
    share, upload = resolve(token)
    counted = db.session.execute(
        update(Share)
        .where(Share.id == share.id, (Share.max_downloads.is_(None)) | (Share.downloads < Share.max_downloads))
        .values(downloads=Share.downloads + 1)
    )
    db.session.commit()
    if not counted.rowcount:
        raise NotFound()
    return signed_download(upload, shared=True)


def share_preview_url(token):
    """A short-lived URL of the re-encoded preview behind a public token."""
    return signed_preview(resolve(token)[1])


def report(token, reason, reporter=None, ip=None):
    """Record that someone finds the shared file abusive; it goes to the moderation queue."""
    _, upload = resolve(token)
    reason = (reason or "").strip()
    if not 3 <= len(reason) <= 1000:
        raise InvalidInput("Say in a few words (up to 1000 characters) what is wrong.", "invalid_reason")
    made = Report(upload_id=upload.id, reporter_id=getattr(reporter, "id", None), reason=reason)
    db.session.add(made)
    upload.updated_at = utcnow()  # the moderation queue puts the most recently flagged first
    audit.record("file_reported", reporter, "upload", upload.id, reason=reason, ip=ip)
    db.session.flush()
    # The reporter's words go to admins' endpoints only: the owner learns that, not what, was reported.
    webhooks.emit(
        "report.created",
        upload.id,
        {"report": {"id": made.id}},
        for_admins={"report": {"id": made.id, "reason": reason}},
    )
    db.session.commit()
