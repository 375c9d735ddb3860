"""The endpoint S3-compatible storage (or SNS, or EventBridge) posts ObjectCreated notifications to."""

import base64
import hmac
import json

from flask import Blueprint, abort, current_app, jsonify, request

from webapp.auth.sessions import open_to_strangers
from webapp.extensions import csrf, limiter
from webapp.services import storage_events
from webapp.services.refusals import InvalidInput, ServiceError

bp = Blueprint("storage_events", __name__, url_prefix="/api")


def _sent_secret():
    """The secret the caller sent: `Authorization: Bearer <secret>` (or the bare secret, as MinIO's
    auth_token may be), or the password of `Authorization: Basic` (SNS, from https://user:secret@...)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value, validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return ""
    return value if scheme.lower() == "bearer" else header


@bp.route("/storage-events", methods=["POST"])
@open_to_strangers
@csrf.exempt
@limiter.exempt
def receive():
    """Promote pending uploads whose bytes storage says arrived (404 while STORAGE_EVENTS_SECRET is unset)."""
    secret = current_app.config["STORAGE_EVENTS_SECRET"]
    if not secret:
        abort(404)
    if not hmac.compare_digest(_sent_secret().encode(), secret.encode()):
        raise ServiceError("Send the storage events secret.", "invalid_secret", status=401)
    try:
        body = json.loads(request.get_data())  # SNS sends JSON as text/plain: the type is not checked
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise InvalidInput("The body is not JSON.", "invalid_event", status=400)
    return jsonify(storage_events.handle(body))
