"""HTML pages for browsing, downloading and deleting files."""

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.extensions import db, limiter, per_user_and_file, presign_limit
from webapp.files.forms import ShareForm
from webapp.models import UploadStatus
from webapp.models.base import utcnow
from webapp.security import client_address, content_security_policy
from webapp.services import file_requests, form_uploads, listing, sharing, uploads
from webapp.services.uploads import quota_for

bp = Blueprint("files", __name__)
#: Files one bulk delete may name (a page of the listing is far fewer).
MAX_BULK = 200


@bp.route("/")
def home():
    """The front page: your files when signed in, an introduction otherwise."""
    if current_user.is_authenticated:
        return redirect(url_for("files.index"))
    return render_template("home.html")


@bp.route("/files")
@login_required
def index():
    """Your files, newest first, one keyset page at a time; the upload widget on top."""
    shown = listing.Listing.from_args(request.args)
    rows, next_cursor = listing.page(current_user, shown, current_app.config["FILES_PER_PAGE"])
    return render_template(
        "files/index.html",
        uploads=rows,
        listing=shown,
        kinds=listing.KINDS,
        statuses=listing.STATUSES,
        next_cursor=next_cursor,
        no_files_at_all=not rows and listing.empty_state(current_user),
        file_request=file_requests.own_request(current_user, int(shown.request)) if shown.request else None,
        used=current_user.bytes_used,
        quota=quota_for(current_user),
        max_upload=uploads.max_file_bytes(),
        allowed_types=sorted(current_app.config["ALLOWED_TYPES"]),
        allowed_labels=sorted({ext.upper() for ext in current_app.config["ALLOWED_TYPES"].values()}),
    )


@bp.route("/files/<upload_id>")
@login_required
def detail(upload_id):
    """One file's details and scan result, and its share links."""
    upload = uploads.readable_upload(current_user, upload_id)
    return render_template(
        "files/detail.html",
        upload=upload,
        shares=sharing.shares_of(current_user, upload_id),
        share_form=ShareForm(),
        now=utcnow(),
    )


@bp.route("/files/<upload_id>/row")
@login_required
def row(upload_id):
    """One of your files as its listing row (an HTML fragment): the upload widget adds new files with it."""
    return render_template("files/_row.html", upload=uploads.own_upload(current_user, upload_id))


