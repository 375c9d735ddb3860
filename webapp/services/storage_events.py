"""S3 ObjectCreated notifications: bytes that arrived promote their pending upload without waiting for
the browser's `complete` (or maintenance's poll).

Four shapes are read: S3's event JSON (`{"Records": [...]}`, which MinIO's webhook target also sends,
with `EventName` and `Key` beside it), the same wrapped in an SNS notification (`{"Type":
"Notification", "Message": "<the JSON as a string>"}`), and EventBridge's (`{"source": "aws.s3",
"detail-type": "Object Created", "detail": {...}}`). Each object key under incoming/ that a pending
upload owns is promoted exactly as `complete` would: a single PUT once its object is there, a
multipart upload once storage assembled it, a form upload by taking its size and name from storage.
Promotion is a compare-and-set, and a scan's job id is the upload's, so an event and `complete` (in
either order, or twice each) cause one scan.
"""

import json
import logging
from urllib.parse import unquote_plus

from flask import current_app
from sqlalchemy import select

from webapp import storage as store
from webapp.extensions import db
from webapp.models import Upload, UploadStatus
from webapp.services import form_uploads, uploads
from webapp.services.refusals import InvalidInput, ServiceError, Unavailable

log = logging.getLogger(__name__)
MAX_RECORDS = 1000


def _bad(message="This is not an S3 ObjectCreated notification Satchel can read."):
    return InvalidInput(message, "invalid_event", status=400)


def created_objects(body):
    """[(bucket, key)] of the objects an ObjectCreated notification in any of the four shapes names,
    and the SNS subscription URL to confirm when it is SNS's confirmation request (else None)."""
    if not isinstance(body, dict):
        raise _bad()
    if body.get("Type") == "SubscriptionConfirmation":
        return [], str(body.get("SubscribeURL", ""))
    if body.get("Type") == "Notification":
        try:
            body = json.loads(body.get("Message") or "")
        except (TypeError, ValueError, RecursionError):
            raise _bad("The SNS notification's Message is not JSON.") from None
        if not isinstance(body, dict):
            raise _bad()
        if body.get("Event") == "s3:TestEvent":
            return [], None
    if body.get("source") == "aws.s3" and "detail" in body:
        if body.get("detail-type") != "Object Created":
            return [], None
        detail = body["detail"] if isinstance(body["detail"], dict) else {}
        bucket, item = detail.get("bucket") or {}, detail.get("object") or {}
        if not isinstance(bucket, dict) or not isinstance(item, dict) or "key" not in item:
            raise _bad()
        return [(str(bucket.get("name", "")), str(item["key"]))], None  # EventBridge keys are not encoded
    records = body.get("Records")
    if records is None and body.get("Event") == "s3:TestEvent":
        return [], None
    if not isinstance(records, list) or len(records) > MAX_RECORDS:
        raise _bad()
    found = []
    for record in records:
        if not isinstance(record, dict):
            raise _bad()
        name = str(record.get("eventName", ""))
        if not (name.startswith("ObjectCreated:") or name.startswith("s3:ObjectCreated:")):
            continue
        s3 = record.get("s3") if isinstance(record.get("s3"), dict) else {}
        bucket, item = s3.get("bucket") or {}, s3.get("object") or {}
        if not isinstance(bucket, dict) or not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise _bad()
        found.append((str(bucket.get("name", "")), unquote_plus(item["key"])))  # S3 form-encodes keys
    return found, None


def handle(body):
    """Promote the pending uploads whose objects a notification says were created; returns counts."""
    objects, confirm_url = created_objects(body)
    if confirm_url is not None:
        # Confirming means fetching a URL the request names: an operator does it (README), once.
        log.warning("SNS subscription waiting for confirmation: open %s", confirm_url[:500])
        return {"promoted": 0, "ignored": 0, "confirmation": "logged"}
    bucket = current_app.config["S3_BUCKET"]
    counts = {"promoted": 0, "ignored": 0}
    for object_bucket, key in objects:
        upload = _pending_for(key) if object_bucket == bucket else None
        if upload is None:
            counts["ignored"] += 1
            continue
        try:
            promoted = promote(upload)
        except Unavailable:
            raise  # storage is down: the sender should try the whole notification again
        except ServiceError:
            promoted = False  # a form upload too large for its owner's room: refused, the rest goes on
        counts["promoted" if promoted else "ignored"] += 1
    return counts


def _pending_for(key):
    if not key.startswith("incoming/") or len(key) > 512 or "\x00" in key:
        return None
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no key Satchel made
        return None
    return db.session.scalar(select(Upload).where(Upload.incoming_key == key))


def promote(upload):
    """Promote one upload whose object storage reports created, as complete would; True if this call
    (or an earlier one) moved it on to its scan."""
    if upload.status == UploadStatus.UPLOADED.value:
        uploads.queue_scan(upload.id)  # as complete does: harmless, and re-queues a lost enqueue
        return True
    if upload.status != UploadStatus.PENDING.value:
        return False
    try:
        if upload.via_form:
            return form_uploads.adopt(upload)
        storage = store.get_storage()
        if upload.multipart_upload_id:
            arrived = uploads.assembled(storage, upload)  # the object exists once its parts were put together
        else:
            arrived = storage.exists(upload.incoming_key)
    except store.StorageError as exc:
        raise Unavailable("File storage is unreachable; send the event again shortly.", "storage_unavailable") from exc
    return bool(arrived) and uploads.mark_uploaded(upload.id)
