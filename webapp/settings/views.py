"""Settings pages: personal API tokens (and, below, webhooks)."""

from flask import Blueprint, flash, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required

from webapp.security import client_address
from webapp.services import api_tokens
from webapp.settings.forms import TokenForm

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
