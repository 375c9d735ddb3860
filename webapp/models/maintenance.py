"""What each run of a scheduled maintenance task did."""

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


class MaintenanceRun(db.Model):
    """One run of one maintenance task: when, how it ended, what it changed."""

    __tablename__ = "maintenance_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    job_id: Mapped[str | None] = mapped_column(String(128))
    started_at = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    finished_at = mapped_column(UTCDateTime)
    #: "ok" or "failed"
    outcome: Mapped[str | None] = mapped_column(String(16))
    #: what the run changed, e.g. {"expired": 3}
    counts: Mapped[dict | None] = mapped_column(JSON)
    bytes_reclaimed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(String(1000))
