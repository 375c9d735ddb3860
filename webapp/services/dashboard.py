"""Numbers for the admin pages: files by status, uploads per day, storage by user, the scanner."""

from datetime import timedelta

from flask import current_app
from sqlalchemy import func, or_, select

from webapp.extensions import db
from webapp.models import Upload, UploadStatus, User
from webapp.models.base import utcnow
from webapp.models.upload import COUNTS_AGAINST_QUOTA
from webapp.scanning.clamd import ClamdClient, ScannerUnavailable
from webapp.services import job_listings
from webapp.services.scanner_check import last_scanner_check

_HELD = [s.value for s in COUNTS_AGAINST_QUOTA]


def status_counts():
    """{status: number of files} for every status, zeros included."""
    counts = dict(db.session.execute(select(Upload.status, func.count()).group_by(Upload.status)).all())
    return {s.value: counts.get(s.value, 0) for s in UploadStatus}


def uploads_per_day(days=14):
    """[(date, uploads, bytes)] for the last days, oldest first, zeros included."""
    since = utcnow() - timedelta(days=days - 1)
    since = since.replace(hour=0, minute=0, second=0, microsecond=0)
    day = func.date(Upload.created_at)
    rows = db.session.execute(
        select(day, func.count(), func.coalesce(func.sum(Upload.size), 0))
        .where(Upload.created_at >= since)
        .group_by(day)
    ).all()
    found = {str(d): (n, int(b)) for d, n, b in rows}
    result = []
    for offset in range(days):
        date = (since + timedelta(days=offset)).date().isoformat()
        result.append((date, *found.get(date, (0, 0))))
    return result


def storage_by_user(limit=10):
    """[(user, bytes held, files)] for the users holding the most, largest first."""
    total = func.sum(Upload.size)
    rows = db.session.execute(
        select(User, total, func.count(Upload.id))
        .join(Upload, Upload.user_id == User.id)
        .where(Upload.status.in_(_HELD))
        .group_by(User.id)
        .order_by(total.desc())
        .limit(limit)
    ).all()
    return [(user, int(size), files) for user, size, files in rows]


def last_successful_scan():
    """When the scanner last finished a file (whatever its verdict), or None."""
    return db.session.scalar(
        select(func.max(Upload.scanned_at)).where(
            or_(Upload.reason.is_(None), Upload.reason.not_in(["scan_incomplete", "scan_limits_exceeded"]))
        )
    )


def scanner_status():
    """clamd's version line (engine/signatures/date), or why it cannot be had."""
    config = current_app.config
    if config["SCANNER"] != "clamd":
        return {"ok": False, "text": "scanning disabled"}
    try:
        return {"ok": True, "text": ClamdClient(config["CLAMD_URL"], timeout=2).version()}
    except ScannerUnavailable as exc:
        return {"ok": False, "text": str(exc)}


def overview():
    """Everything the dashboard shows."""
    return {
        "status_counts": status_counts(),
        "per_day": uploads_per_day(),
        "by_user": storage_by_user(),
        "last_scan": last_successful_scan(),
        "scanner": scanner_status(),
        "scanner_check": last_scanner_check(),
        "queues": job_listings.overview(),
    }


def users_with_usage(search=None, limit=50, after_id=None):
    """Accounts (optionally matching an email fragment) with the bytes and files they hold."""
    held = (
        select(Upload.user_id, func.sum(Upload.size).label("bytes"), func.count().label("files"))
        .where(Upload.status.in_(_HELD))
        .group_by(Upload.user_id)
        .subquery()
    )
    query = (
        select(User, func.coalesce(held.c.bytes, 0), func.coalesce(held.c.files, 0))
        .outerjoin(held, held.c.user_id == User.id)
        .order_by(User.id)
        .limit(limit + 1)
    )
    if search:
        pattern = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(User.email.ilike(f"%{pattern}%", escape="\\"))
    if after_id:
        query = query.where(User.id > after_id)
    rows = db.session.execute(query).all()
    page = [(user, int(size), files) for user, size, files in rows[:limit]]
    return page, (page[-1][0].id if len(rows) > limit else None)