@bp.route("/files/<upload_id>/download")
@login_required
@limiter.limit(lambda: current_app.config["DOWNLOAD_LIMIT"], key_func=per_user_and_file, scope="download")
def download(upload_id):
    """Redirect to a short-lived presigned GET that downloads the file as an attachment."""
    url = uploads.download_url(current_user, upload_id)
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/files/<upload_id>/preview")
@login_required
def preview(upload_id):
    """Redirect to the re-encoded preview image of an available raster image."""
    response = redirect(uploads.thumbnail_url(current_user, upload_id), code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/files/<upload_id>/delete", methods=["GET", "POST"])
@login_required
def delete(upload_id):
    """Ask for confirmation (GET), then delete a file: its objects and its row (POST)."""
    if request.method == "GET":
        return render_template("files/delete.html", upload=uploads.own_upload(current_user, upload_id))
    name = uploads.delete_upload(current_user, upload_id, ip=client_address())
    flash(f"Deleted {name}.", "info")
    return redirect(url_for("files.index"))


@bp.route("/files/delete", methods=["POST"])
@login_required
def delete_many():
    """Delete the files ticked in the listing: a confirmation naming them first, then (confirm=yes) all at once."""
    chosen = uploads.own_uploads(current_user, request.form.getlist("ids")[:MAX_BULK])
    if not chosen:
        flash("Tick the files to delete first.", "error")
        return redirect(url_for("files.index"))
    if request.form.get("confirm") != "yes":
        return render_template("files/delete_many.html", uploads=chosen)
    names = [uploads.delete_upload(current_user, upload.id, ip=client_address()) for upload in chosen]
    flash(f"Deleted {len(names)} file{'s' if len(names) != 1 else ''}.", "info")
    return redirect(url_for("files.index"))


@bp.route("/files/<upload_id>/rename", methods=["POST"])
@login_required
def rename(upload_id):
    """Change a file's name as shown and as downloaded (its stored bytes and keys stay as they are)."""
    upload = uploads.rename_upload(current_user, upload_id, request.form.get("filename"), ip=client_address())
    flash(f"Renamed to {upload.filename}.", "success")
    return redirect(url_for("files.detail", upload_id=upload.id))


@bp.route("/files/<upload_id>/shares", methods=["POST"])
@login_required
def create_share(upload_id):
    """Make a public link to an available file (optionally expiring)."""
    uploads.own_upload(current_user, upload_id)  # someone else's id does not exist, whatever the form says
    form = ShareForm()
    blank_password = bool(form.password.data) and not form.password.data.strip()
    if not form.validate_on_submit() or blank_password:
        flash(
            "Choose how long the link should last (1 to 365 days, or never), a password of 4 to 200 characters "
            "or none, and a download limit from 1 to 100,000 or none.",
            "error",
        )
        return redirect(url_for("files.detail", upload_id=upload_id))
    days = int(form.days.data) if form.days.data else None
    sharing.create_share(
        current_user,
        upload_id,
        days,
        ip=client_address(),
        password=form.password.data or None,
        max_downloads=form.max_downloads.data,
    )
    flash("Share link created: anyone with it can download this file.", "success")
    return redirect(url_for("files.detail", upload_id=upload_id))


@bp.route("/files/<upload_id>/shares/<int:share_id>/revoke", methods=["POST"])
@login_required
def revoke_share(upload_id, share_id):
    """Revoke a public link."""
    uploads.own_upload(current_user, upload_id)
    sharing.revoke_share(current_user, share_id, upload_id=upload_id, ip=client_address())
    flash("Share link revoked.", "info")
    return redirect(url_for("files.detail", upload_id=upload_id))


# --- Uploads without JavaScript: a plain form that posts the file straight to storage ---


@bp.route("/upload", methods=["POST"])
@login_required
@presign_limit
def begin_form_upload():
    """Reserve room for one file and show the form that sends it to storage."""
    upload_id = form_uploads.begin(current_user)
    return redirect(url_for("files.form_upload", upload_id=upload_id), code=303)


@bp.route("/upload/<upload_id>")
@login_required
def form_upload(upload_id):
    """The form that posts one file to storage (a presigned POST), which redirects back to form_upload_done."""
    upload = uploads.own_upload(current_user, upload_id)
    if not upload.via_form or upload.status != UploadStatus.PENDING.value:
        return redirect(url_for("files.detail", upload_id=upload.id))
    form_uploads.keep_open(upload)
    done = url_for(
        "files.form_upload_done", upload_id=upload.id, token=form_uploads.return_token(upload), _external=True
    )
    target, room = form_uploads.form_target(upload, done)
    response = make_response(
        render_template(
            "files/upload_form.html",
            upload=upload,
            target=target,
            room=room,
            minutes=current_app.config["UPLOAD_URL_TTL"] // 60,
            allowed_labels=sorted({ext.upper() for ext in current_app.config["ALLOWED_TYPES"].values()}),
        )
    )
    response.headers["Content-Security-Policy"] = content_security_policy(current_app.config, form_to_storage=True)
    return response


@bp.route("/upload/<upload_id>/done")
@login_required
def form_upload_done(upload_id):
    """Where storage sends the browser after the form's POST: the file goes to its scan."""
    if not form_uploads.check_return_token(current_user, upload_id, request.args.get("token")):
        abort(400, "This confirmation link is not valid (or no longer valid) for your account.")
    upload = uploads.own_upload(current_user, upload_id)
    if upload.via_form and upload.status == UploadStatus.PENDING.value:
        form_uploads.adopt(upload)  # or another caller did first
        db.session.refresh(upload)
    if upload.status == UploadStatus.PENDING.value:
        flash("Nothing has arrived in storage for this upload yet. Choose the file and send it again.", "error")
        return redirect(url_for("files.form_upload", upload_id=upload.id))
    if upload.status in (UploadStatus.UPLOADED.value, UploadStatus.SCANNING.value):
        flash(f"Received {upload.filename}. It is being checked; it can be downloaded once it passes.", "success")
    else:
        flash(f"{upload.filename}: {upload.status}.", "info")
    return redirect(url_for("files.detail", upload_id=upload.id), code=303)
