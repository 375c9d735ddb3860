"""Admin views: thin; every action is a CSRF-protected POST (with a reason where it acts on an account or a
file), audited by the service."""

import functools
from datetime import UTC, datetime

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from webapp.admin.forms import CreateUserForm, QuotaForm, ReasonForm
from webapp.extensions import login_manager
from webapp.security import client_address
from webapp.services import accounts, api_tokens, audit, dashboard, file_requests, job_listings, maintenance, moderation
from webapp.services.refusals import ServiceError
from webapp.services.uploads import quota_for

bp = Blueprint("admin", __name__, url_prefix="/admin")


def admins_only(view):
    """Anonymous visitors go to the login page; signed-in non-admins get 403."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_admin:
            abort(403, "This page is for administrators.")
        return view(*args, **kwargs)

    return wrapped


def _back(form, default):
    target = form.back.data or ""
    safe = target.startswith("/admin") and "//" not in target and "\\" not in target and target.isprintable()
    return target if safe else default


def _int_arg(name):
    """A positive 32-bit integer query argument, or None (ids beyond that do not exist)."""
    value = request.args.get(name, type=int)
    return value if value is not None and 0 < value < 2**31 else None


def _act(form, default, action):
    """Validate the reason form, run action(reason), flash the outcome, go back where the admin was."""
    if not form.validate_on_submit():
        flash("Give a reason (3 to 1000 characters): it is recorded in the audit log.", "error")
        return redirect(_back(form, default))
    try:
        message = action(form.reason.data)
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash(message, "success")
    return redirect(_back(form, default))


@bp.route("")
@admins_only
def dashboard_page():
    """Counts, daily volume, storage by user, queues, scanner health."""
    return render_template("admin/dashboard.html", **dashboard.overview())


@bp.route("/moderation")
@admins_only
def moderation_page():
    """Quarantined, rejected and reported files, newest first, filterable by reason."""
    reason = request.args.get("reason") or None
    before = None
    if request.args.get("before_time") and request.args.get("before_id"):
        try:
            stamp = datetime.fromisoformat(request.args["before_time"])
            if stamp.tzinfo is None:
                raise ValueError(stamp)
            before = (stamp.astimezone(UTC), request.args["before_id"][:32])
        except (ValueError, OverflowError):
            abort(400, "That page link is not valid.")
    items, next_before = moderation.moderation_queue(reason, before)
    return render_template(
        "admin/moderation.html",
        items=items,
        next_before=next_before,
        reason=reason,
        reasons=moderation.queue_reasons(),
        reported_requests=file_requests.reported_requests() if not before else [],
        form=ReasonForm(),
    )


@bp.route("/moderation/<upload_id>/<any(approve, remove, block):action>", methods=["POST"])
@admins_only
def moderate(upload_id, action):
    """Approve, remove or block one file."""
    ip = client_address()

    def run(reason):
        if action == "approve":
            moderation.approve(current_user, upload_id, reason, ip=ip)
            return "Approved: the file is available to its owner."
        if action == "remove":
            moderation.remove(current_user, upload_id, reason, ip=ip)
            return "Removed: the file is gone and its share links revoked."
        removed = moderation.block_content(current_user, upload_id, reason, ip=ip)
        return f"Blocked this content; {len(removed)} file(s) with the same bytes taken down."

    return _act(ReasonForm(), url_for("admin.moderation_page"), run)


@bp.route("/moderation/requests/<int:request_id>/<any(close, dismiss):action>", methods=["POST"])
@admins_only
def moderate_request(request_id, action):
    """Close a reported file request, or keep it open and dismiss its reports."""
    ip = client_address()
    return _act(
        ReasonForm(),
        url_for("admin.moderation_page"),
        lambda reason: file_requests.moderate(current_user, request_id, action, reason, ip=ip),
    )


@bp.route("/users")
@admins_only
def users_page():
    """Accounts with their usage and quota; search by email."""
    search = (request.args.get("q") or "").strip()[:254]
    after = _int_arg("after")
    rows, next_after = dashboard.users_with_usage(search or None, after_id=after)
    return render_template(
        "admin/users.html",
        rows=rows,
        search=search,
        next_after=next_after,
        quota_for=quota_for,
        form=QuotaForm(),
        create_form=CreateUserForm(),
    )


@bp.route("/tokens")
@admins_only
def tokens_page():
    """Every live API token, with its owner, scopes and last use."""
    return render_template("admin/tokens.html", tokens=api_tokens.live_tokens(), form=ReasonForm())


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@admins_only
def revoke_token(token_id):
    """Revoke anyone's API token."""
    ip = client_address()
    return _act(
        ReasonForm(),
        url_for("admin.tokens_page"),
        lambda reason: api_tokens.revoke_any(current_user, token_id, reason, ip=ip),
    )


