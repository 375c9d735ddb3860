"""What `flask scanner check` found about the running clamd."""

from sqlalchemy import BigInteger, Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


class ScannerCheck(db.Model):
    """One run of the scanner check: did clamd find the test signature in a file of max_bytes?"""

    __tablename__ = "scanner_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    checked_at = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False)
    #: size of the padded test archive, SCANNER_MAX_BYTES at the time
    max_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: what clamd answered, or why the check could not run
    reply: Mapped[str | None] = mapped_column(String(255))
    #: clamd's engine and signature version line
    version: Mapped[str | None] = mapped_column(String(255))
    seconds: Mapped[float | None] = mapped_column(Float)
