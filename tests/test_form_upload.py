"""Uploads without JavaScript: a plain form posts the file straight to storage under a presigned
POST policy, storage redirects back, and the same scan follows.

Storage here is tests/sigv4_gateway.py in front of moto's S3 server: it checks the policy (its
signature, expiry, every condition and the length range) and fills in ${filename} as S3 does.
"""

import hashlib
import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import bucket_keys
from webapp.extensions import db
from webapp.models import Upload, User
from webapp.models.base import utcnow
from webapp.scanning.clamd import EICAR
from webapp.services.maintenance import run_task


@pytest.fixture
def app_config(gateway):
    return {"S3_ENDPOINT_URL": gateway.url, "UPLOAD_URL_TTL": 60}


def row(upload_id):
    db.session.expire_all()
    return db.session.get(Upload, upload_id)


def reserved(user):
    db.session.expire_all()
    return db.session.get(User, user.id).bytes_reserved


def pending(user):
    db.session.expire_all()
    return db.session.get(User, user.id).pending_uploads


def open_form(api):
    """Press "Upload a file" on /files; returns (upload id, the storage form's action and fields)."""
    begun = api.form_post("/upload")
    assert begun.status_code == 303, begun.status_code
    upload_id = begun.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    page = api.get(begun.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    action = unescape(re.search(r'<form method="post" action="([^"]+)" enctype="multipart/form-data"', html).group(1))
    start = html.index('id="form-upload"')
    form = html[start : html.index("</form>", start)]  # what the browser sends: this form's fields only
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)
    fields = {unescape(name): unescape(value) for name, value in hidden}
    assert (
        f"form-action 'self' {api.client.application.config['S3_ENDPOINT_URL']}"
        in page.headers["Content-Security-Policy"]
    )
    return upload_id, action, fields


def post_to_storage(action, fields, name, data, **changes):
    """What the browser does with the form: one multipart POST, redirects not followed."""
    return requests.post(
        action,
        data={**fields, **changes},
        files={"file": (name, data, "text/plain")},
        allow_redirects=False,
        timeout=30,
    )


def come_back(api, response):
    """Follow storage's redirect back into the app, as the browser would."""
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["Location"])
    return api.get(f"{location.path}?{location.query}")


def test_a_file_goes_up_by_the_form_and_is_scanned(app, api, run_worker, user):
    data = b"sent without javascript\n" * 1000
    upload_id, action, fields = open_form(api)
    assert action.startswith(app.config["S3_ENDPOINT_URL"])
    assert fields["key"] == row(upload_id).incoming_key and fields["Content-Type"] == "application/octet-stream"
    assert reserved(user) == row(upload_id).size == 0  # an open form locks up no quota
    assert pending(user) == 1

    stored = post_to_storage(action, fields, "field notes.txt", data)
    assert stored.status_code == 303, stored.text
    query = parse_qs(urlsplit(stored.headers["Location"]).query)
    assert query["key"] == [fields["key"]]
    back = come_back(api, stored)
    assert back.status_code == 303 and back.headers["Location"].endswith(f"/files/{upload_id}")
    upload = row(upload_id)
    assert (upload.status, upload.size, upload.filename, upload.declared_type) == (
        "uploaded",
        len(data),
        "field notes.txt",
        "text/plain",
    )
    assert reserved(user) == len(data)
    page = api.get(f"/files/{upload_id}").get_data(as_text=True)
    assert "Received field notes.txt. It is being checked" in page

    run_worker()
    assert row(upload_id).status == "available"
    location = api.get(f"/files/{upload_id}/download").headers["Location"]
    assert hashlib.sha256(requests.get(location, timeout=10).content).digest() == hashlib.sha256(data).digest()
    assert come_back(api, stored).status_code == 303  # a reload of the confirmation is harmless


def test_malware_by_the_form_is_quarantined(app, api, run_worker):
    upload_id, action, fields = open_form(api)
    come_back(api, post_to_storage(action, fields, "eicar.txt", EICAR))
    run_worker()
    assert row(upload_id).status == "quarantined"


def test_storage_refuses_a_file_over_the_reserved_size(app, api, user):
    user.quota_bytes = 100
    db.session.commit()
    upload_id, action, fields = open_form(api)
    assert "Up to 100 bytes" in api.get(f"/upload/{upload_id}").get_data(as_text=True)
    refused = post_to_storage(action, fields, "big.txt", b"x" * 101)
    assert refused.status_code == 400 and "<Code>EntityTooLarge</Code>" in refused.text
    assert bucket_keys(app, "incoming/") == []


@pytest.mark.parametrize(
    "change",
    [
        {"key": "incoming/1/someone-else"},
        {"Content-Type": "text/html"},
        {"success_action_redirect": "https://evil.example/"},
        {"x-amz-meta-owner": "me"},
    ],
)
def test_storage_refuses_a_form_whose_fields_were_changed(app, api, change):
    upload_id, action, fields = open_form(api)
    refused = post_to_storage(action, fields, "notes.txt", b"hello", **change)
    assert refused.status_code == 403 and "<Code>AccessDenied</Code>" in refused.text
    assert bucket_keys(app, "incoming/") == []
    assert row(upload_id).status == "pending"


