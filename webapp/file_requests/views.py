"""File requests: the owner makes and closes them (/requests); a sender opens one (/r/<token>) and sends
files through the upload widget, whose JSON calls live under /api/requests/<token>/uploads."""

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from webapp.api.views import json_body, parsed_json
from webapp.auth.sessions import open_to_strangers
from webapp.extensions import limiter, per_user
from webapp.file_requests.forms import RequestForm
from webapp.security import client_address, client_key
from webapp.services import file_requests, uploads
from webapp.services.refusals import NotFound
from webapp.shares.forms import ReportForm, UnlockForm
from webapp.shares.views import locked_page, remember_unlocked, unlock_limits

bp = Blueprint("file_requests", __name__)
#: Password-protected requests this browser has unlocked (request ids, in its signed session), newest last.
UNLOCKED = "unlocked_requests"


# --- The owner's pages ---------------------------------------------------------------------------


def _requests_page(form, status=200):
    """The user's requests and the form for a new one (as filled in, after a refusal)."""
    largest_mb = max(1, uploads.max_file_bytes() // file_requests.MiB)
    if not form.is_submitted():
        form.max_file_mb.data = min(100, largest_mb)
    page = render_template(
        "requests/index.html", requests=file_requests.requests_of(current_user), form=form, largest_mb=largest_mb
    )
    return page, status


@bp.route("/requests")
@login_required
def index():
    """The user's file requests, and a form for a new one."""
    return _requests_page(RequestForm())


@bp.route("/requests", methods=["POST"])
@login_required
@limiter.limit(lambda: current_app.config["REQUEST_CREATE_LIMIT"], key_func=per_user, scope="request-create")
def create():
    """Make a request and show it, with its link."""
    form = RequestForm()
    blank_password = bool(form.password.data) and not form.password.data.strip()
    if not form.validate_on_submit() or blank_password:
        if blank_password:
            form.password.errors = [*form.password.errors, "A password cannot be only spaces."]
        return _requests_page(form, 422)
    made = file_requests.create_request(
        current_user,
        form.title.data,
        form.days.data,
        form.max_file_mb.data,
        form.max_files.data,
        message=form.message.data,
        password=form.password.data or None,
        ip=client_address(),
    )
    flash("Request created: send its link to the people who should send you files.", "success")
    return redirect(url_for("file_requests.detail", request_id=made.id))


@bp.route("/requests/<int:request_id>")
@login_required
def detail(request_id):
    """One request: its link, its limits, what arrived through it, and a way to close it."""
    file_request = file_requests.own_request(current_user, request_id)
    return render_template(
        "requests/detail.html",
        file_request=file_request,
        held=file_requests.files_held(file_request),
        link=url_for("requested.page", token=file_request.token, _external=True),
    )


@bp.route("/requests/<int:request_id>/close", methods=["POST"])
@login_required
def close(request_id):
    """Close a request at once: its link stops working; the files that arrived stay."""
    file_request = file_requests.close_request(current_user, request_id, ip=client_address())
    flash(f"Closed “{file_request.title}”: its link no longer accepts files.", "info")
    return redirect(url_for("file_requests.detail", request_id=file_request.id))


# --- What a sender sees ----------------------------------------------------------------------------

public = Blueprint("requested", __name__)


@public.after_request
def private(response):
    """A request's pages and calls are for whoever holds the link: not indexed, never leaked as a Referer,
    never cached; a browser without a sender cookie gets one (what it sends is recognised by it)."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Cache-Control"] = "no-store"
    if g.get("new_sender"):
        response.set_cookie(
            file_requests.SENDER_COOKIE,
            g.new_sender,
            max_age=file_requests.MAX_DAYS * 86400,
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
    return response


def _sender(file_request):
    """What marks this browser's uploads through file_request, giving it a sender cookie (from this
    response on) if it has none."""
    digest = file_requests.sender_digest(request.cookies.get(file_requests.SENDER_COOKIE), file_request)
    if digest is None and "new_sender" not in g:
        g.new_sender = file_requests.new_sender()
    return digest


def _open(token):
    """The open request, and whether this browser may use it (it gave the password, if there is one)."""
    file_request = file_requests.resolve(token)
    return file_request, not file_request.password_hash or file_request.id in session.get(UNLOCKED, [])


def _unlocked(token):
    """As _open, but NotFound while the request is locked."""
    file_request, unlocked = _open(token)
    if not unlocked:
        raise NotFound()
    return file_request


def _page(file_request, token, form=None, status=200):
    sender = _sender(file_request)
    held = file_requests.files_held(file_request)
    page = render_template(
        "requests/page.html",
        file_request=file_request,
        token=token,
        sent=file_requests.sent_uploads(file_request, sender),
        full=held >= file_request.max_files,
        room=max(0, file_request.max_files - held),
        max_upload=min(file_request.max_file_bytes, uploads.max_file_bytes()),
        allowed_types=sorted(current_app.config["ALLOWED_TYPES"]),
        allowed_labels=sorted({ext.upper() for ext in current_app.config["ALLOWED_TYPES"].values()}),
        form=form or ReportForm(),
    )
    return page, status


@public.route("/r/<token>")
def page(token):
    """The request's message, the upload widget pointed at it, and what this browser sent through it."""
    file_request, unlocked = _open(token)
    if not unlocked:
        return locked_page(url_for("requested.unlock", token=token), "This request needs a password")
    return _page(file_request, token)


