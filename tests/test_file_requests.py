"""File requests: an upload-only link through which people without an account send a user files.

Against the real stack: PostgreSQL (or SQLite), Redis, the S3 endpoint and clamd. A sender is a test
client with no account; what it sends goes through the same presign, scan and promotion as an owner's
upload, counts against the owner's quota, shows in the owner's listing, and is visible to that sender
(that browser) alone.
"""

import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import page_token
from webapp.extensions import db
from webapp.models import AuditEvent, FileRequest, RequestReport, Upload, User
from webapp.models.base import utcnow
from webapp.scanning.clamd import EICAR
from webapp.services.file_requests import SENDER_COOKIE

MiB = 1024 * 1024
FIELDS = {"title": "Tax papers", "message": "Send me the 2026 receipts, please.", "days": "7", "max_file_mb": "5"}


def make_request(api, **fields):
    """Create a request through the owner's form; returns (its id, its token)."""
    response = api.form_post("/requests", {**FIELDS, "max_files": "10", **fields})
    assert response.status_code == 302, response.text
    request_id = int(response.headers["Location"].rsplit("/", 1)[-1])
    page = api.get(f"/requests/{request_id}").text
    [token] = set(re.findall(r"/r/([A-Za-z0-9_-]{40,})", page))
    return request_id, token


class Sender:
    """A browser without an account, on a request's page."""

    def __init__(self, app, token):
        self.client = app.test_client()
        self.token = token
        self.page = self.client.get(f"/r/{token}")
        self.csrf = page_token(self.page.text)

    @property
    def base(self):
        return f"/api/requests/{self.token}/uploads"

    def call(self, method, path="", json=None):
        return self.client.open(f"{self.base}{path}", method=method, json=json, headers={"X-CSRFToken": self.csrf})

    def begin(self, filename="receipt.txt", size=11, content_type="text/plain"):
        return self.call("POST", json={"filename": filename, "size": size, "content_type": content_type})

    def send(self, data, filename="receipt.txt", content_type="text/plain"):
        """Presign, PUT to storage, complete; returns the upload id."""
        grant = self.begin(filename, len(data), content_type)
        assert grant.status_code == 201, grant.text
        grant = grant.get_json()
        assert requests.put(grant["url"], data=data, headers=grant["headers"], timeout=30).status_code == 200
        upload_id = grant["upload"]["id"]
        done = self.call("POST", f"/{upload_id}/complete")
        assert done.status_code == 202, done.text
        return upload_id

    def status(self, upload_id):
        return self.call("GET", f"/{upload_id}")


def fetch(upload_id):
    db.session.expire_all()
    return db.session.get(Upload, upload_id)


def test_a_visitor_without_an_account_sends_a_file_that_is_scanned_and_lands_with_the_owner(app, api, user, run_worker):
    request_id, token = make_request(api)
    sender = Sender(app, token)
    assert sender.page.status_code == 200
    assert "Send me the 2026 receipts, please." in sender.page.text
    assert sender.page.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in sender.page.headers["X-Robots-Tag"]
    assert SENDER_COOKIE in sender.client.get_cookie(SENDER_COOKIE).key

    clean = sender.send(b"receipt: 12.50 EUR", "receipt.txt")
    virus = sender.send(EICAR, "invoice.txt")
    assert sender.status(clean).get_json()["upload"]["status"] == "uploaded"
    run_worker()
    assert sender.status(clean).get_json()["upload"]["status"] == "available"
    assert sender.status(virus).get_json()["upload"]["status"] == "quarantined"

    upload = fetch(clean)
    assert upload.user_id == user.id and upload.file_request_id == request_id
    assert upload.file_key and upload.file_key.startswith("files/")
    # The owner holds it: in their listing, marked with the request, and filtered by it; downloadable.
    listing = api.get("/files").text
    assert "receipt.txt" in listing and "via Tax papers" in listing
    filtered = api.get(f"/files?request={request_id}").text
    assert "receipt.txt" in filtered and "Files received through" in filtered
    location = api.get(f"/files/{clean}/download").headers["Location"]
    assert requests.get(location, timeout=10).content == b"receipt: 12.50 EUR"
    assert "2 of 10" in api.get(f"/requests/{request_id}").text
    # It counts against the owner's quota.
    db.session.expire_all()
    assert db.session.get(User, user.id).bytes_used >= len(b"receipt: 12.50 EUR")

    # The sender sees what they sent, with its status, and no way to download it.
    page = sender.client.get(f"/r/{token}").text
    assert "receipt.txt" in page and "invoice.txt" in page and "quarantined" in page
    assert "/download" not in page


