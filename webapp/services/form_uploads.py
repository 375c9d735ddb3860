"""Uploads through a plain HTML form, for browsers without JavaScript.

The browser POSTs the file straight to storage under a presigned POST policy: the key is fixed, the
length bounded by what the user may still upload, the stored type bound to FORM_TYPE, and storage
redirects back to Satchel on success. Until then the upload's row reserves that bound; once the
bytes are there (`adopt`, from the redirect or from maintenance) the row takes their real size,
the name the browser gave (S3 puts it in x-amz-meta-filename) and the type that name implies, and
the scan follows as for any upload.
"""

import mimetypes
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import update

from webapp import logs
from webapp import storage as store
from webapp.extensions import db
from webapp.models import Upload, UploadStatus
from webapp.models.base import utcnow
from webapp.models.upload import FORM_TYPE, new_upload_id
from webapp.scanning.filetypes import normalize_type
from webapp.services.names import clean_filename
from webapp.services.refusals import Conflict, InvalidInput, TooLarge, Unavailable
from webapp.services.uploads import admit, mark_uploaded, max_file_bytes, own_upload, quota_for

#: How long past its form's expiry a form upload may take to arrive (a large file on a slow link).
ARRIVAL_GRACE = 3600


def begin(user):
    """A pending form upload reserving as much as the user may still send in one file; returns its id."""
    config = current_app.config
    owner = admit(user.id, 1)
    room = min(max_file_bytes(), quota_for(owner) - owner.bytes_used)
    upload_id = new_upload_id()
    logs.bind(upload_id=upload_id)
    now = utcnow()
    db.session.add(
        Upload(
            id=upload_id,
            user_id=owner.id,
            filename="upload",
            size=room,
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


def form_target(upload, redirect):
    """Where the form posts and its hidden fields, valid for UPLOAD_URL_TTL."""
    ttl = current_app.config["UPLOAD_URL_TTL"]
    try:
        return store.get_storage().presign_post(upload.incoming_key, upload.size, FORM_TYPE, redirect, ttl)
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

    Returns False while nothing has arrived. An object larger than the upload reserved (a store
    that does not enforce the policy's length range) is refused and deleted.
    """
    storage = store.get_storage()
    try:
        head = storage.head(upload.incoming_key)
    except store.ObjectMissing:
        return False
    if head["size"] > upload.size:
        _refuse(upload, storage)
        raise TooLarge("The file is larger than you may upload.", "file_too_large")
    name = _name_from(head["metadata"].get("filename"), utcnow())
    claimed = db.session.execute(
        update(Upload)
        .where(Upload.id == upload.id, Upload.status == UploadStatus.PENDING.value, Upload.via_form.is_(True))
        .values(size=head["size"], filename=name, declared_type=_type_of(name), updated_at=utcnow())
    )
    db.session.commit()
    return bool(claimed.rowcount) and mark_uploaded(upload.id)


def _refuse(upload, storage):
    db.session.execute(
        update(Upload)
        .where(Upload.id == upload.id, Upload.status == UploadStatus.PENDING.value)
        .values(status=UploadStatus.REJECTED.value, reason="too_large", updated_at=utcnow())
    )
    db.session.commit()
    storage.delete(upload.incoming_key)


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
