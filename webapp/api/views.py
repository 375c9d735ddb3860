"""The JSON API: parse JSON, call a service, answer JSON.

A browser calls it with its session and the page's CSRF token; a script with a personal API token
(`Authorization: Bearer sat_...`, no CSRF token), whose scopes each call names (auth/sessions.py
checks the token, `scoped` its scope). `/api/openapi.json` describes every call.
"""

import functools
from pathlib import Path

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user, login_required

from webapp.auth.sessions import api_token, open_to_strangers
from webapp.extensions import limiter, per_user_and_file, presign_limit
from webapp.models import UploadStatus
from webapp.security import client_address
from webapp.services import api_tokens, listing, uploads
from webapp.services.refusals import InvalidInput

bp = Blueprint("api", __name__, url_prefix="/api")
#: The OpenAPI 3 description of this blueprint's calls (tests/test_openapi.py holds it to the routes).
OPENAPI = Path(__file__).with_name("openapi.json")
MAX_PAGE = 200


def scoped(scope, *others):
    """A call an API token may make only with one of these scopes (session calls may make it)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            api_tokens.require(api_token(), (scope, *others))
            return view(*args, **kwargs)

        wrapped.scopes = (scope, *others)  # read by tests/test_openapi.py (functools.wraps carries it outwards)
        return wrapped

    return decorate


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


@bp.route("/openapi.json")
@open_to_strangers
def openapi():
    """This API, described in OpenAPI 3."""
    return current_app.response_class(_openapi_document(), mimetype="application/json")


@functools.cache
def _openapi_document():
    return OPENAPI.read_bytes()  # once per process: it changes only with a release


@bp.route("/uploads", methods=["GET"])
@login_required
@scoped("read")
def list_uploads():
    """The caller's files, a keyset page at a time, with the listing's filters and sorts."""
    shown = listing.Listing.from_args(request.args)
    limit = request.args.get("limit", "50")
    if not (len(limit) <= 3 and limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_PAGE):
        raise InvalidInput(f"limit must be from 1 to {MAX_PAGE}.", "invalid_limit")
    rows, next_cursor = listing.page(current_user, shown, int(limit))
    return jsonify({"uploads": [upload.to_dict() for upload in rows], "next": next_cursor})


@bp.route("/uploads", methods=["POST"])
@login_required
@scoped("upload")
@presign_limit
def create_upload():
    """Reserve quota and return where to PUT the bytes."""
    body = json_body()
    result = uploads.begin_upload(current_user, body.get("filename"), body.get("size"), body.get("content_type"))
    return jsonify(result), 201


@bp.route("/uploads/<upload_id>/parts", methods=["POST"])
@login_required
@scoped("upload")
def upload_parts(upload_id):
    """Signed URLs for parts of a multipart upload."""
    body = json_body()
    return jsonify(uploads.presign_parts(uploads.own_upload(current_user, upload_id), body.get("part_numbers")))


@bp.route("/uploads/<upload_id>/parts", methods=["GET"])
@login_required
@scoped("upload")
def stored_parts(upload_id):
    """The parts of a multipart upload that storage holds: what a client resuming need not send again."""
    return jsonify({"parts": uploads.stored_parts(uploads.own_upload(current_user, upload_id))})


@bp.route("/uploads/<upload_id>/complete", methods=["POST"])
@login_required
@scoped("upload")
def complete_upload(upload_id):
    """The bytes are in storage: queue the scan."""
    body = parsed_json() if request.data else {}
    parts = body.get("parts") if isinstance(body, dict) else None
    upload = uploads.complete_upload(uploads.own_upload(current_user, upload_id), parts)
    return jsonify({"upload": upload.to_dict()}), 202


@bp.route("/uploads/<upload_id>", methods=["GET"])
@login_required
@scoped("read", "upload")
def get_upload(upload_id):
    """The upload's status and details (a token that uploads may follow its verdict)."""
    return jsonify({"upload": _readable(upload_id).to_dict()})


def _readable(upload_id, statuses=None):
    """An upload the caller may read: an admin's session reads anyone's (as the pages do), but an API
    token, even an admin's, only its owner's own files."""
    lookup = uploads.own_upload if api_token() is not None else uploads.readable_upload
    return lookup(current_user, upload_id, statuses)


@bp.route("/uploads/<upload_id>", methods=["PATCH"])
@login_required
@scoped("upload")
def rename_upload(upload_id):
    """Rename a file (the name shown and downloaded)."""
    body = json_body()
    upload = uploads.rename_upload(current_user, upload_id, body.get("filename"), ip=client_address())
    return jsonify({"upload": upload.to_dict()})


@bp.route("/uploads/<upload_id>/download", methods=["GET"])
@login_required
@scoped("read")
@limiter.limit(lambda: current_app.config["DOWNLOAD_LIMIT"], key_func=per_user_and_file, scope="download")
def download(upload_id):
    """A short-lived URL that downloads an available file as an attachment."""
    url = uploads.signed_download(_readable(upload_id, statuses=[UploadStatus.AVAILABLE]))
    expires_in = current_app.config["DOWNLOAD_URL_TTL"]
    return jsonify({"url": url, "expires_in": expires_in})


@bp.route("/uploads/<upload_id>", methods=["DELETE"])
@login_required
@scoped("delete")
def delete_upload(upload_id):
    """Abort a pending upload or delete a file."""
    uploads.delete_upload(current_user, upload_id, ip=client_address())
    return "", 204
