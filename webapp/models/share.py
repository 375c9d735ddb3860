"""Share links: public, revocable links to one available file."""

import secrets

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


def new_share_token():
    """A random, unguessable share token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class Share(db.Model):
    """A public link to one available file; revoked links stay for the record."""

    __tablename__ = "shares"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, nullable=False, default=new_share_token)
    upload_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("uploads.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_by: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    created_at = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    #: after this the link answers 404; NULL means it does not expire
    expires_at = mapped_column(UTCDateTime)
    revoked_at = mapped_column(UTCDateTime)
    #: a visitor must give this password (hashed like account passwords) before seeing the file
    password_hash: Mapped[str | None] = mapped_column(String(255))
    #: after this many downloads the link answers 404; NULL means no limit
    max_downloads: Mapped[int | None] = mapped_column(Integer)
    downloads: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    upload = relationship("Upload")

    def is_live(self, now=None):
        """Not revoked, not expired and not out of downloads."""
        now = now or utcnow()
        return (
            self.revoked_at is None
            and (self.expires_at is None or self.expires_at > now)
            and (self.max_downloads is None or self.downloads < self.max_downloads)
        )

    @property
    def state(self):
        """Why a link no longer works, in a word ("live" while it does)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.max_downloads is not None and self.downloads >= self.max_downloads:
            return "used up"
        return "live" if self.is_live() else "expired"
