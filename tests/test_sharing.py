"""Share links: who may create and revoke them, what the public sees, when they stop working."""

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from tests.conftest import RESOURCES, form_token, report, share_token
from webapp.extensions import db
from webapp.models import Report, Share, Upload
from webapp.models.base import utcnow


def test_public_page_shows_the_file_and_downloads_it(app, api, available):
    token = share_token(api, available)
    visitor = app.test_client()
    page = visitor.get(f"/s/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "normal.txt" in html and "text/plain" in html and 'name="robots" content="noindex"' in html
    assert "owner@example.com" not in html  # the owner is not disclosed
    response = visitor.get(f"/s/{token}/download")
    assert response.status_code == 302 and response.headers["Cache-Control"] == "no-store"
    got = requests.get(response.headers["Location"], timeout=10)
    assert got.content == b"a perfectly normal text file"
    assert got.headers["Content-Disposition"].startswith("attachment;")


def test_shared_image_preview_is_the_re_encoded_png(app, api, run_worker):
    upload_id = api.upload((RESOURCES / "tiny.jpg").read_bytes(), filename="pic.jpg", content_type="image/jpeg")
    run_worker()
    token = share_token(api, upload_id)
    response = app.test_client().get(f"/s/{token}/preview")
    assert response.status_code == 302
    got = requests.get(response.headers["Location"], timeout=10)
    assert got.headers["Content-Type"] == "image/png" and got.content.startswith(b"\x89PNG")


def test_links_expire(app, api, available):
    token = share_token(api, available, days="1")
    share = db.session.scalar(select(Share))
    assert share.expires_at - utcnow() > timedelta(hours=23)
    share.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert app.test_client().get(f"/s/{token}").status_code == 404
    assert app.test_client().get(f"/s/{token}/download").status_code == 404


def test_never_expiring_link(app, api, available):
    share_token(api, available, days="")
    assert db.session.scalar(select(Share)).expires_at is None


def test_revoked_links_answer_404(app, api, available):
    token = share_token(api, available)
    share = db.session.scalar(select(Share))
    assert api.form_post(f"/files/{available}/shares/{share.id}/revoke").status_code == 302
    for path in ("", "/download", "/preview"):
        assert app.test_client().get(f"/s/{token}{path}").status_code == 404
    assert "revoked" in api.get(f"/files/{available}").get_data(as_text=True)


def test_a_link_is_revoked_only_through_its_own_file(app, api, run_worker, available):
    token = share_token(api, available)
    share_id = db.session.scalar(select(Share.id).where(Share.token == token))
    second = api.upload(b"another file of mine", filename="second.txt")
    run_worker()
    assert api.form_post(f"/files/{second}/shares/{share_id}/revoke").status_code == 404
    assert app.test_client().get(f"/s/{token}").status_code == 200
    assert api.form_post(f"/files/{available}/shares/{share_id}/revoke").status_code == 302
    assert app.test_client().get(f"/s/{token}").status_code == 404


def test_only_available_files_can_be_shared(app, api):
    grant = api.begin()
    response = api.form_post(f"/files/{grant['upload']['id']}/shares", {"days": "7"})
    assert response.status_code == 404
    assert db.session.scalar(select(Share)) is None


def test_other_users_cannot_share_or_revoke_my_files(app, api, other_api, available):
    assert other_api.form_post(f"/files/{available}/shares", {"days": "7"}).status_code == 404
    share_token(api, available)
    share = db.session.scalar(select(Share))
    assert other_api.form_post(f"/files/{available}/shares/{share.id}/revoke").status_code == 404
    db.session.expire_all()
    assert db.session.get(Share, share.id).revoked_at is None


def test_share_forms_need_csrf(app, api, available):
    assert api.client.post(f"/files/{available}/shares", data={"days": "7"}).status_code == 400
    assert db.session.scalar(select(Share)) is None


@pytest.mark.parametrize("days", ["0", "9999", "abc", "-1"])
def test_bad_durations_are_refused_readably(app, api, available, days):
    response = api.form_post(f"/files/{available}/shares", {"days": days})
    assert response.status_code == 302
    assert db.session.scalar(select(Share)) is None
    assert "Choose how long" in api.get(f"/files/{available}").get_data(as_text=True)


@pytest.mark.parametrize("token", ["short", "x" * 43, "a" * 200, "%00" * 30, "../../etc/passwd"])
def test_unknown_tokens_are_refused(app, token):
    assert app.test_client().get(f"/s/{token}").status_code in (400, 404)


def test_deleted_file_kills_its_links(app, api, available):
    token = share_token(api, available)
    api.form_post(f"/files/{available}/delete")
    assert app.test_client().get(f"/s/{token}").status_code == 404


def test_reports_are_recorded_and_validated(app, api, available):
    token = share_token(api, available)
    assert report(app, token, "no").status_code == 422
    assert report(app, token, "x" * 1001).status_code == 422
    assert db.session.scalar(select(Report)) is None
    response = report(app, token, "Contains someone's private data")
    assert response.status_code == 302
    [stored] = db.session.scalars(select(Report)).all()
    assert (stored.upload_id, stored.reason, stored.reporter_id) == (available, "Contains someone's private data", None)
    assert db.session.get(Upload, available).status == "available"  # a report alone takes nothing down


def test_report_needs_csrf(app, api, available):
    token = share_token(api, available)
    response = app.test_client().post(f"/s/{token}/report", data={"reason": "spam spam"})
    assert response.status_code == 400
    assert db.session.scalar(select(Report)) is None


def test_signed_in_reporter_is_recorded(app, api, other_api, other_user, available):
    token = share_token(api, available)
    page = other_api.get(f"/s/{token}").get_data(as_text=True)
    csrf = form_token(page)
    other_api.client.post(f"/s/{token}/report", data={"reason": "not ok at all", "csrf_token": csrf})
    assert db.session.scalar(select(Report)).reporter_id == other_user.id


class TestReportRateLimit:
    """Reports are limited per visitor, so a share link cannot be used to flood the moderators."""

    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_ENABLED": True}

    def test_eleventh_report_in_an_hour_is_429(self, app, api, available):
        token = share_token(api, available)
        statuses = [report(app, token, f"report number {n}").status_code for n in range(11)]
        assert statuses[:10] == [302] * 10
        assert statuses[10] == 429
        assert len(db.session.scalars(select(Report)).all()) == 10