@public.route("/r/<token>/unlock", methods=["POST"])
@unlock_limits("request")
def unlock(token):
    """Check a request's password; a wrong one answers exactly as a request that does not exist."""
    form = UnlockForm()
    file_request = file_requests.unlock(token, form.password.data if form.validate_on_submit() else None)
    remember_unlocked(UNLOCKED, file_request.id)
    return redirect(url_for("requested.page", token=token))


@public.route("/r/<token>/report", methods=["POST"])
@limiter.limit("10 per hour", key_func=client_key, scope="request-report")
def report(token):
    """Send the request to the moderators with the visitor's words (phishing, say)."""
    form = ReportForm()
    file_request = _unlocked(token)
    if not form.validate_on_submit():
        return _page(file_request, token, form, 422)
    file_requests.report(
        token, form.reason.data, reporter=current_user if current_user.is_authenticated else None, ip=client_address()
    )
    flash("Thank you: a moderator will look at this request.", "success")
    return redirect(url_for("requested.page", token=token))


@public.route("/r/<token>/sent/<upload_id>/row")
def sent_row(token, upload_id):
    """One file this browser sent, as its row on the request's page (the upload widget adds new ones with it)."""
    file_request = _unlocked(token)
    upload = file_requests.sent_upload(file_request, _sender(file_request), upload_id)
    return render_template("requests/_sent_row.html", upload=upload, token=token)


# --- The upload widget's calls, for a sender: the JSON API's upload calls, scoped to the request ---


def _sent(token, upload_id):
    file_request = _unlocked(token)
    return file_requests.sent_upload(file_request, _sender(file_request), upload_id)


@public.route("/api/requests/<token>/uploads", methods=["POST"])
@open_to_strangers
@limiter.limit(lambda: current_app.config["REQUEST_UPLOAD_LIMIT_PER_IP"], key_func=client_key, scope="request-upload")
def create_upload(token):
    """Reserve room in the owner's quota and return where to PUT the bytes (as POST /api/uploads)."""
    body = json_body()
    file_request = _unlocked(token)
    sender = _sender(file_request)
    result = file_requests.begin(file_request, sender, body.get("filename"), body.get("size"), body.get("content_type"))
    return jsonify(result), 201


@public.route("/api/requests/<token>/uploads/<upload_id>/parts", methods=["POST"])
@open_to_strangers
def upload_parts(token, upload_id):
    """Signed URLs for parts of a multipart upload."""
    body = json_body()
    return jsonify(uploads.presign_parts(_sent(token, upload_id), body.get("part_numbers")))


@public.route("/api/requests/<token>/uploads/<upload_id>/parts", methods=["GET"])
@open_to_strangers
def stored_parts(token, upload_id):
    """The parts storage holds, for a sender resuming."""
    return jsonify({"parts": uploads.stored_parts(_sent(token, upload_id))})


@public.route("/api/requests/<token>/uploads/<upload_id>/complete", methods=["POST"])
@open_to_strangers
def complete_upload(token, upload_id):
    """The bytes are in storage: queue the scan."""
    body = parsed_json() if request.data else {}
    parts = body.get("parts") if isinstance(body, dict) else None
    upload = uploads.complete_upload(_sent(token, upload_id), parts)
    return jsonify({"upload": upload.to_dict()}), 202


@public.route("/api/requests/<token>/uploads/<upload_id>", methods=["GET"])
@open_to_strangers
def get_upload(token, upload_id):
    """The status of a file this browser sent."""
    return jsonify({"upload": _sent(token, upload_id).to_dict()})


@public.route("/api/requests/<token>/uploads/<upload_id>", methods=["DELETE"])
@open_to_strangers
def cancel_upload(token, upload_id):
    """Stop a pending upload (a file already sent is the owner's to delete)."""
    file_requests.cancel(_sent(token, upload_id))
    return "", 204
