"""Personal API tokens and the JSON API a script uses with them, against the real stack.

A token is made on the settings page and shown once; with it, a client that has no session and no CSRF
token uploads in three steps, waits for the verdict, lists, renames, downloads and deletes, each call
within the token's scopes. Tokens never open HTML pages, and stop at once when revoked (by their owner
or an admin), expired, or their owner banned.
"""

import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from tests.conftest import Api
from webapp.extensions import db
from webapp.models import ApiToken, AuditEvent, Upload
from webapp.models.base import utcnow


def make_token(api, name="backup script", scopes=("upload", "read", "delete"), days="90"):
    """Create a token through the settings form; returns the token as shown that once."""
    response = api.form_post("/settings/tokens", {"name": name, "scopes": list(scopes), "days": days})
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return re.search(r'value="(sat_[A-Za-z0-9_-]{43})"', response.text).group(1)


class Script:
    """A client with nothing but a token: no cookies, no CSRF token."""

    def __init__(self, app, token):
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method, url, json=None):
        return self.client.open(url, method=method, json=json, headers=self.headers)

    def upload(self, data, filename="script.txt", content_type="text/plain"):
        grant = self.call(
            "POST", "/api/uploads", {"filename": filename, "size": len(data), "content_type": content_type}
        )
        assert grant.status_code == 201, grant.text
        grant = grant.get_json()
        assert requests.put(grant["url"], data=data, headers=grant["headers"], timeout=30).status_code == 200
        upload_id = grant["upload"]["id"]
        assert self.call("POST", f"/api/uploads/{upload_id}/complete").status_code == 202
        return upload_id


@pytest.fixture
def token(api):
    return make_token(api)


def test_a_script_uploads_waits_for_the_verdict_and_downloads_with_a_token(app, token, run_worker, user):
    script = Script(app, token)
    upload_id = script.upload(b"nightly backup of the notes")
    assert script.call("GET", f"/api/uploads/{upload_id}").get_json()["upload"]["status"] == "uploaded"
    run_worker()
    assert script.call("GET", f"/api/uploads/{upload_id}").get_json()["upload"]["status"] == "available"
    link = script.call("GET", f"/api/uploads/{upload_id}/download").get_json()
    assert requests.get(link["url"], timeout=10).content == b"nightly backup of the notes"
    assert link["expires_in"] == app.config["DOWNLOAD_URL_TTL"]
    renamed = script.call("PATCH", f"/api/uploads/{upload_id}", {"filename": "notes-2026-12-02.txt"})
    assert renamed.status_code == 200 and renamed.get_json()["upload"]["filename"] == "notes-2026-12-02.txt"
    listed = script.call("GET", "/api/uploads").get_json()
    assert [u["filename"] for u in listed["uploads"]] == ["notes-2026-12-02.txt"] and listed["next"] is None
    assert script.call("DELETE", f"/api/uploads/{upload_id}").status_code == 204
    assert script.call("GET", f"/api/uploads/{upload_id}").status_code == 404
    # No cookie was ever set: a token call leaves no session behind.
    assert script.client.get_cookie("session") is None
    db.session.expire_all()
    used = db.session.scalar(select(ApiToken))
    assert used.last_used_at is not None and used.user_id == user.id
    actions = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert "token_created" in actions and "token_used" in actions
    assert actions.count("token_used") == 1  # at most once a minute


def test_the_listing_pages_filter_and_sort_like_the_page(app, api, token):
    ids = [api.upload(f"file {n}".encode(), f"{name}.txt") for n, name in enumerate(["cherry", "apple", "banana"])]
    script = Script(app, token)
    first = script.call("GET", "/api/uploads?sort=name&limit=2").get_json()
    assert [u["filename"] for u in first["uploads"]] == ["apple.txt", "banana.txt"]
    rest = script.call("GET", f"/api/uploads?sort=name&limit=2&after={first['next']}").get_json()
    assert [u["filename"] for u in rest["uploads"]] == ["cherry.txt"] and rest["next"] is None
    assert [u["id"] for u in script.call("GET", "/api/uploads?q=ANAN").get_json()["uploads"]] == [ids[2]]
    for bad in ("limit=0", "limit=201", "limit=x", "sort=colour", "after=garbage", "kind=rock"):
        refused = script.call("GET", f"/api/uploads?{bad}")
        assert refused.status_code == 422 and "code" in refused.get_json()["error"], bad