def test_the_sender_sees_only_what_this_browser_sent(app, api, run_worker):
    _, token = make_request(api)
    first, second = Sender(app, token), Sender(app, token)
    mine = first.send(b"first sender's file", "first.txt")
    theirs = second.send(b"second sender's file", "second.txt")
    run_worker()
    assert "first.txt" in first.client.get(f"/r/{token}").text
    assert "second.txt" not in first.client.get(f"/r/{token}").text
    assert first.status(theirs).status_code == 404
    assert first.client.get(f"/r/{token}/sent/{theirs}/row").status_code == 404
    assert first.client.get(f"/r/{token}/sent/{mine}/row").status_code == 200
    # Nor can a sender reach the owner's own files through the request.
    owned = api.upload(b"the owner's own notes", "own.txt")
    assert first.status(owned).status_code == 404
    assert first.call("DELETE", f"/{owned}").status_code == 404
    assert fetch(owned) is not None


def test_a_sender_may_cancel_a_pending_upload_but_not_delete_a_sent_file(app, api, run_worker):
    _, token = make_request(api)
    sender = Sender(app, token)
    pending = sender.begin("later.txt", 20).get_json()["upload"]["id"]
    assert sender.call("DELETE", f"/{pending}").status_code == 204
    assert fetch(pending) is None
    sent = sender.send(b"a sent file", "sent.txt")
    run_worker()
    refused = sender.call("DELETE", f"/{sent}")
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "already_sent"
    assert fetch(sent).status == "available"


def test_the_request_limits_its_file_size_and_count(app, api, run_worker):
    request_id, token = make_request(api, max_file_mb="1", max_files="2")
    sender = Sender(app, token)
    too_big = sender.begin("big.txt", MiB + 1)
    assert too_big.status_code == 413 and too_big.get_json()["error"]["code"] == "file_too_large"
    sender.send(b"one", "1.txt")
    sender.send(b"two", "2.txt")
    full = sender.begin("3.txt", 5)
    assert full.status_code == 409 and full.get_json()["error"]["code"] == "request_full"
    assert Sender(app, token).begin("4.txt", 5).status_code == 409  # another browser too
    run_worker()
    assert "has all the files it asked for" in sender.client.get(f"/r/{token}").text
    assert db.session.scalar(select(Upload.id).where(Upload.filename == "3.txt")) is None  # nothing half-written
    # Deleting one makes room again.
    one = db.session.scalar(select(Upload.id).where(Upload.file_request_id == request_id, Upload.filename == "1.txt"))
    api.form_post(f"/files/{one}/delete")
    assert sender.begin("3.txt", 5).status_code == 201


def test_what_arrives_counts_against_the_owners_quota(app, api, user):
    _, token = make_request(api, max_file_mb="5")
    user.quota_bytes = 1000
    db.session.commit()
    refused = Sender(app, token).begin("big.txt", 2000)
    assert refused.status_code == 413 and refused.get_json()["error"]["code"] == "no_room"
    assert "quota" not in refused.text  # a stranger learns nothing of the owner's account


def test_sent_files_go_through_the_same_type_checks(app, api):
    _, token = make_request(api)
    refused = Sender(app, token).begin("tool.exe", 100, "application/x-msdownload")
    assert refused.status_code == 415 and refused.get_json()["error"]["code"] == "type_not_allowed"


