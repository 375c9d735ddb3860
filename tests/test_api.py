"""The JSON API's contract: what it grants, and every refusal as a 4xx JSON error with nothing left."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import bucket_keys
from webapp.extensions import db
from webapp.models import Upload


def upload_count():
    return db.session.scalar(select(func.count()).select_from(Upload))


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_begin_returns_signed_put(app, api, user):
    grant = api.begin("report.pdf", 218, "application/pdf")
    assert grant["method"] == "PUT"
    assert grant["headers"] == {"Content-Type": "application/pdf"}
    assert grant["upload"]["status"] == "pending"
    assert grant["upload"]["filename"] == "report.pdf"
    assert grant["expires_at"]
    query = parse_qs(urlsplit(grant["url"]).query)
    signed = query["X-Amz-SignedHeaders"][0].split(";")
    assert "content-type" in signed and "content-length" in signed
    assert query["X-Amz-Expires"] == ["600"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    # The key is generated: the user's filename never reaches storage.
    path = urlsplit(grant["url"]).path
    assert "report" not in path
    assert path.endswith(f"/incoming/{user.id}/{grant['upload']['id']}")


def test_upload_ids_are_random_and_long(api):
    ids = {api.begin()["upload"]["id"] for _ in range(5)}
    assert len(ids) == 5
    assert all(len(i) >= 22 for i in ids)


# Hostile sizes, types, filenames, JSON and CSRF tokens are in the corpus (tests/hostile_corpus.py);
# these are the plainer refusals.
@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"filename": "a.txt", "size": 0, "content_type": "text/plain"}, 422, "invalid_size"),
        ({"filename": "a.txt", "size": 1.5, "content_type": "text/plain"}, 422, "invalid_size"),
        ({"filename": "a.txt", "size": 10}, 422, "invalid_content_type"),
        ({"filename": "", "size": 10, "content_type": "text/plain"}, 422, "invalid_filename"),
        ({"filename": None, "size": 10, "content_type": "text/plain"}, 422, "invalid_filename"),
        ({"filename": "x" * 256, "size": 10, "content_type": "text/plain"}, 422, "invalid_filename"),
    ],
)
def test_refusals_leave_nothing_behind(app, api, body, status, code):
    assert_error(api.post("/api/uploads", json=body), status, code)
    assert upload_count() == 0
    assert bucket_keys(app) == []


NEW_UPLOAD = {"filename": "a.txt", "size": 5, "content_type": "text/plain"}


@pytest.mark.parametrize(
    "method, url",
    [
        ("GET", "/api/uploads/abc"),
        ("POST", "/api/uploads"),
        ("POST", "/api/uploads/abc/complete"),
        ("POST", "/api/uploads/abc/parts"),
        ("DELETE", "/api/uploads/abc"),
        ("GET", "/api/nothing-here"),
    ],
)
def test_strangers_get_401_json_before_the_csrf_check(app, method, url):
    """No session, so no CSRF token to send: the answer is "log in", not "csrf_failed"."""
    response = app.test_client().open(url, method=method, json=NEW_UPLOAD)
    assert_error(response, 401, "unauthorized")
    assert upload_count() == 0


@pytest.mark.parametrize("headers", [{}, {"X-CSRFToken": "made-up"}], ids=["no-token", "wrong-token"])
def test_a_session_without_its_csrf_token_is_still_refused(app, api, headers):
    assert_error(api.client.post("/api/uploads", json=NEW_UPLOAD, headers=headers), 400, "csrf_failed")
    assert upload_count() == 0


def test_unknown_route_and_method_are_json(api):
    assert_error(api.get("/api/nothing-here"), 404, "not_found")
    assert_error(api.client.put("/api/uploads", headers={"X-CSRFToken": api.csrf}), 405, "method_not_allowed")


def test_quota_is_reserved_when_url_is_issued(app, api, user):
    user.quota_bytes = 100
    db.session.commit()
    api.begin(size=60)  # pending, never uploaded: still counts
    response = api.post("/api/uploads", json={"filename": "b.txt", "size": 41, "content_type": "text/plain"})
    assert_error(response, 413, "quota_exceeded")
    assert upload_count() == 1
    api.begin(size=40)  # exactly fills the quota


def test_deleting_a_pending_upload_releases_quota(app, api, user):
    user.quota_bytes = 100
    db.session.commit()
    grant = api.begin(size=100)
    assert api.delete(f"/api/uploads/{grant['upload']['id']}").status_code == 204
    api.begin(size=100)


def test_get_upload_reports_status(api):
    grant = api.begin("notes.txt", 11, "text/plain")
    info = api.status(grant["upload"]["id"])
    assert info["status"] == "pending"
    assert info["filename"] == "notes.txt"
    assert info["size"] == 11
    assert info["content_type"] == "text/plain"
    assert info["reason"] is None


def test_complete_before_bytes_arrive_is_409(app, api):
    grant = api.begin()
    response = api.post(f"/api/uploads/{grant['upload']['id']}/complete")
    assert_error(response, 409, "object_missing")
    assert api.status(grant["upload"]["id"])["status"] == "pending"


def test_complete_twice_is_harmless(app, api):
    upload_id = api.upload(b"hello world")
    again = api.post(f"/api/uploads/{upload_id}/complete")
    assert again.status_code == 202
    assert again.get_json()["upload"]["status"] == "uploaded"


def test_delete_pending_removes_row_and_object(app, api):
    grant = api.begin(size=5)
    requests.put(grant["url"], data=b"12345", headers=grant["headers"], timeout=10)
    assert bucket_keys(app, "incoming/")
    assert api.delete(f"/api/uploads/{grant['upload']['id']}").status_code == 204
    assert bucket_keys(app) == []
    assert upload_count() == 0
    assert_error(api.get(f"/api/uploads/{grant['upload']['id']}"), 404, "not_found")


def test_expired_presign_ttl_follows_config(app, api):
    app.config["UPLOAD_URL_TTL"] = 90
    grant = api.begin()
    assert parse_qs(urlsplit(grant["url"]).query)["X-Amz-Expires"] == ["90"]


@pytest.mark.parametrize(
    "parts",
    [
        "nope",
        [],
        [1, 2],
        [{"part_number": 1}],
        [{"part_number": "1", "etag": '"abc"'}],
        [{"part_number": 1, "etag": 'abc"\x00'}],
        [{"part_number": 10**30, "etag": '"abc"'}],
        [{"part_number": 1, "etag": '"' + "a" * 500 + '"'}],
    ],
)
def test_hostile_parts_lists_are_422(app, api, parts):
    app.config["MULTIPART_THRESHOLD"] = 6 * 1024 * 1024
    grant = api.begin("big.txt", 7 * 1024 * 1024, "text/plain")
    response = api.post(f"/api/uploads/{grant['upload']['id']}/complete", json={"parts": parts})
    assert_error(response, 422, "invalid_parts")


@pytest.mark.parametrize("numbers", ["1", [], [0], [-1], [True], [1.0], list(range(1, 1002)), [10**30]])
def test_hostile_part_numbers_are_422(app, api, numbers):
    app.config["MULTIPART_THRESHOLD"] = 6 * 1024 * 1024
    grant = api.begin("big.txt", 7 * 1024 * 1024, "text/plain")
    response = api.post(f"/api/uploads/{grant['upload']['id']}/parts", json={"part_numbers": numbers})
    assert_error(response, 422, "invalid_parts")


def test_huge_json_numbers_are_refused(api):
    response = api.post(
        "/api/uploads",
        data='{"filename": "a.txt", "size": 1e400, "content_type": "text/plain"}',
        content_type="application/json",
    )
    assert_error(response, 422, "invalid_size")  # 1e400 parses as infinity, not a whole number
