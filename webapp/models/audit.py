"""The audit log: append-only, in the database itself and not just in the app."""

from sqlalchemy import DDL, JSON, BigInteger, Index, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


class AuditEvent(db.Model):
    """One admin action or security-relevant event; rows are never updated or deleted."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_action_created", "action", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)
    #: who acted (NULL for anonymous visitors and the system)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    #: the actor's email at the time, kept even if the account changes
    actor_email: Mapped[str | None] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(254), index=True)
    reason: Mapped[str | None] = mapped_column(String(1000))
    details: Mapped[dict | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))


# The triggers, per dialect, that refuse UPDATE and DELETE on the audit log (migration 0002 creates them).
NO_UPDATE_OR_DELETE = {
    "postgresql": [
        """CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
           BEGIN RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
           FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""",
    ],
    "sqlite": [
        """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
           BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
        """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
           BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    ],
}

# TRUNCATE skips row triggers, so PostgreSQL needs a statement trigger too (migration 0006 creates it;
# SQLite has no TRUNCATE).
NO_TRUNCATE = {
    "postgresql": [
        """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
           FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""",
    ],
}

for _triggers in (NO_UPDATE_OR_DELETE, NO_TRUNCATE):
    for _dialect, _statements in _triggers.items():
        for _statement in _statements:
            event.listen(AuditEvent.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect))
