"""Share links, reports from the people they reach, blocked content, and the audit log."""
import secrets

from sqlalchemy import DDL, JSON, BigInteger, ForeignKey, Index, Integer, String, event
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
    upload_id: Mapped[str] = mapped_column(String(32), ForeignKey("uploads.id", ondelete="CASCADE"),
                                           nullable=False, index=True)
    created_by: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"),
                                            nullable=False)
    created_at = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    #: after this the link answers 404; NULL means it does not expire
    expires_at = mapped_column(UTCDateTime)
    revoked_at = mapped_column(UTCDateTime)

    upload = relationship("Upload")

    def is_live(self, now=None):
        """Not revoked and not expired."""
        now = now or utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Report(db.Model):
    """Someone told us a file is abusive; open until a moderator resolves it."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upload_id: Mapped[str] = mapped_column(String(32), ForeignKey("uploads.id", ondelete="CASCADE"),
                                           nullable=False, index=True)
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


# Append-only in the database itself, not just in the app: UPDATE, DELETE and TRUNCATE are refused
# (SQLite has no TRUNCATE).
_APPEND_ONLY = {
    "postgresql": [
        """CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
           BEGIN RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
           FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""",
        """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
           FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""",
    ],
    "sqlite": [
        """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
           BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
        """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
           BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    ],
}

for _dialect, _statements in _APPEND_ONLY.items():
    for _statement in _statements:
        event.listen(AuditEvent.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect))
