"""Every case of the hostile-input corpus, end to end against the real parts, with its exact outcome.

Uploads go presign -> PUT to S3 (moto) -> complete -> the real RQ job (libmagic, clamd, Pillow, pypdf);
requests go to the app through the test client. Nothing refused is ever served, left behind or written.

Each case is its own test, but the cases run in batches: the first test of a kind uploads every selected
case of that kind into one app and runs the worker once (or sends every request), keeps what it observed,
and each test then checks its own case. A case that needs settings of its own gets an app of its own.
"""

import io
from dataclasses import dataclass

import pytest
import requests
from PIL import Image
from sqlalchemy import func, select

from tests.conftest import bucket_keys, form_token
from tests.hostile_corpus import (
    CASES,
    REQUIRED_CATEGORIES,
    SLOW,
    Answer,
    Case,
    Request,
    Scanned,
    Upload,
    markdown_table,
)
from webapp.extensions import db
from webapp.models import AuditEvent, User
from webapp.models import Upload as UploadRow
from webapp.reasons import REASONS
from webapp.scanning.images import STRIPPABLE

UPLOADS = [case for case in CASES if isinstance(case.input, Upload)]
REQUESTS = [case for case in CASES if isinstance(case.input, Request)]


def params(cases):
    return [pytest.param(case, id=case.id, marks=[pytest.mark.slow] if case.id in SLOW else []) for case in cases]


def test_corpus_covers_every_attack_once():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 120
    assert SLOW <= set(ids)
    assert {case.category for case in CASES} == REQUIRED_CATEGORIES
    assert all(isinstance(case.expect, Scanned) for case in UPLOADS)
    assert all(case.expect.reason is None or case.expect.reason in REASONS for case in UPLOADS)
    assert all(isinstance(case.expect, Answer) for case in REQUESTS)


def test_the_table_lists_every_case():
    table = markdown_table()
    assert len(table.splitlines()) == len(CASES) + 2
    assert all(f"| `{case.id}` |" in table for case in CASES)


# --- Batches ---


@pytest.fixture(scope="session")
def observed():
    """What each case came to, by id (kept for the session: xdist may leave this module and come back
    to it, which would end a module-scoped fixture and run the cases again)."""
    return {}


def _selected(request, kind):
    """This module's cases of one kind that this session runs (so `-k` runs only what it names)."""
    cases = []
    for item in request.session.items:
        case = getattr(item, "callspec", None) and item.callspec.params.get("case")
        if getattr(item, "module", None) is request.module and isinstance(case, Case) and isinstance(case.input, kind):
            cases.append(case)
    return cases


def _settings(case):
    return sorted(getattr(case.input, "config", {}).items())


def observation(request, observed, case, run):
    """The case's observation, running its batch first if no earlier test did."""
    if case.id not in observed:
        batch = [
            other
            for other in _selected(request, type(case.input))
            if other.id not in observed and _settings(other) == _settings(case)
        ]
        observed.update(run(request, batch if case in batch else [case]))
    result = observed[case.id]
    if isinstance(result, Exception):
        raise result
    return result


def _each(cases, step, results):
    """Run step(case) for every case not failed yet; a failure is kept for that case's own test."""
    for case in cases:
        if not isinstance(results.get(case.id), Exception):
            try:
                results[case.id] = step(case)
            except Exception as exc:  # re-raised by the case's own test
                results[case.id] = exc


# --- Uploads ---


@dataclass
class Scan:
    """What came of one upload: its status, its objects, and what the app serves for it."""

    data: bytes
    info: dict
    keys: list
    download: object  # the app's answers (test-client responses)
    preview: object
    original: requests.Response | None  # what storage serves behind the redirects
    thumbnail: requests.Response | None


def _follow(response):
    return requests.get(response.headers["Location"], timeout=30) if response.status_code == 302 else None


def run_uploads(request, cases):
    """Upload every case, run the worker once, then look at what each became."""
    app, api, run_worker = (request.getfixturevalue(name) for name in ("app", "api", "run_worker"))
    app.config.update(cases[0].input.config)
    sent = {}

    def upload(case):
        data = case.input.make()
        return data, api.upload(
            data, filename=case.input.filename, content_type=case.input.content_type, size=case.input.size
        )

    _each(cases, upload, sent)
    run_worker()
    keys = bucket_keys(app)

    def look(case):
        data, upload_id = sent[case.id]
        download = api.get(f"/files/{upload_id}/download")
        preview = api.get(f"/files/{upload_id}/preview")
        return Scan(
            data,
            api.status(upload_id),
            [key for key in keys if f"/{upload_id}" in key],
            download,
            preview,
            _follow(download),
            _follow(preview),
        )

    _each(cases, look, sent)
    return sent


def assert_nothing_served(scan, expected):
    for response in (scan.download, scan.preview):
        assert response.status_code == 404 and "Location" not in response.headers
    if expected.status == "quarantined":
        assert scan.info["signature"].startswith(expected.signature)
        assert [key.split("/")[0] for key in scan.keys] == ["files"]  # the scanned copy, kept unserved for a moderator
    else:
        assert scan.keys == []  # no object left anywhere


