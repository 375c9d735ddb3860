"""Personal API tokens: a script's way into the JSON API without a browser session."""

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

#: What a token may be allowed to do (services/api_tokens.py maps them to the API's calls).
SCOPES = ("upload", "read", "delete")


class ApiToken(db.Model):
    """A bearer token of one user's, limited to some scopes; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    #: SHA-256 (hex) of the whole token
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    #: the token's first characters, shown so that its owner can tell tokens apart
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    #: space-separated, from SCOPES
    scopes: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    #: NULL: it does not expire
    expires_at = mapped_column(UTCDateTime)
    last_used_at = mapped_column(UTCDateTime)
    revoked_at = mapped_column(UTCDateTime)
    #: the owner, or the admin who revoked it
    revoked_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))

    owner = relationship("User", foreign_keys=[user_id])

    @property
    def scope_set(self):
        return frozenset(self.scopes.split())

    def is_live(self, now=None):
        now = now or utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def state(self):
        if self.revoked_at is not None:
            return "revoked"
        return "live" if self.is_live() else "expired"
