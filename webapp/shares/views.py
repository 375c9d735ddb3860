"""A shared file as the public sees it: details, download, preview, and a way to report it."""

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user

from webapp.extensions import limiter
from webapp.security import client_address, client_key
from webapp.services import sharing
from webapp.services.refusals import NotFound
from webapp.shares.forms import ReportForm, UnlockForm

bp = Blueprint("shares", __name__, url_prefix="/s")
#: Password-protected links this browser has unlocked (share ids, in its signed session), the newest last.
UNLOCKED = "unlocked_shares"
KEEP_UNLOCKED = 20


@bp.after_request
def private(response):
    """Share pages are for whoever holds the link: not indexed, and the link never leaks as a Referer."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _open(token):
    """The live share and its file, if its password (when it has one) was given in this browser."""
    share, upload = sharing.resolve(token)
    if share.password_hash and share.id not in session.get(UNLOCKED, []):
        return share, None
    return share, upload


def _unlocked(token):
    """As _open, but NotFound while the link is locked: the file's URLs are not for those without the password."""
    share, upload = _open(token)
    if upload is None:
        raise NotFound()
    return share, upload


def _no_store(response):
    response = make_response(response)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<token>")
def page(token):
    """The shared file's name, size and type, a download button and a report form (after the
    link's password, when it has one)."""
    share, upload = _open(token)
    if upload is None:
        return _no_store(locked_page(url_for("shares.unlock", token=token), "This link needs a password"))
    return _no_store(render_template("shares/page.html", share=share, upload=upload, token=token, form=ReportForm()))


def locked_page(action, heading):
    """The password prompt of a locked public link, which posts to action."""
    return render_template("shares/locked.html", action=action, heading=heading, form=UnlockForm())


def unlock_limits(kind):
    """A decorator: the password attempts on a public link (whose view takes its token), throttled per
    link and per address (SHARE_UNLOCK_LIMIT_PER_LINK, SHARE_UNLOCK_LIMIT_PER_IP)."""

    def per_link():
        return f"{kind}:{request.view_args.get('token', '')[:64]}"

    def setting(name):
        return lambda: current_app.config[name]

    per_link_limit = limiter.limit(setting("SHARE_UNLOCK_LIMIT_PER_LINK"), key_func=per_link, scope=f"{kind}-unlock")
    per_ip_limit = limiter.limit(setting("SHARE_UNLOCK_LIMIT_PER_IP"), key_func=client_key, scope=f"{kind}-unlock-ip")
    return lambda view: per_link_limit(per_ip_limit(view))


def remember_unlocked(key, item_id):
    """This browser gave the password of item_id: keep it in its signed session (the newest KEEP_UNLOCKED)."""
    session[key] = [*session.get(key, []), item_id][-KEEP_UNLOCKED:]


@bp.route("/<token>/unlock", methods=["POST"])
@unlock_limits("share")
def unlock(token):
    """Check a link's password; a wrong one answers exactly as a link that does not exist."""
    form = UnlockForm()
    share = sharing.unlock(token, form.password.data if form.validate_on_submit() else None)
    remember_unlocked(UNLOCKED, share.id)
    return redirect(url_for("shares.page", token=token))


@bp.route("/<token>/download")
def download(token):
    """Redirect to a short-lived attachment URL of the shared file (counted against its limit; a HEAD,
    which fetches nothing, is not answered)."""
    if request.method == "HEAD":
        return _no_store(make_response("", 405, {"Allow": "GET"}))
    _unlocked(token)
    return _no_store(redirect(sharing.share_download_url(token), code=302))


@bp.route("/<token>/preview")
def preview(token):
    """Redirect to the re-encoded preview of a shared image."""
    _unlocked(token)
    return _no_store(redirect(sharing.share_preview_url(token), code=302))


@bp.route("/<token>/report", methods=["POST"])
@limiter.limit("10 per hour", key_func=client_key)
def report(token):
    """Send the file to the moderators with the visitor's words."""
    form = ReportForm()
    share, upload = _unlocked(token)
    if not form.validate_on_submit():
        return render_template("shares/page.html", share=share, upload=upload, token=token, form=form), 422
    sharing.report(
        token, form.reason.data, reporter=current_user if current_user.is_authenticated else None, ip=client_address()
    )
    flash("Thank you: a moderator will look at this file.", "success")
    return redirect(url_for("shares.page", token=token))