def assert_served_safely(scan, expected):
    assert scan.info["detected_type"] == expected.detected_type
    assert scan.download.headers["Cache-Control"] == "no-store"
    prefixes = ["derivatives", "files"] if expected.preview else ["files"]
    if expected.preview and expected.detected_type in STRIPPABLE:
        prefixes.insert(0, "derivatives")  # and the copy share links serve, without its metadata
    assert sorted(key.split("/")[0] for key in scan.keys) == prefixes  # the incoming object is gone
    original = scan.original
    assert original.content == scan.data  # the bytes are the user's, but only ever as a download
    assert original.headers["Content-Type"] == expected.detected_type
    assert original.headers["Content-Disposition"].startswith("attachment; ")
    if expected.attachment:
        assert original.headers["Content-Disposition"] == expected.attachment
    if not expected.preview:
        assert scan.preview.status_code == 404
        return
    assert scan.thumbnail.headers["Content-Type"] == "image/png"
    assert expected.payload in scan.data and expected.payload not in scan.thumbnail.content
    with Image.open(io.BytesIO(scan.data)) as source, Image.open(io.BytesIO(scan.thumbnail.content)) as thumb:
        assert thumb.format == "PNG" and max(thumb.size) == min(320, max(source.size))
        assert not thumb.info.get("comment") and not thumb.text  # pixels only: no comment, EXIF or text chunk


@pytest.mark.parametrize("case", params(UPLOADS))
def test_upload(request, observed, case):
    scan = observation(request, observed, case, run_uploads)
    expected = case.expect
    assert (scan.info["status"], scan.info["reason"]) == (expected.status, expected.reason), scan.info
    if expected.status == "available":
        assert_served_safely(scan, expected)
    else:
        assert_nothing_served(scan, expected)


# --- Requests ---


@dataclass
class Reply:
    """The app's answer to one request, and the state around it."""

    response: object
    before: tuple
    after: tuple
    recorded: list  # the filenames of uploads the request created


def snapshot(app):
    """Everything a refused request must leave as it was."""
    db.session.expire_all()
    uploads = sorted(db.session.execute(select(UploadRow.id, UploadRow.status, UploadRow.filename)).all())
    users = sorted(db.session.execute(select(User.id, User.session_version)).all())
    events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    return uploads, users, events, bucket_keys(app)


def _client_and_token(app, api, other_api, case_input):
    """The client the request comes from, and the CSRF token it sends."""
    if case_input.signed_in:
        client, own = api.client, api.csrf
    else:
        client = app.test_client()
        page = client.get("/auth/login").get_data(as_text=True)
        own = form_token(page)
    return client, {"own": own, "none": None, "wrong": "wrong-token", "foreign": other_api.csrf}[case_input.csrf]


def _arguments(case_input, token):
    kwargs = {"method": case_input.method, "headers": dict(case_input.headers)}
    if case_input.form is not None:
        kwargs["data"] = {**case_input.form, **({"csrf_token": token} if token else {})}
    else:
        if token:
            kwargs["headers"]["X-CSRFToken"] = token
        if case_input.body is not None:
            kwargs.update(data=case_input.body, content_type=case_input.content_type)
        elif isinstance(case_input.json, dict):
            kwargs["json"] = case_input.json
    if case_input.https:
        kwargs["base_url"] = "https://localhost"
    return kwargs


def run_requests(request, cases):
    """Send every request, one after the other, to one app; note the state around each."""
    app, api, other_api = (request.getfixturevalue(name) for name in ("app", "api", "other_api"))

    def send(case):
        client, token = _client_and_token(app, api, other_api, case.input)
        path = case.input.path
        if case.input.with_upload:
            path = path.replace("<id>", api.begin()["upload"]["id"])
        before = snapshot(app)
        response = client.open(path, **_arguments(case.input, token))
        after = snapshot(app)
        known = {row[0] for row in before[0]}
        recorded = [row[2] for row in after[0] if row[0] not in known]
        return Reply(response, before, after, recorded)

    replies = {}
    _each(cases, send, replies)
    return replies


@pytest.mark.parametrize("case", params(REQUESTS))
def test_request(request, observed, case):
    reply = observation(request, observed, case, run_requests)
    response, expected = reply.response, case.expect
    body = response.get_data(as_text=True)
    assert response.status_code == expected.status, body[:500]
    assert not [name for name in response.headers.keys() if name.lower().startswith("access-control-allow")]
    if expected.code:
        assert response.mimetype == "application/json"
        assert response.get_json()["error"]["code"] == expected.code
    elif expected.status >= 400:
        assert response.mimetype == "text/html" and f"<h1>{expected.status}</h1>" in body
    assert response.headers.get("Location") == expected.location
    if expected.filename:
        assert response.get_json()["upload"]["filename"] == expected.filename
        assert reply.recorded == [expected.filename]
    elif expected.status >= 400 or expected.cors_denied:
        assert reply.after == reply.before  # no row, object, audit event or logout


def test_the_refusals_are_not_accidents_of_the_setup(app, api, other_api):
    """Done right, the requests the corpus refuses succeed: it is the attack that is refused."""
    body = {"filename": "a.txt", "size": 5, "content_type": "text/plain"}
    assert other_api.post("/api/uploads", json=body).status_code == 201  # the "foreign" token is valid
    same_site = api.post(
        "/api/uploads", json=body, base_url="https://localhost", headers={"Referer": "https://localhost/files"}
    )
    assert same_site.status_code == 201  # over HTTPS, this site's Referer passes
    grant = api.begin()
    assert api.delete(f"/api/uploads/{grant['upload']['id']}").status_code == 204
