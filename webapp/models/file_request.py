"""File requests: upload-only links through which people without an account send a user files."""

import secrets

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


def new_request_token():
    """A random, unguessable request token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class FileRequest(db.Model):
    """A link (/r/<token>) that accepts files for its owner until it expires, fills up or is closed.

    What arrives through it is an ordinary upload of the owner's (presigned, scanned, promoted and
    counted against their quota), marked with the request and with the browser that sent it.
    """

    __tablename__ = "file_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, nullable=False, default=new_request_token)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    #: what the owner calls it, shown to senders and beside what arrived in the owner's listing
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    #: the owner's words to the sender, shown on the request's page
    message: Mapped[str | None] = mapped_column(String(2000))
    #: the largest file it accepts, in bytes
    max_file_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: how many files it accepts in all (deleted ones make room again)
    max_files: Mapped[int] = mapped_column(Integer, nullable=False)
    #: a sender must give this password (hashed like account passwords) before the page opens
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at = mapped_column(UTCDateTime, nullable=False)
    #: closed by its owner, or by a moderator (closed_by names who)
    closed_at = mapped_column(UTCDateTime)
    closed_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))

    owner = relationship("User", foreign_keys=[user_id])

    def is_open(self, now=None):
        """Not closed and not expired (a full request is still open: it just takes nothing more)."""
        return self.closed_at is None and self.expires_at > (now or utcnow())

    @property
    def state(self):
        """In a word: open, closed or expired."""
        if self.closed_at is not None:
            return "closed"
        return "open" if self.is_open() else "expired"


class RequestReport(db.Model):
    """Someone told us a file request is abusive (phishing, say); open until a moderator resolves it."""

    __tablename__ = "request_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_request_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("file_requests.id", ondelete="CASCADE"), nullable=False, index=True
    )
    #: NULL for anonymous visitors
    reporter_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(1000), nullable=False)
    created_at = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    resolved_at = mapped_column(UTCDateTime)
    #: closed (the request was closed) or dismissed
    resolution: Mapped[str | None] = mapped_column(String(32))

    file_request = relationship("FileRequest")