def test_a_closed_expired_or_unknown_request_answers_like_nothing(app, api, user, make_user):
    comparable = []
    _, closed = make_request(api)
    closed_id = db.session.scalar(select(FileRequest.id).where(FileRequest.token == closed))
    sender = Sender(app, closed)  # opened while it was open
    assert api.form_post(f"/requests/{closed_id}/close").status_code == 302
    _, expired = make_request(api)
    db.session.execute(
        FileRequest.__table__.update().where(FileRequest.token == expired).values(expires_at=utcnow() - timedelta(1))
    )
    db.session.commit()
    banned = make_user("banned@example.com")
    from tests.conftest import Api

    _, of_banned = make_request(Api(app.test_client(user=banned)))
    banned.is_banned = True
    db.session.commit()
    for token in (closed, expired, of_banned, "x" * 43):
        response = app.test_client().get(f"/r/{token}")
        comparable.append((response.status_code, re.sub(r'content="[^"]*"', "", response.text)))
    assert {status for status, _ in comparable} == {404}
    assert len({body for _, body in comparable}) == 1
    refused = sender.begin()
    assert refused.status_code == 404 and refused.get_json()["error"]["code"] == "not_found"
    assert "closed" in api.get(f"/requests/{closed_id}").text


def test_a_password_protects_the_page_and_its_calls(app, api):
    _, token = make_request(api, password="open sesame")
    sender = Sender(app, token)
    assert "This request needs a password" in sender.page.text
    assert "Tax papers" not in sender.page.text and "receipts" not in sender.page.text
    assert sender.begin().status_code == 404
    wrong = sender.client.post(f"/r/{token}/unlock", data={"password": "guess", "csrf_token": sender.csrf})
    assert wrong.status_code == 404
    right = sender.client.post(f"/r/{token}/unlock", data={"password": "open sesame", "csrf_token": sender.csrf})
    assert right.status_code == 302
    assert "receipts" in sender.client.get(f"/r/{token}").text
    assert sender.begin().status_code == 201
    assert Sender(app, token).begin().status_code == 404  # another browser is still locked


def test_other_users_cannot_see_or_close_a_request(app, api, other_api):
    request_id, token = make_request(api)
    assert other_api.get(f"/requests/{request_id}").status_code == 404
    assert other_api.form_post(f"/requests/{request_id}/close").status_code == 404
    assert "Tax papers" not in other_api.get("/requests").text
    assert other_api.get(f"/files?request={request_id}").status_code == 404
    assert app.test_client().get(f"/requests/{request_id}").status_code == 302  # to the login page
    assert Sender(app, token).page.status_code == 200  # still open


def test_a_request_can_be_reported_and_closed_by_a_moderator(app, api, make_user):
    _, token = make_request(api)
    sender = Sender(app, token)
    reported = sender.client.post(
        f"/r/{token}/report", data={"reason": "It asks for my bank password", "csrf_token": sender.csrf}
    )
    assert reported.status_code == 302
    [report] = db.session.scalars(select(RequestReport)).all()
    assert report.reason == "It asks for my bank password" and report.reporter_id is None

    from tests.conftest import Api

    admin = Api(app.test_client(user=make_user("admin@example.com", admin=True)))
    queue = admin.get("/admin/moderation").text
    assert "Reported file requests" in queue and "It asks for my bank password" in queue
    request_id = report.file_request_id
    closed = admin.form_post(f"/admin/moderation/requests/{request_id}/close", {"reason": "phishing"})
    assert closed.status_code == 302
    assert app.test_client().get(f"/r/{token}").status_code == 404
    db.session.expire_all()
    assert db.session.get(RequestReport, report.id).resolution == "closed"
    assert "Reported file requests" not in admin.get("/admin/moderation").text
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"request_created", "request_reported", "request_closed"} <= actions


