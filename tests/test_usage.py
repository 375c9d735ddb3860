"""Usage counters: kept by the database with every change of an upload, read instead of summed, and
checked for drift by a maintenance task."""

from contextlib import contextmanager

from sqlalchemy import event, func, select, text, update

from webapp.extensions import db
from webapp.models import Upload, UploadStatus, User
from webapp.models.base import utcnow
from webapp.scanning.clamd import EICAR
from webapp.services.maintenance import run_task
from webapp.services.usage import check_counters


def counters(user_id):
    """(bytes held, bytes reserved, pending uploads) as the users row has them now."""
    db.session.expire_all()
    user = db.session.get(User, user_id)
    return user.bytes_held, user.bytes_reserved, user.pending_uploads


def recount(user_id):
    """The same three, summed from the uploads."""

    def total(statuses, value=Upload.size):
        return db.session.scalar(
            select(func.coalesce(func.sum(value), 0)).where(
                Upload.user_id == user_id, Upload.status.in_([s.value for s in statuses])
            )
        )

    held = total([UploadStatus.AVAILABLE, UploadStatus.QUARANTINED])
    reserved = total([UploadStatus.PENDING, UploadStatus.UPLOADED, UploadStatus.SCANNING])
    return held, reserved, total([UploadStatus.PENDING], value=1)


def assert_counted(user_id, expected):
    assert counters(user_id) == expected == recount(user_id)


@contextmanager
def recorded_sql():
    statements = []

    def record(conn, cursor_, statement, *args):
        statements.append(statement.lower())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_counters_follow_an_upload_through_its_life(app, api, user, run_worker):
    assert_counted(user.id, (0, 0, 0))
    grant = api.begin("a.txt", size=5)
    assert_counted(user.id, (0, 5, 1))
    kept = api.upload(b"kept words", filename="b.txt")  # 10 bytes, uploaded: reserved, not pending
    assert_counted(user.id, (0, 15, 1))
    assert api.delete(f"/api/uploads/{grant['upload']['id']}").status_code == 204  # cancel the pending one
    assert_counted(user.id, (0, 10, 0))
    run_worker()
    assert api.status(kept)["status"] == "available"
    assert_counted(user.id, (10, 0, 0))
    api.upload(EICAR, filename="eicar.txt")
    run_worker()
    assert_counted(user.id, (10 + len(EICAR), 0, 0))  # quarantined bytes are still held
    api.upload(b"\x89PNG\r\n\x1a\n not really", filename="fake.txt")
    run_worker()
    assert_counted(user.id, (10 + len(EICAR), 0, 0))  # rejected: released
    assert api.delete(f"/api/uploads/{kept}").status_code == 204
    assert_counted(user.id, (len(EICAR), 0, 0))


def test_bulk_updates_and_expiry_are_counted_too(app, api, user, other_user):
    first, second = (api.begin(f"{n}.txt", size=100)["upload"]["id"] for n in (1, 2))
    assert_counted(user.id, (0, 200, 2))
    # A Core UPDATE, as the scan pipeline and maintenance make them: no ORM event sees it.
    db.session.execute(update(Upload).where(Upload.id == first).values(status=UploadStatus.AVAILABLE.value))
    db.session.commit()
    assert_counted(user.id, (100, 100, 1))
    db.session.execute(update(Upload).where(Upload.id == second).values(expires_at=utcnow()))
    db.session.commit()
    run_task("expire_pending")
    assert_counted(user.id, (100, 0, 0))
    # A row moved to another owner (an admin's repair) moves its bytes with it.
    db.session.execute(update(Upload).where(Upload.id == first).values(user_id=other_user.id))
    db.session.commit()
    assert_counted(user.id, (0, 0, 0))
    assert_counted(other_user.id, (100, 0, 0))
    db.session.execute(text("DELETE FROM uploads WHERE id = :id"), {"id": first})
    db.session.commit()
    assert_counted(other_user.id, (0, 0, 0))


def test_the_check_finds_drift_and_corrects_it(app, api, user, other_user):
    api.begin("a.txt", size=7)
    assert check_counters() == {}  # nothing to correct
    db.session.execute(update(User).where(User.id == user.id).values(bytes_held=999, pending_uploads=5))
    db.session.execute(update(User).where(User.id == other_user.id).values(bytes_reserved=-3))
    db.session.commit()
    run = run_task("check_usage")
    assert run.counts == {"users_corrected": 2}
    assert_counted(user.id, (0, 7, 1))
    assert_counted(other_user.id, (0, 0, 0))
    assert run_task("check_usage").counts == {"users_corrected": 0}


def test_presign_and_listing_read_the_counters_instead_of_summing_uploads(app, api, user):
    for n in range(3):
        api.begin(f"{n}.txt", size=10)
    with recorded_sql() as presign:
        api.begin("more.txt", size=10)
    with recorded_sql() as listing:
        html = api.get("/files").get_data(as_text=True)
    for statements in (presign, listing):
        assert not [s for s in statements if "sum(" in s or "count(" in s], statements
    assert "You use 40 bytes of" in " ".join(html.split())
    assert_counted(user.id, (0, 40, 4))


def test_the_quota_is_still_enforced_from_the_counters(app, api, user):
    user.quota_bytes = 25
    db.session.commit()
    api.begin("a.txt", size=20)
    response = api.post("/api/uploads", json={"filename": "b.txt", "size": 6, "content_type": "text/plain"})
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "quota_exceeded"
    api.begin("c.txt", size=5)  # exactly up to the quota
    assert_counted(user.id, (0, 25, 2))
