"""Session lifetimes, and the gate in front of the JSON API.

A session ends SESSION_MAX_AGE after login and SESSION_IDLE_TIMEOUT after its last request (counted
to the minute: see seen_resolution). Both times live in the signed session cookie, so a copy of an
old cookie carries its own expiry with it.
"""

import time
from datetime import UTC, datetime, timedelta

from flask import flash, g, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user, login_user, logout_user

from webapp.errors import wants_json
from webapp.extensions import csrf, login_manager
from webapp.security import client_address
from webapp.services import api_tokens

#: The blueprint whose calls accept API tokens.
API_BLUEPRINT = "api"

LOGIN_AT = "_login_at"
SEEN_AT = "_seen_at"


def now():
    """Seconds since the epoch (one function, so a test can move the server's clock)."""
    return int(time.time())


def stamp(cookie_session, at=None):
    """Mark a session as logged in at `at` (default now): both lifetimes start there."""
    at = now() if at is None else at
    cookie_session[LOGIN_AT] = cookie_session[SEEN_AT] = at
    cookie_session.permanent = True  # a dated cookie, not one that lives until the browser closes


def start_session(user):
    """Log user in on a fresh session: nothing from before the login survives."""
    session.clear()
    login_user(user)
    stamp(session)


def ends_at(cookie_session, config):
    """When the session's lifetime runs out (epoch seconds), or None for a session never stamped."""
    login_at, seen_at = cookie_session.get(LOGIN_AT), cookie_session.get(SEEN_AT)
    if not (isinstance(login_at, int) and isinstance(seen_at, int)):
        return None
    return min(login_at + config["SESSION_MAX_AGE"], seen_at + config["SESSION_IDLE_TIMEOUT"])


def seen_resolution(config):
    """How stale the last-request time may get before a request writes it again (up to a minute,
    a tenth of the idle timeout when that is short): an idle session ends that much early at most."""
    return min(60, config["SESSION_IDLE_TIMEOUT"] // 10)


class LifetimeSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, whose cookie expires when the session does."""

    def get_expiration_time(self, app, cookie_session):
        end = ends_at(cookie_session, app.config) if cookie_session.permanent else None
        if end is None:
            return super().get_expiration_time(app, cookie_session)
        return datetime.fromtimestamp(end, UTC)


def register(app):
    """Install the session interface and the request hook (before CSRFProtect's: see create_app)."""
    app.session_interface = LifetimeSessionInterface()
    # The signature itself is refused once older than this, whatever the cookie says.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=app.config["SESSION_MAX_AGE"])
    # The cookie is sent again when the session changes (its last-request time included), not on
    # every response: its expiry follows that time, so nothing is lost.
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False

    @app.before_request
    def guard_session():
        scheme = request.headers.get("Authorization", "").partition(" ")[0]
        if request.blueprint == API_BLUEPRINT and scheme.lower() == "bearer":
            # A script with a personal API token: no session, no CSRF token (nothing a browser sends by
            # itself), and only on the JSON API. A bad token is a 401, never a fall back to the session.
            user, token = api_tokens.authenticate(request.headers["Authorization"], ip=client_address())
            g._login_user, g.api_token = user, token  # Flask-Login's current_user, for this request only
            return None
        if "_user_id" in session:
            end = ends_at(session, app.config)
            if end is None or now() >= end:
                _end_session()
            elif now() - session[SEEN_AT] >= seen_resolution(app.config):
                # Not on every request: an unchanged session is not signed and sent again.
                session[SEEN_AT] = now()
        # Strangers to the API are told to log in before anything else is checked (CSRF included):
        # a client without a session has no token to send, and "log in" is the answer it can act on.
        # The calls made for strangers (a file request's senders) are the exception.
        view = app.view_functions.get(request.endpoint)
        if wants_json() and not current_user.is_authenticated and not getattr(view, "open_to_strangers", False):
            return login_manager.unauthorized()
        return None

    @app.before_request
    def check_csrf():
        # Flask-WTF's own check is off (WTF_CSRF_CHECK_DEFAULT): this one runs after guard_session, and
        # skips calls made with an API token.
        if app.config["WTF_CSRF_ENABLED"] and api_token() is None:
            csrf.protect(apply_exemptions=True)


def api_token():
    """The API token this request came with, or None (a session, or no one)."""
    return g.get("api_token")


def open_to_strangers(view):
    """Mark a JSON API view as one that people without an account call (it checks access itself)."""
    view.open_to_strangers = True
    return view


def _end_session():
    """Log out a session whose time is up; its CSRF token stays, so a form posted now leads to login."""
    logout_user()
    session.pop(LOGIN_AT, None)
    session.pop(SEEN_AT, None)
    session.permanent = False
    if not wants_json():
        flash("Your session has ended; log in again.", "info")