ROUTES = [
    # (method, url, body, the scopes that may make the call)
    ("GET", "/api/uploads", None, {"read"}),
    ("POST", "/api/uploads", {"filename": "a.txt", "size": 3, "content_type": "text/plain"}, {"upload"}),
    ("GET", "/api/uploads/{id}", None, {"read", "upload"}),
    ("PATCH", "/api/uploads/{id}", {"filename": "b.txt"}, {"upload"}),
    ("GET", "/api/uploads/{id}/download", None, {"read"}),
    ("POST", "/api/uploads/{id}/complete", None, {"upload"}),
    ("GET", "/api/uploads/{id}/parts", None, {"upload"}),
    ("POST", "/api/uploads/{id}/parts", {"part_numbers": [1]}, {"upload"}),
    ("DELETE", "/api/uploads/{id}", None, {"delete"}),
]


@pytest.mark.parametrize("scope", ["upload", "read", "delete"])
def test_each_scope_opens_exactly_its_calls(app, api, available, scope):
    script = Script(app, make_token(api, scopes=[scope]))
    for method, url, body, allowed in ROUTES:
        response = script.call(method, url.format(id=available), body)
        if scope in allowed:
            assert response.status_code not in (401, 403), (method, url, response.text)
        else:
            assert response.status_code == 403, (method, url, response.status_code)
            assert response.get_json()["error"]["code"] == "insufficient_scope"
    db.session.expire_all()
    upload = db.session.get(Upload, available)
    assert (upload is None) == (scope == "delete")


def test_a_token_never_opens_a_page(app, token, available):
    script = Script(app, token)
    for url in ("/files", f"/files/{available}", f"/files/{available}/download", "/settings/tokens"):
        response = script.call("GET", url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/auth/login"), url
    assert script.call("POST", f"/files/{available}/delete").status_code in (302, 400)
    db.session.expire_all()
    assert db.session.get(Upload, available).status == "available"


def test_bad_revoked_expired_and_banned_tokens_are_refused(app, api, user, make_user, available):
    tokens = {name: make_token(api, name) for name in ("revoked", "expired", "kept")}
    for header in ("Bearer nonsense", "Bearer sat_" + "A" * 43, "Bearer", "bearer  "):
        response = app.test_client().get("/api/uploads", headers={"Authorization": header})
        assert response.status_code == 401 and response.get_json()["error"]["code"] == "invalid_token", header
    # Another scheme is no token (a proxy's basic auth, say): without a session, log in first.
    other = app.test_client().get("/api/uploads", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert other.status_code == 401 and other.get_json()["error"]["code"] == "unauthorized"
    revoked_id = db.session.scalar(select(ApiToken.id).where(ApiToken.name == "revoked"))
    assert api.form_post(f"/settings/tokens/{revoked_id}/revoke").status_code == 302
    db.session.execute(
        ApiToken.__table__.update().where(ApiToken.name == "expired").values(expires_at=utcnow() - timedelta(1))
    )
    db.session.commit()
    answers = {name: Script(app, t).call("GET", "/api/uploads").status_code for name, t in tokens.items()}
    assert answers == {"revoked": 401, "expired": 401, "kept": 200}
    # A banned user's tokens stop at once; an admin can revoke anyone's.
    admin = Api(app.test_client(user=make_user("admin@example.com", admin=True)))
    assert admin.form_post(f"/admin/users/{user.id}/ban", {"reason": "abuse"}).status_code == 302
    assert Script(app, tokens["kept"]).call("GET", "/api/uploads").status_code == 401
    assert admin.form_post(f"/admin/users/{user.id}/unban", {"reason": "appeal"}).status_code == 302
    assert Script(app, tokens["kept"]).call("GET", "/api/uploads").status_code == 200
    assert "backup script" not in admin.get("/admin/tokens").text
    kept_id = db.session.scalar(select(ApiToken.id).where(ApiToken.name == "kept"))
    assert "kept" in admin.get("/admin/tokens").text
    assert admin.form_post(f"/admin/tokens/{kept_id}/revoke", {"reason": "leaked in a log"}).status_code == 302
    assert Script(app, tokens["kept"]).call("GET", "/api/uploads").status_code == 401
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "token_revoked")).all()[-1]
    assert event.reason == "leaked in a log" and event.actor_email == "admin@example.com"


