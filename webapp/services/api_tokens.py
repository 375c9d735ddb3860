"""Personal API tokens: made, listed and revoked by their owner (or revoked by an admin), and checked
on each API call that carries one.

A token is "sat_" and 43 URL-safe characters (256 random bits). Only its SHA-256 is stored: a token
this high in entropy needs no slow hash, and each API call can find its row by an index lookup.
"""

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import ApiToken, User
from webapp.models.api_token import SCOPES
from webapp.models.base import utcnow
from webapp.services import audit
from webapp.services.refusals import InvalidInput, NotFound, ServiceError

PREFIX = "sat_"
_TOKEN = re.compile(r"sat_[A-Za-z0-9_-]{43}")
MAX_DAYS = 365
MAX_NAME = 100
#: A token's last-used time, and the audit log's record of its use, are written at most this often.
USE_RESOLUTION = timedelta(minutes=1)


class Unauthorized(ServiceError):
    """The token is unknown, revoked, expired, or its owner banned: all alike."""

    status = 401


class InsufficientScope(ServiceError):
    status = 403


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user, name, scopes, days=None, ip=None):
    """A new token of the user's: returns (its row, the token itself, shown to the user only now)."""
    name = " ".join((name or "").split())
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidInput(f"Name the token (up to {MAX_NAME} characters).", "invalid_name")
    chosen = [scope for scope in SCOPES if scope in set(scopes or ())]
    if not chosen or set(scopes) - set(SCOPES):
        raise InvalidInput(f"Choose at least one scope of {', '.join(SCOPES)}.", "invalid_scopes")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS):
        raise InvalidInput(f"A token can last from 1 to {MAX_DAYS} days, or not expire.", "invalid_expiry")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=_digest(secret),
        prefix=secret[:8],
        scopes=" ".join(chosen),
        expires_at=utcnow() + timedelta(days=days) if days else None,
    )
    db.session.add(token)
    db.session.flush()
    audit.record(
        "token_created", user, "api_token", token.id, details={"name": name, "scopes": chosen, "days": days}, ip=ip
    )
    db.session.commit()
    return token, secret


def tokens_of(user):
    """The user's tokens, newest first (revoked and expired ones included, for the record)."""
    return list(db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())))


def live_tokens(limit=200):
    """Every live token, newest first, for admins."""
    now = utcnow()
    query = (
        select(ApiToken)
        .where(ApiToken.revoked_at.is_(None), (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now))
        .order_by(ApiToken.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


def _find(token_id):
    if isinstance(token_id, int) and 0 < token_id < 2**31:
        return db.session.get(ApiToken, token_id)
    return None


def revoke_token(user, token_id, ip=None):
    """Revoke one of the user's tokens: it stops working at once."""
    token = _find(token_id)
    if token is None or token.user_id != user.id:
        raise NotFound()
    return _revoke(token, user, ip=ip)


def revoke_any(admin, token_id, reason, ip=None):
    """An admin revokes anyone's token."""
    token = _find(token_id) if admin.is_admin else None
    if token is None:
        raise NotFound()
    _revoke(token, admin, reason=reason, ip=ip)
    return f"Revoked the token “{token.name}” of {token.owner.email}."


def _revoke(token, actor, reason=None, ip=None):
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        token.revoked_by = actor.id
        details = {"name": token.name, "owner_id": token.user_id}
        audit.record("token_revoked", actor, "api_token", token.id, reason=reason, details=details, ip=ip)
        db.session.commit()
    return token


def authenticate(header, ip=None):
    """(user, token) for an `Authorization: Bearer <token>` header value; Unauthorized for a token that
    is malformed, unknown, revoked or expired, or whose owner is banned. Records the use (last-used
    time and an audit event) at most once per USE_RESOLUTION."""
    scheme, _, secret = (header or "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not _TOKEN.fullmatch(secret):
        raise Unauthorized("Send a valid API token as Authorization: Bearer <token>.", "invalid_token")
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    now = utcnow()
    user = db.session.get(User, token.user_id) if token is not None else None
    if token is None or not token.is_live(now) or user is None or user.is_banned:
        db.session.rollback()
        raise Unauthorized("This API token is not valid (unknown, revoked or expired).", "invalid_token")
    if token.last_used_at is None or now - token.last_used_at >= USE_RESOLUTION:
        token.last_used_at = now
        audit.record("token_used", user, "api_token", token.id, details={"name": token.name}, ip=ip)
        db.session.commit()
    return user, token


def require(token, scopes):
    """Refuse a call that none of a token's scopes covers (calls without a token, from a session, may all)."""
    if token is not None and not set(scopes) & token.scope_set:
        needed = " or ".join(repr(scope) for scope in scopes)
        raise InsufficientScope(f"This API token needs the {needed} scope for this call.", "insufficient_scope")