def test_the_confirmation_needs_its_token_and_the_owner(app, api, other_api):
    upload_id, action, fields = open_form(api)
    stored = post_to_storage(action, fields, "notes.txt", b"hello")
    location = urlsplit(stored.headers["Location"])
    assert other_api.get(f"{location.path}?{location.query}").status_code == 400
    assert api.get(location.path).status_code == 400
    assert api.get(f"{location.path}?token=forged").status_code == 400
    assert row(upload_id).status == "pending"
    assert other_api.get(f"/upload/{upload_id}").status_code == 404
    assert come_back(api, stored).status_code == 303


def test_coming_back_before_the_bytes_arrived_says_so(app, api):
    upload_id, action, fields = open_form(api)
    token = parse_qs(urlsplit(fields["success_action_redirect"]).query)["token"][0]
    back = api.get(f"/upload/{upload_id}/done?token={token}")
    assert back.status_code == 302 and back.headers["Location"].endswith(f"/upload/{upload_id}")
    assert "Nothing has arrived" in api.get(back.headers["Location"]).get_data(as_text=True)
    assert row(upload_id).status == "pending"


def test_the_api_cannot_complete_a_form_upload(app, api):
    upload_id, _, _ = open_form(api)
    response = api.post(f"/api/uploads/{upload_id}/complete")
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "form_upload"


def test_a_name_storage_did_not_fill_in_gets_a_dated_one_and_the_type_by_content(app, api, run_worker, services):
    # A store that ignores ${filename} (moto itself) keeps the field as sent.
    upload_id, _, fields = open_form(api)
    direct = f"{services['s3']}/{app.config['S3_BUCKET']}"
    stored = requests.post(
        direct,
        data=fields,
        files={"file": ("x.txt", b"plain words\n", "text/plain")},
        allow_redirects=False,
        timeout=30,
    )
    assert stored.status_code in (200, 204, 303)
    assert run_task("promote_pending").counts == {"promoted": 0}  # the browser may still come back
    upload = row(upload_id)
    upload.created_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    assert run_task("promote_pending").counts == {"promoted": 1}  # it never did
    upload = row(upload_id)
    assert re.fullmatch(r"upload-\d{4}-\d\d-\d\d-\d{6}", upload.filename)
    assert upload.declared_type == "application/octet-stream"
    run_worker()
    upload = row(upload_id)
    assert (upload.status, upload.detected_type) == ("available", "text/plain")


def test_an_abandoned_form_expires(app, api, user):
    upload_id, _, _ = open_form(api)
    assert pending(user) == 1
    row(upload_id).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert run_task("expire_pending").counts == {"expired": 1}
    assert (pending(user), reserved(user)) == (0, 0)


def test_the_quota_is_checked_when_the_bytes_arrive(app, api, user):
    user.quota_bytes = 100
    db.session.commit()
    first, second = open_form(api), open_form(api)  # both shown with room for 100 bytes
    assert come_back(api, post_to_storage(*first[1:], "a.txt", b"a" * 80)).status_code == 303
    arrived_late = post_to_storage(*second[1:], "b.txt", b"b" * 80)
    refused = come_back(api, arrived_late)
    assert refused.status_code == 413 and "over your storage quota" in refused.get_data(as_text=True)
    assert (row(second[0]).status, row(second[0]).reason) == ("rejected", "quota_exceeded")
    assert bucket_keys(app, "incoming/") == [row(first[0]).incoming_key]
    assert reserved(user) == 80


def test_the_form_needs_room_and_csrf(app, api, user):
    assert api.client.post("/upload").status_code == 400  # no CSRF token
    user.quota_bytes = 0
    db.session.commit()
    assert api.form_post("/upload").status_code == 413
    assert db.session.query(Upload).count() == 0


def test_the_redirect_and_maintenance_adopt_it_once(app, api, run_worker, user):
    data = b"adopted once\n" * 100
    user.quota_bytes = len(data) + 10  # counted twice, it would not fit
    db.session.commit()
    upload_id, action, fields = open_form(api)
    stored = post_to_storage(action, fields, "once.txt", data)
    assert come_back(api, stored).status_code == 303
    upload = row(upload_id)
    upload.created_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    assert run_task("promote_pending").counts == {"promoted": 0}  # already on its way: left alone
    assert bucket_keys(app, "incoming/") == [row(upload_id).incoming_key]
    assert (row(upload_id).status, reserved(user)) == ("uploaded", len(data))
    run_worker()
    assert row(upload_id).status == "available"


def test_a_form_shown_again_keeps_its_upload_alive(app, api):
    upload_id, _, _ = open_form(api)
    soon = utcnow() + timedelta(seconds=5)
    row(upload_id).expires_at = soon
    db.session.commit()
    assert api.get(f"/upload/{upload_id}").status_code == 200
    assert row(upload_id).expires_at >= soon + timedelta(seconds=app.config["UPLOAD_URL_TTL"])
