"""Account use cases: sign-up, credential checks, promotion."""

import secrets

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import User
from webapp.services import audit
from webapp.services.refusals import Conflict, InvalidInput, NotFound

MIN_PASSWORD = 10

# Checked against when the email is unknown, so both failures cost the same time.
_DUMMY_HASH = None


def normalize_email(email):
    """Emails compare case-insensitively; store them trimmed and lower-cased."""
    return (email or "").strip().lower()


def registration_open():
    """Whether anyone may sign up; any REGISTRATION value but "open" closes sign-up."""
    return current_app.config["REGISTRATION"] == "open"


def generate_password():
    """A random initial password (about 96 bits), for an account an admin makes."""
    return secrets.token_urlsafe(12)


def create_user(email, password, is_admin=False, ip=None, created_by=None):
    """Create an account (audited, by created_by or by the new user); Conflict if the email is taken."""
    email = normalize_email(email)
    if "@" not in email or len(email) > 254:
        raise InvalidInput("Enter a valid email address.", "invalid_email")
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput(f"Use a password of at least {MIN_PASSWORD} characters.", "weak_password")
    user = User(email=email, is_admin=is_admin)
    user.set_password(password, current_app.config["PASSWORD_HASH_METHOD"])
    db.session.add(user)
    try:
        db.session.flush()
        audit.record("account_created", created_by or user, "user", user.id, details={"admin": is_admin}, ip=ip)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("An account with this email already exists.", "email_taken") from None
    return user


def authenticate(email, password, ip=None):
    """The active user with these credentials, or None (same answer for unknown and wrong).

    Every attempt is audited: failures with the address tried, successes with the account.
    """
    global _DUMMY_HASH
    email = normalize_email(email)
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        if _DUMMY_HASH is None:
            probe = User(email="", password_hash="")
            probe.set_password("not-a-real-password", current_app.config["PASSWORD_HASH_METHOD"])
            _DUMMY_HASH = probe.password_hash
        User(email="", password_hash=_DUMMY_HASH).check_password(password or "")
        ok = False
    else:
        ok = user.check_password(password or "") and not user.is_banned
    if ok:
        audit.record("login", user, "user", user.id, ip=ip)
    else:
        audit.record(
            "login_failed",
            None,
            "user",
            email[:254],
            ip=ip,
            details={"banned": True} if user is not None and user.is_banned else None,
        )
    db.session.commit()
    return user if ok else None


def set_admin(email, is_admin=True):
    """Grant or withdraw the admin role."""
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"No account for {email}.")
    user.is_admin = is_admin
    db.session.commit()
    return user


def end_sessions(user):
    """Log the user out everywhere: every session cookie they hold stops working."""
    user.end_sessions()
    db.session.commit()
