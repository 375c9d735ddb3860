"""A shared file as the public sees it: details, download, preview, and a way to report it."""

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from webapp.extensions import limiter
from webapp.security import client_address, client_key
from webapp.services import sharing
from webapp.shares.forms import ReportForm

bp = Blueprint("shares", __name__, url_prefix="/s")


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<token>")
def page(token):
    """The shared file's name, size and type, a download button and a report form."""
    share, upload = sharing.resolve(token)
    response = render_template("shares/page.html", share=share, upload=upload, token=token, form=ReportForm())
    return response


@bp.route("/<token>/download")
def download(token):
    """Redirect to a short-lived attachment URL of the shared file."""
    return _no_store(redirect(sharing.share_download_url(token), code=302))


@bp.route("/<token>/preview")
def preview(token):
    """Redirect to the re-encoded preview of a shared image."""
    return _no_store(redirect(sharing.share_preview_url(token), code=302))


@bp.route("/<token>/report", methods=["POST"])
@limiter.limit("10 per hour", key_func=client_key)
def report(token):
    """Send the file to the moderators with the visitor's words."""
    form = ReportForm()
    if not form.validate_on_submit():
        share, upload = sharing.resolve(token)
        return render_template("shares/page.html", share=share, upload=upload, token=token, form=form), 422
    sharing.report(
        token, form.reason.data, reporter=current_user if current_user.is_authenticated else None, ip=client_address()
    )
    flash("Thank you: a moderator will look at this file.", "success")
    return redirect(url_for("shares.page", token=token))