def test_a_request_page_report_needs_a_reason(app, api):
    _, token = make_request(api)
    sender = Sender(app, token)
    refused = sender.client.post(f"/r/{token}/report", data={"reason": "", "csrf_token": sender.csrf})
    assert refused.status_code == 422 and "Tax papers" in refused.text
    assert db.session.scalar(select(RequestReport.id)) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"title": ""},
        {"title": "x" * 201},
        {"days": "0"},
        {"days": "91"},
        {"days": "soon"},
        {"max_file_mb": "0"},
        {"max_file_mb": "999999999"},
        {"max_files": "0"},
        {"max_files": "1001"},
        {"password": "abc"},
        {"password": "      "},
        {"message": "m" * 2001},
    ],
)
def test_bad_request_settings_are_refused(api, fields):
    response = api.form_post("/requests", {**FIELDS, "max_files": "10", **fields})
    assert response.status_code == 422, fields
    assert db.session.scalar(select(FileRequest.id)) is None


def test_requests_need_csrf_and_a_login(app, api):
    no_token = api.client.post("/requests", data={**FIELDS, "max_files": "3"})
    assert no_token.status_code == 400
    _, token = make_request(api)
    sender = Sender(app, token)
    no_csrf = sender.client.post(
        f"/api/requests/{token}/uploads", json={"filename": "a.txt", "size": 3, "content_type": "text/plain"}
    )
    assert no_csrf.status_code == 400 and no_csrf.get_json()["error"]["code"] == "csrf_failed"


def test_a_sender_without_the_cookie_is_asked_to_allow_it(app, api):
    _, token = make_request(api)
    sender = Sender(app, token)
    sender.client.delete_cookie(SENDER_COOKIE)
    refused = sender.begin()
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "no_sender"
    assert sender.begin().status_code == 201  # the refusal gave the browser its cookie


def test_a_multipart_upload_through_a_request(app, api, run_worker):
    _, token = make_request(api, max_file_mb="100")
    sender = Sender(app, token)
    size = 70 * MiB
    grant = sender.begin("video.mp4", size, "video/mp4")
    assert grant.status_code == 201
    grant = grant.get_json()
    upload_id, plan = grant["upload"]["id"], grant["multipart"]
    numbers = list(range(1, plan["part_count"] + 1))
    urls = sender.call("POST", f"/{upload_id}/parts", {"part_numbers": numbers}).get_json()["parts"]
    for number in numbers:
        length = min(plan["part_size"], size - (number - 1) * plan["part_size"])
        assert requests.put(urls[str(number)], data=b"\0" * length, timeout=60).status_code == 200
    held = sender.call("GET", f"/{upload_id}/parts").get_json()["parts"]
    assert [part["part_number"] for part in held] == numbers
    assert sender.call("POST", f"/{upload_id}/complete").status_code == 202
    run_worker()
    # Zeros are not an MP4: refused by the same checks an owner's upload goes through.
    assert sender.status(upload_id).get_json()["upload"]["status"] == "rejected"


class TestRateLimits:
    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_ENABLED": True, "REQUEST_UPLOAD_LIMIT_PER_IP": "3 per minute"}

    def test_uploads_through_requests_are_limited_per_address(self, app, api):
        _, token = make_request(api)
        sender = Sender(app, token)
        assert [sender.begin(f"{n}.txt", 3).status_code for n in range(3)] == [201, 201, 201]
        limited = Sender(app, token).begin("4.txt", 3)  # a new browser from the same address
        assert limited.status_code == 429 and limited.get_json()["error"]["code"] == "rate_limited"
        assert limited.headers["Retry-After"]


class TestUnlockLimits:
    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_ENABLED": True, "SHARE_UNLOCK_LIMIT_PER_LINK": "3 per minute"}

    def test_password_attempts_are_throttled_per_request(self, app, api):
        _, token = make_request(api, password="open sesame")
        sender = Sender(app, token)
        guesses = [
            sender.client.post(f"/r/{token}/unlock", data={"password": f"g{n}xx", "csrf_token": sender.csrf})
            for n in range(4)
        ]
        assert [g.status_code for g in guesses] == [404, 404, 404, 429]


