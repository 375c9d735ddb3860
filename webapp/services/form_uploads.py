"""Uploads through a plain HTML form, for browsers without JavaScript.

The browser POSTs the file straight to storage under a presigned POST policy: the key is fixed, the
length bounded by what the user may still upload when the form is shown, the stored type bound to
FORM_TYPE, and storage redirects back to Satchel on success. Until then the upload's row counts
as pending but reserves no bytes (the size is unknown, and a form left open must not lock up the
quota); once the bytes are there (`adopt`, from the redirect or from maintenance) the quota is
checked against their real size, and the row takes it, the name the browser gave (S3 puts it in
x-amz-meta-filename) and the type that name implies; the scan follows as for any upload.
"""

import mimetypes
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select, update

from webapp import logs
from webapp import storage as store
from webapp.extensions import db
from webapp.models import Upload, UploadStatus, User
from webapp.models.base import utcnow
from webapp.models.upload import FORM_TYPE, new_upload_id
from webapp.scanning.filetypes import normalize_type
from webapp.services import webhooks
from webapp.services.names import clean_filename
from webapp.services.refusals import Conflict, InvalidInput, TooLarge, Unavailable
from webapp.services.uploads import admit, lock_user, mark_uploaded, max_file_bytes, own_upload, quota_for

#: How long past its form's expiry a form upload may take to arrive (a large file on a slow link).
ARRIVAL_GRACE = 3600


def begin(user):
    """A pending form upload (if the user has room for a byte more); returns its id."""
    config = current_app.config
    owner = admit(user.id, 1)
    upload_id = new_upload_id()
    logs.bind(upload_id=upload_id)
    now = utcnow()
    db.session.add(
        Upload(
            id=upload_id,
            user_id=owner.id,
            filename="upload",
            size=0,  # until the bytes arrive
            declared_type=FORM_TYPE,
            status=UploadStatus.PENDING.value,
            incoming_key=store.incoming_key(owner.id, upload_id),
            via_form=True,
            expires_at=now + timedelta(seconds=config["UPLOAD_URL_TTL"] + ARRIVAL_GRACE),
        )
    )
    db.session.commit()
    return upload_id


def pending_form_upload(user, upload_id):
    """The user's own form upload still waiting for its bytes, or NotFound / Conflict."""
    upload = own_upload(user, upload_id)
    if not upload.via_form or upload.status != UploadStatus.PENDING.value:
        raise Conflict("This upload has already arrived, or was not made by the upload form.", "not_pending")
    return upload


def room_for(user_id):
    """The most one file may hold now: the per-file limit, or what is left of the quota."""
    owner = db.session.get(User, user_id)
    return min(max_file_bytes(), quota_for(owner) - owner.bytes_used)


def form_target(upload, redirect):
    """(where the form posts and its hidden fields, valid for UPLOAD_URL_TTL; the most it may send)."""
    room = room_for(upload.user_id)
    if room < 1:
        raise TooLarge("You have no room left in your storage quota.", "quota_exceeded")
    ttl = current_app.config["UPLOAD_URL_TTL"]
    try:
        return store.get_storage().presign_post(upload.incoming_key, room, FORM_TYPE, redirect, ttl), room
    except store.StorageError as exc:
        raise Unavailable("File storage is unreachable; try again shortly.", "storage_unavailable") from exc


def return_token(upload):
    """The token storage's redirect carries back: it names this upload of this user, signed."""
    return _serializer().dumps([upload.user_id, upload.id])


def check_return_token(user, upload_id, token):
    """True when token was made by return_token for this user's upload within its lifetime."""
    config = current_app.config
    try:
        owner, named = _serializer().loads(token or "", max_age=config["UPLOAD_URL_TTL"] + ARRIVAL_GRACE)
    except (BadSignature, TypeError, ValueError):
        return False
    return owner == user.id and named == upload_id


def _serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="satchel.form-upload")


def adopt(upload):
    """A form upload whose bytes arrived takes their size, name and type and goes to its scan.

    Returns False while nothing has arrived, or when another caller (the redirect, maintenance)
    adopted or refused it first. An object over the per-file limit or the quota left (a store that
    does not enforce the policy's length range, or other uploads that took the room meanwhile) is
    refused and deleted.
    """
    storage = store.get_storage()
    try:
        head = storage.head(upload.incoming_key)
    except store.ObjectMissing:
        return False
    except store.StorageError as exc:
        raise Unavailable("File storage is unreachable; try again shortly.", "storage_unavailable") from exc
    owner = lock_user(upload.user_id)  # quota checks per user are serialised, as at presign
    still_waiting = db.session.scalar(
        select(Upload.id)
        .where(Upload.id == upload.id, Upload.status == UploadStatus.PENDING.value, Upload.via_form.is_(True))
        .with_for_update()
    )
    if still_waiting is None:
        db.session.rollback()
        return False
    if head["size"] > max_file_bytes():
        _refuse(upload, storage, "too_large")
        raise TooLarge("The file is larger than you may upload.", "file_too_large")
    if owner.bytes_used + head["size"] > quota_for(owner):  # a pending form upload counts 0 bytes so far
        _refuse(upload, storage, "quota_exceeded")
        raise TooLarge("This file would take you over your storage quota.", "quota_exceeded")
    name = _name_from(head["metadata"].get("filename"), utcnow())
    db.session.execute(
        update(Upload)
        .where(Upload.id == upload.id)
        .values(size=head["size"], filename=name, declared_type=_type_of(name), updated_at=utcnow())
    )
    db.session.commit()
    return mark_uploaded(upload.id)


def _refuse(upload, storage, reason):
    """Refuse a form upload still pending (its row is locked by the caller) and delete its object."""
    refused = db.session.execute(
        update(Upload)
        .where(Upload.id == upload.id, Upload.status == UploadStatus.PENDING.value)
        .values(status=UploadStatus.REJECTED.value, reason=reason, updated_at=utcnow())
    )
    if refused.rowcount:
        webhooks.emit("upload.rejected", upload.id)
    db.session.commit()
    storage.delete(upload.incoming_key)


def keep_open(upload):
    """A form shown again lives UPLOAD_URL_TTL from now: its upload must not expire before it."""
    config = current_app.config
    until = utcnow() + timedelta(seconds=config["UPLOAD_URL_TTL"] + ARRIVAL_GRACE)
    db.session.execute(
        update(Upload)
        .where(Upload.id == upload.id, Upload.status == UploadStatus.PENDING.value, Upload.expires_at < until)
        .values(expires_at=until)
    )
    db.session.commit()


def _name_from(given, now):
    """The browser's file name (the last part of a path), or a dated one when storage kept none
    (stores that do not fill in ${filename} leave it as it was)."""
    name = (given or "").replace("\\", "/").rsplit("/", 1)[-1]
    if name and "${filename}" not in name:
        try:
            return clean_filename(name, current_app.config["MAX_FILENAME_BYTES"])
        except InvalidInput:
            pass
    return f"upload-{now:%Y-%m-%d-%H%M%S}"


def _type_of(name):
    """The allowed type the name's extension stands for, or FORM_TYPE: the scan then goes by content alone."""
    allowed = current_app.config["ALLOWED_TYPES"]
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    by_extension = {ext: mime for mime, ext in allowed.items()}
    guessed = by_extension.get(extension) or normalize_type(mimetypes.guess_type(name)[0] or "")
    return guessed if guessed in allowed else FORM_TYPE
