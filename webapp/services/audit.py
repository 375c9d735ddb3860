"""The audit log: one row per admin action or security-relevant event, in the caller's transaction."""

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import AuditEvent

#: Actions the log records, for the filter on the audit page.
ACTIONS = (
    "login_failed",
    "login",
    "account_created",
    "file_deleted",
    "file_renamed",
    "share_created",
    "share_revoked",
    "file_reported",
    "request_created",
    "request_closed",
    "request_reported",
    "request_kept",
    "token_created",
    "token_used",
    "token_revoked",
    "webhook_created",
    "webhook_deleted",
    "webhook_secret_rotated",
    "approve",
    "remove",
    "ban",
    "unban",
    "block_content",
    "quota_changed",
    "job_retried",
    "scan_verdict",
)


def record(action, actor=None, target_type=None, target_id=None, reason=None, details=None, ip=None):
    """Add an audit event to the session; it is written with the caller's commit."""
    event = AuditEvent(
        action=action,
        actor_id=getattr(actor, "id", None),
        actor_email=getattr(actor, "email", None),
        target_type=target_type,
        target_id=None if target_id is None else str(target_id)[:254],
        reason=(reason or None) and reason[:1000],
        details=details,
        ip=ip,
    )
    db.session.add(event)
    return event


def search(action=None, actor=None, target=None, before_id=None, limit=50):
    """Newest events first, filtered by action, actor email and target id; keyset by id."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if action:
        query = query.where(AuditEvent.action == action)
    if actor:
        query = query.where(AuditEvent.actor_email.ilike(f"%{_escape_like(actor)}%", escape="\\"))
    if target:
        query = query.where(AuditEvent.target_id == target)
    if before_id:
        query = query.where(AuditEvent.id < before_id)
    rows = list(db.session.scalars(query))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def _escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