def test_closing_a_request_cancels_what_is_still_on_its_way(app, api, run_worker):
    request_id, token = make_request(api)
    sender = Sender(app, token)
    grant = sender.begin("late.txt", 9).get_json()
    late = grant["upload"]["id"]
    sent = sender.send(b"in time", "early.txt")
    assert api.form_post(f"/requests/{request_id}/close").status_code == 302
    assert fetch(late) is None  # cancelled: its quota is free, and it can never be promoted
    assert fetch(sent).status == "uploaded"  # what arrived before the close stays
    # The sender still holds the PUT URL: the bytes may land, but no upload owns them.
    requests.put(grant["url"], data=b"too late!", headers=grant["headers"], timeout=30)
    from webapp.services import maintenance

    maintenance.promote_pending(utcnow() + timedelta(hours=2))
    assert db.session.scalar(select(Upload.id).where(Upload.filename == "late.txt")) is None
    run_worker()
    assert fetch(sent).status == "available"


def test_a_sender_has_a_few_uploads_waiting_at_most(app, api):
    app.config["REQUEST_MAX_PENDING_PER_SENDER"] = 2
    _, token = make_request(api)
    sender = Sender(app, token)
    assert [sender.begin(f"{n}.txt", 3).status_code for n in range(2)] == [201, 201]
    refused = sender.begin("3.txt", 3)
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "too_many_pending"
    assert Sender(app, token).begin("other.txt", 3).status_code == 201  # another sender is not held up


def test_an_upload_through_a_request_waits_less_for_its_bytes(app, api):
    _, token = make_request(api)
    upload_id = Sender(app, token).begin().get_json()["upload"]["id"]
    upload = fetch(upload_id)
    waits = (upload.expires_at - upload.created_at).total_seconds()
    assert waits == app.config["REQUEST_PENDING_UPLOAD_TTL"] < app.config["PENDING_UPLOAD_TTL"]


def test_a_cancel_racing_the_complete_leaves_a_sent_file_alone(app, api):
    from webapp.services import file_requests, uploads

    _, token = make_request(api)
    sender = Sender(app, token)
    upload_id = sender.send(b"sent just now", "raced.txt")
    stale = fetch(upload_id)
    stale.status = "pending"  # what the cancel read a moment before the complete landed
    db.session.expunge(stale)
    with pytest.raises(uploads.Conflict):
        file_requests.cancel(stale)
    assert fetch(upload_id).status == "uploaded"


def test_the_same_browser_is_not_recognisable_across_requests(app, api):
    _, first = make_request(api, title="First")
    _, second = make_request(api, title="Second")
    sender = Sender(app, first)
    one = sender.begin("a.txt", 3).get_json()["upload"]["id"]
    sender.token = second
    two = sender.begin("b.txt", 3).get_json()["upload"]["id"]
    assert fetch(one).request_sender != fetch(two).request_sender
    assert sender.client.get_cookie(SENDER_COOKIE).value not in {fetch(one).request_sender, fetch(two).request_sender}


def test_an_absurd_request_filter_is_refused_not_crashed(api):
    assert api.get("/files?request=" + "1" * 5000).status_code == 422
    assert api.get("/files?request=99999999999").status_code == 422
    assert api.get("/files?request=12").status_code == 404  # not one of yours


class TestCreateLimit:
    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_ENABLED": True, "REQUEST_CREATE_LIMIT": "2 per minute"}

    def test_making_requests_is_rate_limited(self, api):
        make_request(api)
        make_request(api)
        refused = api.form_post("/requests", {**FIELDS, "max_files": "10"})
        assert refused.status_code == 429
        assert db.session.scalar(select(func.count()).select_from(FileRequest)) == 2


def test_an_owner_with_too_many_uploads_waiting_makes_the_request_busy(app, api):
    app.config["MAX_PENDING_UPLOADS"] = 1
    _, token = make_request(api)
    api.begin("mine.txt", 5)
    refused = Sender(app, token).begin()
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "busy"
    assert "waiting" not in refused.text
