"""The usage counters' check: recount each user's uploads and correct counters that drifted.

The counters are kept by triggers (models/usage.py); drift would take a change the triggers cannot
see, such as a hand-edited row with the triggers off. The check finds users whose counters differ
from a recount, then corrects each under its row lock, so no concurrent change is lost.
"""

import logging

from sqlalchemy import case, func, or_, select, update

from webapp.extensions import db
from webapp.models import Upload, UploadStatus, User
from webapp.models.usage import HELD, RESERVED

log = logging.getLogger(__name__)

COUNTERS = ("bytes_held", "bytes_reserved", "pending_uploads")


def _recount(upload):
    """(held, reserved, pending) expressions over upload rows (an Upload entity or alias)."""
    held = func.coalesce(func.sum(case((upload.status.in_([s.value for s in HELD]), upload.size), else_=0)), 0)
    reserved = func.coalesce(func.sum(case((upload.status.in_([s.value for s in RESERVED]), upload.size), else_=0)), 0)
    pending = func.coalesce(func.sum(case((upload.status == UploadStatus.PENDING.value, 1), else_=0)), 0)
    return held, reserved, pending


def _drifted():
    """Ids of users whose counters differ from a recount (a race may list a user that is right)."""
    counted = (
        select(Upload.user_id, *(value.label(name) for name, value in zip(COUNTERS, _recount(Upload), strict=True)))
        .where(Upload.status.in_([s.value for s in HELD + RESERVED]))
        .group_by(Upload.user_id)
        .subquery()
    )
    differs = [getattr(User, name) != func.coalesce(getattr(counted.c, name), 0) for name in COUNTERS]
    query = select(User.id).outerjoin(counted, counted.c.user_id == User.id).where(or_(*differs))
    return list(db.session.scalars(query))


def _correct(user_id):
    """Recount one user's uploads under the user's row lock; returns the drift corrected, or None."""
    user = db.session.execute(
        select(User).where(User.id == user_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if user is None:
        db.session.rollback()
        return None
    before = {name: getattr(user, name) for name in COUNTERS}
    # One statement, after the lock: every change committed before it is counted, none after it can be.
    held, reserved, pending = (
        select(value).where(Upload.user_id == user_id).scalar_subquery() for value in _recount(Upload)
    )
    db.session.execute(
        update(User)
        .where(User.id == user_id)
        .values(bytes_held=held, bytes_reserved=reserved, pending_uploads=pending)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(user)
    after = {name: getattr(user, name) for name in COUNTERS}
    db.session.commit()
    if after == before:
        return None
    drift = {name: after[name] - before[name] for name in COUNTERS if after[name] != before[name]}
    log.warning("usage counters of user %s drifted and were corrected: %s", user_id, drift)
    return drift


def check_counters():
    """Correct every user's counters that differ from a recount; returns {user id: drift}."""
    corrected = {}
    for user_id in _drifted():
        drift = _correct(user_id)
        if drift:
            corrected[user_id] = drift
    return corrected
