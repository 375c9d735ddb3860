"""Register, log in, log out."""

from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, logout_user

from webapp.auth.forms import LoginForm, RegisterForm
from webapp.auth.sessions import start_session
from webapp.extensions import limiter
from webapp.security import client_address, client_key
from webapp.services import accounts
from webapp.services.refusals import ServiceError

bp = Blueprint("auth", __name__, url_prefix="/auth")


def _safe_next(target):
    """Only same-site relative paths are followed after login."""
    if not target or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["REGISTER_LIMIT_PER_IP"], methods=["POST"], key_func=client_key, scope="register-ip"
)
def register():
    """Create an account and sign in (when sign-up is open)."""
    if current_user.is_authenticated:
        return redirect(url_for("files.index"))
    if not accounts.registration_open():
        abort(403, "Sign-up is closed on this server: ask an administrator for an account.")
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(form.email.data, form.password.data, ip=client_address())
        except ServiceError as exc:
            form.email.errors.append(exc.message)
        else:
            start_session(user)
            flash("Welcome to Satchel.", "success")
            return redirect(url_for("files.index"))
    return render_template("auth/register.html", form=form), 422 if form.errors else 200


def _login_account_key():
    # The account and the address together: failures from one address must not lock the owner out
    # from every other (the per-address limit still caps what one address tries across accounts).
    email = accounts.normalize_email(request.form.get("email", ""))[:254]
    return f"login-account:{client_key()}:{email}"


def _login_email_key():
    # The account from every address together: a wide ceiling on guessing one password from many
    # addresses, far above what one address may try, so one stranger cannot reach it alone.
    return "login-email:" + accounts.normalize_email(request.form.get("email", ""))[:254]


def _failed_logins_limit(setting, key_func, scope):
    """A limit on failed logins (401s) under key_func, at the rate the setting names."""
    return limiter.limit(
        lambda: current_app.config[setting],
        methods=["POST"],
        key_func=key_func,
        scope=scope,
        deduct_when=lambda response: response.status_code == 401,
    )


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_IP"], methods=["POST"], key_func=client_key, scope="login-ip"
)
@_failed_logins_limit("LOGIN_LIMIT_PER_ACCOUNT", _login_account_key, "login-account")
@_failed_logins_limit("LOGIN_LIMIT_ACROSS_ADDRESSES", _login_email_key, "login-email")
def login():
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("files.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data, ip=client_address())
        if user is not None:
            start_session(user)
            return redirect(_safe_next(request.args.get("next")) or url_for("files.index"))
        form.password.errors.append("Wrong email or password.")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form), 422 if form.errors else 200


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """End the session, server-side too: a copy of the old cookie no longer works (POST with CSRF)."""
    accounts.end_sessions(current_user._get_current_object())
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