@bp.route("/users/new", methods=["POST"])
@admins_only
def create_user():
    """Make an account with the given or a generated initial password; a generated one is shown once."""
    form = CreateUserForm()
    if not form.validate_on_submit():
        errors = [message for messages in form.errors.values() for message in messages]
        flash("No account made: " + " ".join(errors), "error")
        return redirect(url_for("admin.users_page"))
    generated = None if form.password.data else accounts.generate_password()
    try:
        user = accounts.create_user(
            form.email.data, form.password.data or generated, ip=client_address(), created_by=current_user
        )
    except ServiceError as exc:
        flash(f"No account made: {exc.message}", "error")
        return redirect(url_for("admin.users_page"))
    # Rendered, not flashed: the password is never written to the session cookie, and is not kept.
    response = make_response(render_template("admin/user_created.html", user=user, password=generated), 201)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/users/<int:user_id>/<any(ban, unban):action>", methods=["POST"])
@admins_only
def ban_user(user_id, action):
    """Ban or unban an account."""
    ip = client_address()

    def run(reason):
        if action == "ban":
            user = moderation.ban(current_user, user_id, reason, ip=ip)
            return f"Banned {user.email}: their sessions, pending uploads and share links are ended."
        user = moderation.unban(current_user, user_id, reason, ip=ip)
        return f"Unbanned {user.email}."

    return _act(ReasonForm(), url_for("admin.users_page"), run)


@bp.route("/users/<int:user_id>/quota", methods=["POST"])
@admins_only
def set_quota(user_id):
    """Change one account's quota."""
    form = QuotaForm()

    def run(reason):
        quota = None if form.quota_mb.data is None else form.quota_mb.data * 1024 * 1024
        user = moderation.set_quota(current_user, user_id, quota, reason, ip=client_address())
        return f"Quota of {user.email} set to {'the default' if quota is None else f'{form.quota_mb.data} MB'}."

    return _act(form, url_for("admin.users_page"), run)


@bp.route("/audit")
@admins_only
def audit_page():
    """The append-only audit log, newest first, filterable by action, actor and target."""
    action = request.args.get("action") or None
    if action and action not in audit.ACTIONS:
        action = None
    actor = (request.args.get("actor") or "").strip()[:254] or None
    target = (request.args.get("target") or "").strip()[:254] or None
    before = _int_arg("before")
    events, next_before = audit.search(action, actor, target, before)
    return render_template(
        "admin/audit.html",
        events=events,
        next_before=next_before,
        actions=audit.ACTIONS,
        action=action,
        actor=actor or "",
        target=target or "",
    )


@bp.route("/jobs")
@admins_only
def jobs_page():
    """Failed jobs with a retry button, running and scheduled jobs, maintenance runs, queue depths."""
    return render_template(
        "admin/jobs.html", **job_listings.jobs_page(), form=ReasonForm(), runs=maintenance.last_runs()
    )


@bp.route("/jobs/<job_id>/retry", methods=["POST"])
@admins_only
def retry_job(job_id):
    """Put a failed job back on its queue."""

    def run(reason):
        moderation.retry_job(current_user, job_id, reason, ip=client_address())
        return f"Job {job_id} is queued again."

    return _act(ReasonForm(), url_for("admin.jobs_page"), run)
