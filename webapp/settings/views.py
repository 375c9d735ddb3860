"""Settings pages: personal API tokens, and webhook endpoints with their delivery logs."""

from flask import Blueprint, flash, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required

from webapp.extensions import limiter, per_user
from webapp.security import client_address
from webapp.services import api_tokens, webhooks
from webapp.services.refusals import InvalidInput
from webapp.settings.forms import TokenForm, WebhookForm

bp = Blueprint("settings", __name__, url_prefix="/settings")


def _tokens_page(form, secret=None, status=200):
    response = make_response(
        render_template("settings/tokens.html", tokens=api_tokens.tokens_of(current_user), form=form, secret=secret),
        status,
    )
    response.headers["Cache-Control"] = "no-store"  # a new token is on this page once
    return response


@bp.route("/tokens")
@login_required
def tokens():
    """The user's API tokens, and a form for a new one."""
    return _tokens_page(TokenForm())


@bp.route("/tokens", methods=["POST"])
@login_required
def create_token():
    """Make a token and show it, this once."""
    form = TokenForm()
    if not form.validate_on_submit():
        return _tokens_page(form, status=422)
    days = int(form.days.data) if form.days.data else None
    token, secret = api_tokens.create_token(current_user, form.name.data, form.scopes.data, days, ip=client_address())
    flash(f"Token “{token.name}” created. Copy it now: it is not shown again.", "success")
    return _tokens_page(TokenForm(formdata=None), secret=secret, status=201)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id):
    """Revoke a token: it stops working at once."""
    token = api_tokens.revoke_token(current_user, token_id, ip=client_address())
    flash(f"Revoked “{token.name}”.", "info")
    return redirect(url_for("settings.tokens"))


# --- Webhooks ---------------------------------------------------------------------------------------


def _webhooks_page(form, status=200):
    return render_template("settings/webhooks.html", endpoints=webhooks.endpoints_of(current_user), form=form), status


@bp.route("/webhooks")
@login_required
def webhooks_page():
    """The user's webhook endpoints, and a form for a new one."""
    return _webhooks_page(WebhookForm())


@bp.route("/webhooks", methods=["POST"])
@login_required
@limiter.limit("30 per hour", key_func=per_user, scope="webhook-create")
def create_webhook():
    """Register an endpoint (its address checked now, and again at each delivery)."""
    form = WebhookForm()
    if not form.validate_on_submit():
        return _webhooks_page(form, 422)
    try:
        endpoint = webhooks.create_endpoint(
            current_user,
            form.url.data,
            form.events.data,
            all_users=form.all_users.data,
            allow_private=form.allow_private.data,
            ip=client_address(),
        )
    except InvalidInput as refusal:
        form.url.errors = [*form.url.errors, refusal.message]
        return _webhooks_page(form, refusal.status)
    flash("Endpoint added. Its signing secret is on its page.", "success")
    return redirect(url_for("settings.webhook", endpoint_id=endpoint.id))


@bp.route("/webhooks/<int:endpoint_id>")
@login_required
def webhook(endpoint_id):
    """One endpoint: its secret, and its recent deliveries with how each went."""
    endpoint = webhooks.own_endpoint(current_user, endpoint_id)
    response = make_response(
        render_template("settings/webhook.html", endpoint=endpoint, deliveries=webhooks.deliveries_of(endpoint))
    )
    response.headers["Cache-Control"] = "no-store"  # it shows the secret
    return response


@bp.route("/webhooks/<int:endpoint_id>/rotate", methods=["POST"])
@login_required
def rotate_webhook_secret(endpoint_id):
    """A new signing secret, for one that leaked: receivers must be given it."""
    webhooks.rotate_secret(current_user, endpoint_id, ip=client_address())
    flash("New signing secret made: give it to the receiver; the old one no longer signs anything.", "info")
    return redirect(url_for("settings.webhook", endpoint_id=endpoint_id))


@bp.route("/webhooks/<int:endpoint_id>/delete", methods=["POST"])
@login_required
def delete_webhook(endpoint_id):
    webhooks.delete_endpoint(current_user, endpoint_id, ip=client_address())
    flash("Endpoint deleted.", "info")
    return redirect(url_for("settings.webhooks_page"))


@bp.route("/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/replay", methods=["POST"])
@login_required
def replay_delivery(endpoint_id, delivery_id):
    """Send a delivery again: the same body and id, a new signature."""
    webhooks.replay(current_user, endpoint_id, delivery_id)
    flash("Queued to be sent again.", "info")
    return redirect(url_for("settings.webhook", endpoint_id=endpoint_id))