def test_tokens_are_the_owners_alone(app, api, other_api, token):
    other_id = db.session.scalar(select(ApiToken.id))
    assert other_api.form_post(f"/settings/tokens/{other_id}/revoke").status_code == 404
    assert "backup script" not in other_api.get("/settings/tokens").text
    assert other_api.form_post(f"/admin/tokens/{other_id}/revoke", {"reason": "x" * 5}).status_code == 403
    assert Script(app, token).call("GET", "/api/uploads").status_code == 200
    # The token is shown once: not on the page afterwards, and only its digest is stored.
    assert token not in api.get("/settings/tokens").text
    assert db.session.scalar(select(ApiToken.token_hash)) != token


def test_another_users_token_cannot_reach_my_files(app, other_api, available):
    script = Script(app, make_token(other_api))
    for method, url, body, _ in ROUTES[2:]:
        response = script.call(method, url.format(id=available), body)
        assert response.status_code == 404, (method, url)


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"name": "n" * 101},
        {"scopes": []},
        {"scopes": ["admin"]},
        {"days": "7"},
        {"days": "forever"},
    ],
)
def test_bad_token_settings_are_refused(api, fields):
    response = api.form_post("/settings/tokens", {"name": "t", "scopes": ["read"], "days": "90", **fields})
    assert response.status_code == 422, fields
    assert db.session.scalar(select(ApiToken.id)) is None


def test_token_creation_needs_csrf(api):
    response = api.client.post("/settings/tokens", data={"name": "t", "scopes": ["read"], "days": "90"})
    assert response.status_code == 400
    assert db.session.scalar(select(ApiToken.id)) is None


def test_session_calls_still_need_their_csrf_token(api):
    refused = api.client.post("/api/uploads", json={"filename": "a.txt", "size": 3, "content_type": "text/plain"})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "csrf_failed"


def test_a_session_behind_a_proxy_with_basic_auth_still_works(api):
    """A browser session whose requests carry a proxy's Authorization: Basic header is still a session."""
    headers = {"Authorization": "Basic c3RhZ2luZzpzdGFnaW5n"}
    assert api.get("/api/uploads", headers=headers).status_code == 200
    created = api.post(
        "/api/uploads", json={"filename": "a.txt", "size": 3, "content_type": "text/plain"}, headers=headers
    )
    assert created.status_code == 201


def test_an_admins_token_reads_only_the_admins_own_files(app, make_user, available):
    admin = Api(app.test_client(user=make_user("admin@example.com", admin=True)))
    script = Script(app, make_token(admin, scopes=["read", "upload", "delete"]))
    for method, url, body, _ in ROUTES[2:]:
        assert script.call(method, url.format(id=available), body).status_code == 404, (method, url)
    assert admin.get(f"/api/uploads/{available}").status_code == 200  # the admin's session still may
    assert admin.get(f"/api/uploads/{available}/download").status_code == 200


@pytest.mark.parametrize("limit", ["1" * 5000, "0" * 4, "-1", "1e3"])
def test_absurd_page_sizes_are_refused(app, token, limit):
    response = Script(app, token).call("GET", f"/api/uploads?limit={limit}")
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "invalid_limit"
