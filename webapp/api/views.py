"""Upload endpoints: parse JSON, call a service, answer JSON."""

from flask import Blueprint, jsonify, request
from flask_login import current_user, login_required

from webapp.extensions import presign_limit
from webapp.services import uploads
from webapp.services.refusals import InvalidInput

bp = Blueprint("api", __name__, url_prefix="/api")


def parsed_json():
    """The body parsed as JSON, or None when it is not JSON (too deeply nested to parse included)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def json_body():
    """The request's JSON object, or a 400 with a JSON error."""
    if not request.is_json:
        raise InvalidInput("Send a JSON object with Content-Type: application/json.", "invalid_json", status=415)
    body = parsed_json()
    if not isinstance(body, dict):
        raise InvalidInput("The request body is not a JSON object.", "invalid_json", status=400)
    return body


@bp.route("/uploads", methods=["POST"])
@login_required
@presign_limit
def create_upload():
    """Reserve quota and return where to PUT the bytes."""
    body = json_body()
    result = uploads.begin_upload(current_user, body.get("filename"), body.get("size"), body.get("content_type"))
    return jsonify(result), 201


@bp.route("/uploads/<upload_id>/parts", methods=["POST"])
@login_required
def upload_parts(upload_id):
    """Signed URLs for parts of a multipart upload."""
    body = json_body()
    return jsonify(uploads.presign_parts(uploads.own_upload(current_user, upload_id), body.get("part_numbers")))


@bp.route("/uploads/<upload_id>/parts", methods=["GET"])
@login_required
def stored_parts(upload_id):
    """The parts of a multipart upload that storage holds: what a client resuming need not send again."""
    return jsonify({"parts": uploads.stored_parts(uploads.own_upload(current_user, upload_id))})


@bp.route("/uploads/<upload_id>/complete", methods=["POST"])
@login_required
def complete_upload(upload_id):
    """The bytes are in storage: queue the scan."""
    body = parsed_json() if request.data else {}
    parts = body.get("parts") if isinstance(body, dict) else None
    upload = uploads.complete_upload(uploads.own_upload(current_user, upload_id), parts)
    return jsonify({"upload": upload.to_dict()}), 202


@bp.route("/uploads/<upload_id>", methods=["GET"])
@login_required
def get_upload(upload_id):
    """The upload's status and details."""
    return jsonify({"upload": uploads.readable_upload(current_user, upload_id).to_dict()})


@bp.route("/uploads/<upload_id>", methods=["DELETE"])
@login_required
def delete_upload(upload_id):
    """Abort a pending upload or delete a file."""
    uploads.delete_upload(current_user, upload_id)
    return "", 204
