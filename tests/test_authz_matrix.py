"""Authorization matrix: every route against anonymous, the owner, another user, a banned user and an admin.

One world is built for the module (an owner's available image with a preview, a quarantined file, a pending
multipart upload, a live and a revoked share link, another user's pending upload). Each case logs a fresh
client in, sends one request (forms with a valid CSRF token, the API with X-CSRFToken) and checks the exact
answer. Refusals change nothing and never carry a presigned URL or the storage endpoint. Allowed calls that
change state run against spares made for that case, so the world stays as it was for the next one.

The banned actor holds a session cookie issued before the ban with the current session version, so only the
ban itself can turn it away; `test_ban_ends_a_live_session_and_blocks_login` covers the admin's ban action.
"""

import string
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from tests.conftest import (
    PASSWORD,
    RESOURCES,
    Api,
    bucket_keys,
    build_app,
    fresh_world,
    make_config,
    page_token,
    share_token,
)
from webapp.extensions import db
from webapp.models import (
    ApiToken,
    BlockedHash,
    FileRequest,
    Report,
    RequestReport,
    Share,
    Upload,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from webapp.queue import QUEUE_NAMES, get_queue, get_redis
from webapp.scanning.clamd import EICAR
from webapp.services.accounts import create_user

ACTORS = ("anonymous", "owner", "other", "banned", "admin")
SECRET_NAMES = ("owner-secret-picture.png", "owner-secret-eicar.txt", "owner-secret-video.mp4")
REASON = {"reason": "authorization matrix"}
NEW_UPLOAD = {"filename": "new.txt", "size": 5, "content_type": "text/plain"}
TOKEN_FORM = {"name": "matrix token", "scopes": "read", "days": "90"}
REQUEST_FORM = {"title": "Matrix request", "days": "7", "max_file_mb": "5", "max_files": "10"}


@dataclass(frozen=True)
class Row:
    """One route and method; expect lists the answer per actor, in ACTORS order.

    "200", "404" ...: that status; "login": 302 to the login page with next=<this path>; "s3": 302 to a
    presigned GET of the shared/owned file; "->/path": 302 to exactly that path. changes names the actors
    whose (allowed) request changes state; for them the url's ids are spares made for the case.
    """

    method: str
    url: str
    expect: str
    body: dict | None = None
    changes: str = ""
    note: str = ""
    expected: dict = field(init=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "expected", dict(zip(ACTORS, self.expect.split(), strict=True)))


def admin_action(back):
    """Strangers log in, users are refused, the admin is sent back to the page the action came from."""
    return f"login 403 403 login ->/admin/{back}"


MATRIX = [
    # Pages. Admins may read any file (detail, download, preview; DESIGN: "Owner (or admin) only"), but the
    # user routes that change a file are the owner's alone: admins act through /admin.
    Row("GET", "/", "200 ->/files ->/files 200 ->/files"),
    Row("GET", "/files", "login 200 200 login 200"),
    Row("GET", "/files/{available}", "login 200 404 login 200"),
    Row("GET", "/files/{quarantined}", "login 200 404 login 200"),
    Row("GET", "/files/{available}/download", "login s3 404 login s3"),
    Row("GET", "/files/{quarantined}/download", "login 404 404 login 404"),
    Row("GET", "/files/{available}/preview", "login s3 404 login s3"),
    Row("GET", "/files/{available}/row", "login 200 404 login 404", note="the listing is the owner's own"),
    Row("GET", "/files/{quarantined}/preview", "login 404 404 login 404"),
    Row("GET", "/files/{available}/delete", "login 200 404 login 404"),
    Row("POST", "/files/{available}/delete", "login ->/files 404 login 404", changes="owner"),
    Row("POST", "/files/{quarantined}/delete", "login ->/files 404 login 404", changes="owner"),
    Row(
        "POST", "/files/{available}/shares", "login ->/files/{available} 404 login 404", {"days": "7"}, changes="owner"
    ),
    Row(
        "POST",
        "/files/{available}/shares",
        "login ->/files/{available} 404 login 404",
        {"days": "bogus"},
        note="invalid form",
    ),
    Row("POST", "/files/{quarantined}/shares", "login 404 404 login 404", {"days": "7"}),
    # Bulk delete asks first (no change): only the asker's own files are named; others' are left out.
    Row("POST", "/files/delete", "login 200 ->/files login ->/files", {"ids": "{available}"}),
    Row("POST", "/files/delete", "login 200 ->/files login ->/files", {"ids": "{available}", "confirm": "no"}),
    Row(
        "POST",
        "/files/delete",
        "login ->/files ->/files login ->/files",
        {"ids": "{available}", "confirm": "yes"},
        changes="owner",
    ),
    Row(
        "POST",
        "/files/{available}/rename",
        "login ->/files/{available} 404 login 404",
        {"filename": "renamed.txt"},
        changes="owner",
    ),
    Row(
        "POST", "/files/{available}/shares/{share}/revoke", "login ->/files/{available} 404 login 404", changes="owner"
    ),
    # Someone's own file id with the owner's share id: the link is still not theirs.
    Row("POST", "/files/{other_pending}/shares/{share}/revoke", "login 404 404 login 404", note="mixed ids"),
    # Accounts. A banned account cannot log in, even with the right password.
    Row("GET", "/auth/login", "200 ->/files ->/files 200 ->/files"),
    Row("POST", "/auth/login", "401 ->/files ->/files 401 ->/files", {"email": "{banned_email}", "password": PASSWORD}),
    Row("GET", "/auth/register", "200 ->/files ->/files 200 ->/files"),
    Row(
        "POST",
        "/auth/register",
        "422 ->/files ->/files 422 ->/files",
        {"email": "{owner_email}", "password": PASSWORD, "confirm": PASSWORD},
    ),
    Row("POST", "/auth/logout", "login ->/auth/login ->/auth/login login ->/auth/login", changes="owner other admin"),
    # The JSON API: 401 JSON for strangers (before any CSRF check), 404 JSON for other people's ids.
    Row("POST", "/api/uploads", "401 201 201 401 201", NEW_UPLOAD, changes="owner other admin"),
    Row("GET", "/api/uploads/{available}", "401 200 404 401 200"),
    Row("GET", "/api/uploads/{quarantined}", "401 200 404 401 200"),
    Row("GET", "/api/uploads/{pending}", "401 200 404 401 200"),
    Row("DELETE", "/api/uploads/{available}", "401 204 404 401 404", changes="owner"),
    Row("DELETE", "/api/uploads/{pending}", "401 204 404 401 404", changes="owner"),
    Row("POST", "/api/uploads/{pending}/parts", "401 200 404 401 404", {"part_numbers": [1]}),
    Row("GET", "/api/uploads/{pending}/parts", "401 200 404 401 404"),
    Row("GET", "/api/uploads/{available}/parts", "401 409 404 401 404"),
    Row("POST", "/api/uploads/{pending}/complete", "401 409 404 401 404"),  # no parts in storage yet
    Row("POST", "/api/uploads/{available}/complete", "401 202 404 401 404"),
    Row("POST", "/api/uploads/{form_pending}/complete", "401 409 404 401 404"),
    Row("GET", "/api/openapi.json", "200 200 200 200 200"),
    Row("GET", "/api/uploads", "401 200 200 401 200"),
    Row("PATCH", "/api/uploads/{available}", "401 200 404 401 404", {"filename": "renamed.txt"}, changes="owner"),
    Row("GET", "/api/uploads/{available}/download", "401 200 404 401 200"),
    Row("GET", "/api/uploads/{quarantined}/download", "401 404 404 401 404"),
    # Personal API tokens: each user's own; admins revoke anyone's from /admin/tokens.
    Row("GET", "/settings/tokens", "login 200 200 login 200"),
    Row("POST", "/settings/tokens", "login 201 201 login 201", TOKEN_FORM, changes="owner other admin"),
    Row("POST", "/settings/tokens", "login 422 422 login 422", {**TOKEN_FORM, "scopes": "root"}, note="invalid form"),
    Row("POST", "/settings/tokens/{api_token}/revoke", "login ->/settings/tokens 404 login 404", changes="owner"),
    # The upload form for browsers without JavaScript: the owner's alone, its return needs its token.
    Row("POST", "/upload", "login 303 303 login 303", changes="owner other admin"),
    Row("GET", "/upload/{form_pending}", "login 200 404 login 404"),
    Row("GET", "/upload/{form_pending}/done", "login 400 400 login 400"),
    # Public share links: the same for everyone; a revoked link is gone for everyone.
    Row("GET", "/s/{token}", "200 200 200 200 200"),
    Row("POST", "/s/{token}/unlock", "404 404 404 404 404", {"password": "a guess"}),  # it has no password
    Row("GET", "/s/{token}/download", "s3 s3 s3 s3 s3"),
    Row("GET", "/s/{token}/preview", "s3 s3 s3 s3 s3"),
    Row(
        "POST",
        "/s/{token}/report",
        "->/s/{token} ->/s/{token} ->/s/{token} ->/s/{token} ->/s/{token}",
        {"reason": "matrix report"},
        changes="anonymous owner other banned admin",
    ),
    Row("GET", "/s/{revoked_token}", "404 404 404 404 404"),
    Row("GET", "/s/{revoked_token}/download", "404 404 404 404 404"),
    Row("GET", "/s/{revoked_token}/preview", "404 404 404 404 404"),
    Row("POST", "/s/{revoked_token}/report", "404 404 404 404 404", {"reason": "matrix report"}),
    # File requests: the owner's pages are theirs alone; the public page and its calls are the same for
    # everyone (a stranger's API call carries no CSRF token here, so it is refused before anything else),
    # and what one browser sent is nobody else's.
    Row("GET", "/requests", "login 200 200 login 200"),
    Row("POST", "/requests", "login 302 302 login 302", REQUEST_FORM, changes="owner other admin"),
    Row("POST", "/requests", "login 422 422 login 422", {**REQUEST_FORM, "title": ""}, note="invalid form"),
    Row("GET", "/requests/{request}", "login 200 404 login 404"),
    Row("POST", "/requests/{request}/close", "login ->/requests/{request} 404 login 404", changes="owner"),
    Row("GET", "/r/{request_token}", "200 200 200 200 200"),
    Row("POST", "/r/{request_token}/unlock", "404 404 404 404 404", {"password": "a guess"}),  # it has none
    Row(
        "POST",
        "/r/{request_token}/report",
        "->/r/{request_token} ->/r/{request_token} ->/r/{request_token} ->/r/{request_token} ->/r/{request_token}",
        {"reason": "matrix report"},
        changes="anonymous owner other banned admin",
    ),
    Row("GET", "/r/{closed_request_token}", "404 404 404 404 404"),
    Row("POST", "/r/{closed_request_token}/report", "404 404 404 404 404", {"reason": "matrix report"}),
    Row("GET", "/r/{request_token}/sent/{sent_pending}/row", "404 404 404 404 404"),
    # A browser that never opened the request's page has no sender cookie (test_file_requests sends files).
    Row("POST", "/api/requests/{request_token}/uploads", "400 422 422 400 422", NEW_UPLOAD),
    Row("POST", "/api/requests/{closed_request_token}/uploads", "400 404 404 400 404", NEW_UPLOAD),
    Row("GET", "/api/requests/{request_token}/uploads/{sent_pending}", "404 404 404 404 404"),
    Row("GET", "/api/requests/{request_token}/uploads/{pending}", "404 404 404 404 404", note="the owner's own"),
    Row("DELETE", "/api/requests/{request_token}/uploads/{sent_pending}", "400 404 404 400 404"),
    Row(
        "POST",
        "/api/requests/{request_token}/uploads/{sent_pending}/parts",
        "400 404 404 400 404",
        {"part_numbers": [1]},
    ),
    Row("GET", "/api/requests/{request_token}/uploads/{sent_pending}/parts", "404 404 404 404 404"),
    Row("POST", "/api/requests/{request_token}/uploads/{sent_pending}/complete", "400 404 404 400 404"),
    # Webhook endpoints: each user's own (the owner's is one an admin allowed onto a private address).
    Row("GET", "/settings/webhooks", "login 200 200 login 200"),
    Row(
        "POST",
        "/settings/webhooks",
        "login 422 422 login 422",
        {"url": "https://127.0.0.1/x", "events": "upload.available"},
    ),
    Row("GET", "/settings/webhooks/{webhook}", "login 200 404 login 404"),
    Row("POST", "/settings/webhooks/{webhook}/delete", "login ->/settings/webhooks 404 login 404", changes="owner"),
    Row(
        "POST",
        "/settings/webhooks/{webhook}/rotate",
        "login ->/settings/webhooks/{webhook} 404 login 404",
        changes="owner",
    ),
    Row(
        "POST",
        "/settings/webhooks/{webhook}/deliveries/{delivery}/replay",
        "login ->/settings/webhooks/{webhook} 404 login 404",
        changes="owner",
    ),
    # Storage events carry their own secret (none here): strangers and users alike are refused.
    Row("POST", "/api/storage-events", "404 404 404 404 404", {"Records": []}),
    # Metrics: from the allowed networks (the test client is 127.0.0.1) whoever asks.
    Row("GET", "/metrics", "200 200 200 200 200"),
    # Probes for load balancers: public, and they name no dependency's address.
    Row("GET", "/healthz", "200 200 200 200 200"),
    Row("GET", "/readyz", "200 200 200 200 200"),
    # The admin area: 403 for signed-in users, the login page for strangers.
    *(
        Row("GET", url, "login 403 403 login 200")
        for url in ("/admin", "/admin/moderation", "/admin/users", "/admin/tokens", "/admin/audit", "/admin/jobs")
    ),
    Row("POST", "/admin/moderation/{quarantined}/approve", admin_action("moderation"), REASON, changes="admin"),
    Row("POST", "/admin/moderation/{available}/remove", admin_action("moderation"), REASON, changes="admin"),
    Row("POST", "/admin/moderation/{available}/block", admin_action("moderation"), REASON, changes="admin"),
    Row("POST", "/admin/moderation/requests/{request}/close", admin_action("moderation"), REASON, changes="admin"),
    # Nobody can report a closed request, so there is nothing to dismiss: even the admin changes nothing.
    Row("POST", "/admin/moderation/requests/{closed_request}/dismiss", admin_action("moderation"), REASON),
    Row("POST", "/admin/tokens/{api_token}/revoke", admin_action("tokens"), REASON, changes="admin"),
    Row("POST", "/admin/users/{owner}/ban", admin_action("users"), REASON, changes="admin"),
    Row("POST", "/admin/users/{banned}/unban", admin_action("users"), REASON, changes="admin"),
    Row("POST", "/admin/users/{owner}/quota", admin_action("users"), {**REASON, "quota_mb": "1"}, changes="admin"),
    Row("POST", "/admin/users/new", "login 403 403 login 201", {"email": "made-by-admin@example.com"}, changes="admin"),
    # A real, finished job: only failed jobs can be retried, so even the admin's request changes nothing.
    Row("POST", "/admin/jobs/scan-{quarantined}/retry", admin_action("jobs"), REASON),
]

CASES = [
    pytest.param(row, actor, id=f"{actor}-{row.method} {row.url}{f' ({row.note})' if row.note else ''}")
    for row in MATRIX
    for actor in ACTORS
]


# --- The world: one app, schema and bucket for the whole module ---------------------------------------


@pytest.fixture(scope="module")
def app(services):
    """conftest's app, once per module (it overrides that fixture here, so make_user and run_worker use it)."""
    with fresh_world(build_app(make_config(services))) as app:
        yield app


def _work(app):
    """Run the queued jobs in-process (conftest's run_worker, usable from a module fixture)."""
    with app.app_context():
        SimpleWorker([get_queue(name) for name in QUEUE_NAMES], connection=get_redis()).work(burst=True)
    db.session.expire_all()


def _share_id(token):
    return db.session.scalar(select(Share.id).where(Share.token == token))


def make_request(owner):
    """A new file request of the owner's (an Api); returns (its id, its token)."""
    response = owner.form_post("/requests", REQUEST_FORM)
    assert response.status_code == 302, response.status_code
    request_id = int(response.headers["Location"].rsplit("/", 1)[-1])
    return request_id, db.session.get(FileRequest, request_id).token


def make_token(owner):
    """A new API token of the owner's (an Api); returns its id."""
    assert owner.form_post("/settings/tokens", TOKEN_FORM).status_code == 201
    return db.session.scalar(select(ApiToken.id).order_by(ApiToken.id.desc()).limit(1))


def make_webhook(owner, upload_id):
    """An endpoint of the owner's (an admin's allowance onto a private address, written directly) with one
    delivery about upload_id, which nothing will deliver (no worker runs for it): (endpoint id, delivery id)."""
    endpoint = WebhookEndpoint(
        user_id=owner.id, url="https://127.0.0.1:9/hook", events="upload.deleted", allow_private=True
    )
    db.session.add(endpoint)
    db.session.flush()
    delivery = WebhookDelivery(
        uid=uuid.uuid4().hex, endpoint_id=endpoint.id, event="upload.deleted", payload="{}", status="failed"
    )
    db.session.add(delivery)
    db.session.commit()
    return endpoint.id, delivery.id


def send_through(app, token):
    """A pending upload sent through a request by a browser of its own; returns its id."""
    sender = app.test_client()
    csrf = page_token(sender.get(f"/r/{token}").text)
    response = sender.post(f"/api/requests/{token}/uploads", json=NEW_UPLOAD, headers={"X-CSRFToken": csrf})
    assert response.status_code == 201, response.status_code
    return response.get_json()["upload"]["id"]


@pytest.fixture(scope="module")
def world(app):
    """Users and the owner's resources in every state the routes care about; returns placeholder values."""
    users = {actor: create_user(f"{actor}@example.com", PASSWORD, is_admin=actor == "admin") for actor in ACTORS[1:]}
    owner = Api(app.test_client(user=users["owner"]))
    available = owner.upload((RESOURCES / "tiny.png").read_bytes(), SECRET_NAMES[0], "image/png")
    quarantined = owner.upload(EICAR, SECRET_NAMES[1])
    _work(app)
    assert owner.status(available)["status"] == "available"
    assert owner.status(quarantined)["status"] == "quarantined"
    assert db.session.get(Upload, available).thumbnail_key  # so the owner's preview is a real grant
    grant = owner.begin(SECRET_NAMES[2], 70 * 1024 * 1024, "video/mp4")
    assert "multipart" in grant
    other_pending = Api(app.test_client(user=users["other"])).begin("other-notes.txt", 5)["upload"]["id"]
    form_pending = owner.form_post("/upload").headers["Location"].rsplit("/", 1)[-1]
    token, revoked_token = share_token(owner, available), share_token(owner, available)
    revoked = owner.form_post(f"/files/{available}/shares/{_share_id(revoked_token)}/revoke")
    assert revoked.status_code == 302
    request_id, request_token = make_request(owner)
    sent_pending = send_through(app, request_token)
    closed_id, closed_request_token = make_request(owner)
    assert owner.form_post(f"/requests/{closed_id}/close").status_code == 302
    api_token = make_token(owner)
    webhook, delivery = make_webhook(users["owner"], available)
    users["banned"].is_banned = True  # the flag alone: the session version still matches
    db.session.commit()
    ids = {actor: user.id for actor, user in users.items()}
    values = {
        "available": available,
        "quarantined": quarantined,
        "pending": grant["upload"]["id"],
        "other_pending": other_pending,
        "form_pending": form_pending,
        "token": token,
        "revoked_token": revoked_token,
        "share": _share_id(token),
        "request": request_id,
        "api_token": api_token,
        "webhook": webhook,
        "delivery": delivery,
        "request_token": request_token,
        "closed_request_token": closed_request_token,
        "closed_request": closed_id,
        "sent_pending": sent_pending,
        "owner_email": "owner@example.com",
        "banned_email": "banned@example.com",
        **ids,
    }
    upload = db.session.get(Upload, available)
    world = {"values": values, "users": ids, "grant_keys": (upload.file_key, upload.thumbnail_key, upload.shared_key)}
    db.session.rollback()
    return world


# --- Spares for the requests that are allowed to change something -------------------------------------


class Spares:
    """Fresh resources of the owner (or fresh accounts), made on first use for one case."""

    def __init__(self, app, world, make_user, run_worker):
        self.app, self.world, self.make_user, self.run_worker = app, world, make_user, run_worker
        self.made = {}

    def owner_api(self):
        return Api(self.app.test_client(user=db.session.get(User, self.world["users"]["owner"])))

    def _scanned(self, data, filename, status):
        api = self.owner_api()
        upload_id = api.upload(data, filename)
        self.run_worker()
        assert api.status(upload_id)["status"] == status
        return upload_id

    def _make(self, name):
        if name == "available":  # unique bytes, so blocking them takes down nothing else
            return self._scanned(f"spare {uuid.uuid4()}".encode(), "spare.txt", "available")
        if name == "quarantined":
            return self._scanned(EICAR, "spare-eicar.txt", "quarantined")
        if name == "pending":
            return self.owner_api().begin("spare-pending.txt", 5)["upload"]["id"]
        if name == "request":  # reported, so that a moderator has something to act on
            request_id, token = make_request(self.owner_api())
            visitor = self.app.test_client()
            csrf = page_token(visitor.get(f"/r/{token}").text)
            assert visitor.post(f"/r/{token}/report", data={"reason": "spare", "csrf_token": csrf}).status_code == 302
            return request_id
        if name in ("webhook", "delivery"):
            if "webhook" not in self.made:
                owner = db.session.get(User, self.world["users"]["owner"])
                self.made["webhook"], self.made["delivery"] = make_webhook(owner, self["available"])
            return self.made[name]
        if name == "api_token":
            return make_token(self.owner_api())
        if name == "share":
            return _share_id(share_token(self.owner_api(), self["available"]))
        if name in ("owner", "banned"):
            user = self.make_user()
            user.is_banned = name == "banned"
            db.session.commit()
            return user.id
        return None

    def __getitem__(self, name):
        if name not in self.made:
            self.made[name] = self._make(name)
        return self.made[name]


def placeholders(*templates):
    return {name for text in templates for _, name, _, _ in string.Formatter().parse(text) if name}


def fill(row, actor, world, spares):
    """The case's url, body and expectation with ids filled in (spares where the actor changes state)."""
    expected = row.expected[actor]
    body = row.body or {}
    texts = [row.url, expected, *(v for v in body.values() if isinstance(v, str))]
    values = {}
    for name in placeholders(*texts):
        spare = spares[name] if actor in row.changes.split() else None
        values[name] = world["values"][name] if spare is None else spare
    filled = {k: v.format(**values) if isinstance(v, str) else v for k, v in body.items()}
    return row.url.format(**values), expected.format(**values), filled or None


# --- Checks ------------------------------------------------------------------------------------------


def state(app):
    """Everything a request could change: files and their objects, links, reports, accounts, the block list."""
    db.session.expire_all()

    def rows(*columns):
        return sorted(tuple(row) for row in db.session.execute(select(*columns)))

    snapshot = {
        "uploads": rows(
            Upload.id, Upload.user_id, Upload.status, Upload.filename, Upload.file_key, Upload.thumbnail_key
        ),
        "shares": rows(Share.id, Share.upload_id, Share.revoked_at),
        "reports": rows(Report.id, Report.upload_id, Report.resolved_at),
        "users": rows(User.id, User.is_banned, User.is_admin, User.quota_bytes, User.session_version),
        "blocked": rows(BlockedHash.sha256),
        "requests": rows(FileRequest.id, FileRequest.user_id, FileRequest.closed_at),
        "api_tokens": rows(ApiToken.id, ApiToken.user_id, ApiToken.revoked_at),
        "webhooks": rows(WebhookEndpoint.id, WebhookEndpoint.user_id, WebhookEndpoint.secret),
        "deliveries": rows(WebhookDelivery.id, WebhookDelivery.status),
        "request_reports": rows(RequestReport.id, RequestReport.resolved_at),
        "objects": bucket_keys(app),
    }
    db.session.rollback()
    return snapshot


def of_world(snapshot, world):
    """The world's own rows in a snapshot: no spare's change may touch them."""
    values = world["values"]
    uploads = {
        values[name]
        for name in ("available", "quarantined", "pending", "other_pending", "form_pending", "sent_pending")
    }
    shares = {values["share"]} | {_share_id(values["revoked_token"])}
    return (
        [row for row in snapshot["uploads"] if row[0] in uploads],
        [row for row in snapshot["shares"] if row[0] in shares],
        [row[:4] for row in snapshot["users"] if row[0] in world["users"].values()],
        [row for row in snapshot["requests"] if row[0] == values["request"]],
    )  # logout bumps row[4]


class Stranger(Api):
    """Api for a client without a working session: its forms carry the login page's CSRF token, its API
    calls none (a stranger has no page to read one from), and the API still answers 401, not csrf_failed."""

    def __init__(self, client):
        self.client = client
        page = client.get("/auth/login")
        assert page.status_code == 200, page.status_code  # signed-in users are sent on to /files
        self.csrf = page_token(page.text)

    def _headers(self, headers):
        return headers or {}


def visitor(app, world, actor):
    """A client for actor, signed in through flask-login's test client (the banned one's cookie predates the ban)."""
    if actor == "anonymous":
        return Stranger(app.test_client())
    client = app.test_client(user=db.session.get(User, world["users"][actor]))
    return Stranger(client) if actor == "banned" else Api(client)  # Api asserts /files answers 200


def send(visitor, method, url, body):
    if method == "GET":
        return visitor.get(url)
    if method == "DELETE":
        return visitor.delete(url)
    if method == "PATCH":
        return visitor.client.patch(url, json=body, headers=visitor._headers(None))
    if url.startswith("/api/"):
        return visitor.post(url, json=body)
    return visitor.form_post(url, body)


def assert_answer(app, world, response, expected, url):
    """The exact status, and where a redirect goes."""
    location = response.headers.get("Location", "")
    if expected == "login":
        target = urlsplit(location)
        assert (response.status_code, target.path) == (302, "/auth/login"), (response.status_code, location)
        assert parse_qs(target.query)["next"] == [url]
    elif expected == "s3":
        target = urlsplit(location)
        assert response.status_code == 302, response.status_code
        assert target.netloc == urlsplit(app.config["S3_ENDPOINT_URL"]).netloc
        assert "X-Amz-Signature=" in target.query
        assert unquote(target.path).endswith(world["grant_keys"]), target.path
    elif expected.startswith("->"):
        assert (response.status_code, location) == (302, expected[2:]), (response.status_code, location)
    else:
        assert response.status_code == int(expected), (response.status_code, response.get_data(as_text=True)[:300])
    if url.startswith("/api/") and response.status_code in (401, 404):  # JSON, never a page
        assert response.get_json()["error"]["code"] == {401: "unauthorized", 404: "not_found"}[response.status_code]


def assert_no_presigned_url(app, response):
    """A refusal carries no signed URL and does not even name the storage endpoint."""
    text = response.get_data(as_text=True) + " " + response.headers.get("Location", "")
    endpoint = urlsplit(app.config["S3_ENDPOINT_URL"]).netloc
    for marker in ("X-Amz-Signature", "X-Amz-Credential", endpoint):
        assert marker not in text, marker


# --- The matrix --------------------------------------------------------------------------------------


@pytest.mark.parametrize("row, actor", CASES)
def test_matrix(app, world, make_user, run_worker, row, actor):
    spares = Spares(app, world, make_user, run_worker)
    url, expected, body = fill(row, actor, world, spares)
    client = visitor(app, world, actor)
    before = state(app)
    response = send(client, row.method, url, body)
    assert_answer(app, world, response, expected, url)
    if expected != "s3" and (response.status_code >= 300 or actor in ("anonymous", "banned")):
        assert_no_presigned_url(app, response)  # in refusals, and anywhere on the public surface
    if actor in ("anonymous", "other", "banned") and not url.startswith("/s/"):
        text = response.get_data(as_text=True)
        assert not [name for name in SECRET_NAMES if name in text]  # no peeking at the owner's names
    after = state(app)
    if actor in row.changes.split():
        assert after != before  # the allowed request did its job ...
        assert of_world(after, world) == of_world(before, world)  # ... on the spares only
    else:
        assert after == before
        if row.method != "GET":  # the public link still works after a refused change
            assert app.test_client().get(f"/s/{world['values']['token']}").status_code == 200


def test_every_route_is_in_the_matrix(app, world):
    """A new route without a row breaks the suite; banned is a stranger; 403 only inside /admin."""
    adapter = app.url_map.bind("localhost")
    covered = {(adapter.match(row.url.format(**world["values"]), method=row.method)[0], row.method) for row in MATRIX}
    routes = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes - covered == set()
    for row in MATRIX:
        assert row.expected["banned"] == row.expected["anonymous"], row
        assert row.url.startswith("/admin") or "403" not in row.expected.values(), row
        assert set(row.changes.split()) <= set(ACTORS), row


def test_ban_ends_a_live_session_and_blocks_login(app, world, make_user):
    """Banned through the admin page while signed in (via the real form): logged out, and cannot log back in."""
    from tests.test_auth import login

    user = make_user()
    client = app.test_client()
    assert login(client, user.email).status_code == 302
    assert client.get("/files").status_code == 200
    admin = Api(app.test_client(user=db.session.get(User, world["users"]["admin"])))
    assert admin.form_post(f"/admin/users/{user.id}/ban", REASON).status_code == 302
    response = client.get("/files")
    assert response.status_code == 302 and response.headers["Location"].startswith("/auth/login?next=")
    assert client.get(f"/api/uploads/{world['values']['available']}").status_code == 401
    refused = login(client, user.email)
    assert refused.status_code == 401 and "Wrong email or password" in refused.get_data(as_text=True)
    assert client.get("/files").status_code == 302  # the refused login started no session
    assert admin.form_post(f"/admin/users/{user.id}/unban", REASON).status_code == 302
    assert login(client, user.email).status_code == 302  # the same password works once unbanned
    assert client.get("/files").status_code == 200
