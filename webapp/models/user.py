"""People who sign in."""

from flask_login import UserMixin
from sqlalchemy import BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


class User(UserMixin, db.Model):
    """An account; the email is stored lower-cased and is unique."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: lower-cased address, unique
    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    #: scrypt hash from Werkzeug, salted
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_banned: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: bytes this user may hold; NULL means the configured default
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    #: part of every session's id: bumping it ends all of the user's sessions (logout, ban)
    session_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # Usage, kept by triggers on uploads in the same transaction as each change (models/usage.py).
    #: bytes of files available or quarantined
    bytes_held: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    #: bytes of uploads on their way to a verdict (pending, uploaded, scanning)
    bytes_reserved: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    #: uploads waiting for their bytes
    pending_uploads: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    def get_id(self):
        """Flask-Login's session id: the user id and the current session version."""
        return f"{self.id}.{self.session_version}"

    @property
    def bytes_used(self):
        """Bytes counted against the quota: held and reserved."""
        return self.bytes_held + self.bytes_reserved

    def end_sessions(self):
        """Invalidate every session and remember-cookie this user holds (caller commits)."""
        self.session_version = (self.session_version or 0) + 1

    def set_password(self, password, method="scrypt"):
        """Store a salted hash of password (Werkzeug's scrypt at its default work factor)."""
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password):
        """True when password matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self):
        """Banned accounts cannot hold a session."""
        return not self.is_banned

    def __repr__(self):
        return f"<User {self.id} {self.email}>"
