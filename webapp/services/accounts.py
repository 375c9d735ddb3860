"""Account use cases: sign-up, credential checks, promotion."""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import User
from webapp.services.errors import Conflict, InvalidInput, NotFound

MIN_PASSWORD = 10

# Checked against when the email is unknown, so both failures cost the same time.
_DUMMY_HASH = None


def normalize_email(email):
    """Emails compare case-insensitively; store them trimmed and lower-cased."""
    return (email or "").strip().lower()


def create_user(email, password, is_admin=False):
    """Create an account; Conflict if the email is taken."""
    email = normalize_email(email)
    if "@" not in email or len(email) > 254:
        raise InvalidInput("Enter a valid email address.", "invalid_email")
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput(f"Use a password of at least {MIN_PASSWORD} characters.", "weak_password")
    user = User(email=email, is_admin=is_admin)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("An account with this email already exists.", "email_taken") from None
    return user


def authenticate(email, password):
    """The active user with these credentials, or None (same answer for unknown and wrong)."""
    global _DUMMY_HASH
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        if _DUMMY_HASH is None:
            probe = User(email="", password_hash="")
            probe.set_password("not-a-real-password")
            _DUMMY_HASH = probe.password_hash
        User(email="", password_hash=_DUMMY_HASH).check_password(password or "")
        return None
    if not user.check_password(password or "") or user.is_banned:
        return None
    return user


def set_admin(email, is_admin=True):
    """Grant or withdraw the admin role."""
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"No account for {email}.")
    user.is_admin = is_admin
    db.session.commit()
    return user
