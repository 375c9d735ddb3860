"""Abuse limits on Redis-backed counters, and the quota holding under parallel requests."""

import threading

import pytest
from sqlalchemy import func, select

from tests.processes import http_login, serving
from webapp.extensions import db
from webapp.models import Upload


class TestLimits:
    @pytest.fixture
    def app_config(self):
        return {
            "RATELIMIT_ENABLED": True,
            "PRESIGN_LIMIT": "5 per minute",
            "DOWNLOAD_LIMIT": "3 per minute",
            "MAX_PENDING_UPLOADS": 100,
        }

    def test_presign_requests_per_user_per_minute(self, api, other_api):
        codes = [
            api.post("/api/uploads", json={"filename": "a.txt", "size": 5, "content_type": "text/plain"}).status_code
            for _ in range(6)
        ]
        assert codes == [201] * 5 + [429]
        refused = api.post("/api/uploads", json={"filename": "a.txt", "size": 5, "content_type": "text/plain"})
        assert refused.get_json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) > 0
        # Another user has a budget of their own.
        assert (
            other_api.post(
                "/api/uploads", json={"filename": "a.txt", "size": 5, "content_type": "text/plain"}
            ).status_code
            == 201
        )

    def test_the_upload_form_shares_the_presign_budget(self, api):
        begun = [api.form_post("/upload").status_code for _ in range(3)]
        presigned = [
            api.post("/api/uploads", json={"filename": "a.txt", "size": 5, "content_type": "text/plain"}).status_code
            for _ in range(3)
        ]
        assert begun + presigned == [303] * 3 + [201] * 2 + [429]
        refused = api.form_post("/upload")
        assert refused.status_code == 429 and "text/html" in refused.content_type

    def test_download_urls_per_file(self, app, api, run_worker):
        upload_id = api.upload(b"popular file")
        run_worker()
        codes = [api.get(f"/files/{upload_id}/download").status_code for _ in range(4)]
        assert codes == [302, 302, 302, 429]
        page = api.get(f"/files/{upload_id}/download")
        assert "Location" not in page.headers and "X-Amz" not in page.get_data(as_text=True)


def test_pending_uploads_per_user_are_capped(app, api):
    app.config["MAX_PENDING_UPLOADS"] = 3
    for _ in range(3):
        api.begin(size=5)
    response = api.post("/api/uploads", json={"filename": "a.txt", "size": 5, "content_type": "text/plain"})
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "too_many_pending"
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 3


def test_hsts_only_over_tls(app):
    assert "Strict-Transport-Security" not in app.test_client().get("/").headers
    secure = app.test_client().get("/", base_url="https://satchel.example")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.postgresql  # row locks
def test_quota_reservation_is_atomic_under_parallel_presigns(app, user, monkeypatch):
    """20 presigns at once with room for exactly one: exactly one succeeds."""
    import time

    from webapp.services import uploads

    real_quota_for = uploads.quota_for

    def slow_quota_for(user):
        # Widen the window between reading the usage and writing the reservation, so that
        # without the row lock the parallel requests would all see room and overbook.
        quota = real_quota_for(user)
        time.sleep(0.05)
        return quota

    monkeypatch.setattr(uploads, "quota_for", slow_quota_for)
    user.quota_bytes = 1000
    db.session.commit()
    with serving(app) as base:
        session = http_login(base, user.email)
        barrier = threading.Barrier(20)
        codes = []

        def presign():
            barrier.wait()
            response = session.post(
                f"{base}/api/uploads",
                timeout=30,
                json={"filename": "race.txt", "size": 600, "content_type": "text/plain"},
            )
            codes.append(response.status_code)

        workers = [threading.Thread(target=presign) for _ in range(20)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
    assert sorted(codes) == [201] + [413] * 19
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 1
