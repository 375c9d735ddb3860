"""Reports about files from the people they reach, and content nobody may upload again."""

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


class Report(db.Model):
    """Someone told us a file is abusive; open until a moderator resolves it."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upload_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("uploads.id", ondelete="CASCADE"), nullable=False, index=True
    )
    #: NULL for anonymous visitors of a share page
    reporter_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(1000), nullable=False)
    created_at = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    resolved_at = mapped_column(UTCDateTime)
    #: approved (kept) or removed
    resolution: Mapped[str | None] = mapped_column(String(32))


class BlockedHash(db.Model):
    """Content nobody may upload again, by SHA-256 of its bytes."""

    __tablename__ = "blocked_hashes"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(1000), nullable=False)
    created_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    created_at = mapped_column(UTCDateTime, nullable=False, default=utcnow)
