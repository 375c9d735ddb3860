"""HTML pages for browsing, downloading and deleting files."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.extensions import limiter
from webapp.files.forms import ShareForm
from webapp.models.base import utcnow
from webapp.security import client_address
from webapp.services import sharing, uploads
from webapp.services.uploads import quota_for

bp = Blueprint("files", __name__)


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
    limit = current_app.config["FILES_PER_PAGE"]
    rows, next_cursor = uploads.list_uploads(current_user, request.args.get("after"), limit)
    return render_template(
        "files/index.html",
        uploads=rows,
        next_cursor=next_cursor,
        first_page=not request.args.get("after"),
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


def _per_user_and_file():
    return f"user:{current_user.get_id()}:{request.view_args.get('upload_id', '')[:32]}"


@bp.route("/files/<upload_id>/download")
@login_required
@limiter.limit(lambda: current_app.config["DOWNLOAD_LIMIT"], key_func=_per_user_and_file, scope="download")
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


@bp.route("/files/<upload_id>/shares", methods=["POST"])
@login_required
def create_share(upload_id):
    """Make a public link to an available file (optionally expiring)."""
    uploads.own_upload(current_user, upload_id)  # someone else's id does not exist, whatever the form says
    form = ShareForm()
    if not form.validate_on_submit():
        flash("Choose how long the link should last (1 to 365 days, or never).", "error")
        return redirect(url_for("files.detail", upload_id=upload_id))
    days = int(form.days.data) if form.days.data else None
    sharing.create_share(current_user, upload_id, days, ip=client_address())
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
