"""The admin area: every route guarded, every action audited, and each action's effect on the service."""

import re

import pytest
import requests
from sqlalchemy import select, update

from tests.conftest import PASSWORD, Api, bucket_keys, report, share_token
from tests.test_auth import login
from webapp.extensions import db
from webapp.models import AuditEvent, BlockedHash, Report, Share, Upload, User
from webapp.queue import get_queue
from webapp.scanning.clamd import EICAR

ADMIN_PAGES = ["/admin", "/admin/moderation", "/admin/users", "/admin/audit", "/admin/jobs"]
ADMIN_ACTIONS = [
    "/admin/moderation/{upload}/approve",
    "/admin/moderation/{upload}/remove",
    "/admin/moderation/{upload}/block",
    "/admin/users/{user}/ban",
    "/admin/users/{user}/unban",
    "/admin/users/{user}/quota",
    "/admin/jobs/scan-x/retry",
    "/admin/users/new",
]


@pytest.fixture
def admin(make_user):
    return make_user("admin@example.com", admin=True)


@pytest.fixture
def admin_api(app, admin):
    return Api(app.test_client(user=admin))


def events(action=None):
    db.session.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.session.scalars(query))


def fresh(model, key):
    db.session.expire_all()
    return db.session.get(model, key)


# --- Guards ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_pages_send_anonymous_to_login_and_refuse_users(app, api, admin_api, url):
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/auth/login?next=")
    refused = api.get(url)
    assert refused.status_code == 403
    assert "for administrators" in refused.get_data(as_text=True)
    assert admin_api.get(url).status_code == 200


@pytest.mark.parametrize("url", ADMIN_ACTIONS)
def test_actions_are_guarded_and_need_csrf(app, api, admin_api, user, available, url):
    url = url.format(upload=available, user=user.id)
    data = {"reason": "testing the guard", "quota_mb": "5", "email": "guard@example.com", "password": PASSWORD}
    assert app.test_client().post(url, data=data).status_code in (302, 400)  # CSRF first, then login
    assert api.form_post(url, data).status_code == 403
    no_csrf = admin_api.client.post(url, data=data)
    assert no_csrf.status_code == 400
    assert "did not come from this site" in no_csrf.get_data(as_text=True)
    assert fresh(Upload, available).status == "available"
    assert not fresh(User, user.id).is_banned
    assert events("ban") == [] and events("remove") == [] and events("quota_changed") == []
    assert db.session.scalar(select(User).where(User.email == "guard@example.com")) is None


def test_admin_routes_never_accept_get_for_actions(admin_api, available):
    assert admin_api.get(f"/admin/moderation/{available}/remove").status_code == 405


def test_admin_role_cannot_be_granted_from_the_web(app, api, user):
    # No route changes is_admin; the only ways are `flask users create --admin` and `users promote`.
    rules = [r.rule for r in app.url_map.iter_rules()]
    assert not [r for r in rules if "promote" in r or "admin" in r and "role" in r]
    assert not fresh(User, user.id).is_admin


def test_every_action_requires_a_reason(admin_api, quarantined):
    response = admin_api.form_post(f"/admin/moderation/{quarantined}/approve", {"reason": ""})
    assert response.status_code == 302
    assert fresh(Upload, quarantined).status == "quarantined"
    assert "Give a reason" in admin_api.get("/admin/moderation").get_data(as_text=True)
    assert events("approve") == []


# --- Moderation queue -----------------------------------------------------------------------------


def test_queue_lists_quarantined_rejected_and_reported_with_details(
    app, api, admin_api, run_worker, quarantined, available
):
    rejected = api.upload(b"<html>not a png</html>", filename="fake.png", content_type="image/png")
    run_worker()
    token = share_token(api, available)
    assert report(app, token, "Phishing page inside").status_code == 302
    html = admin_api.get("/admin/moderation").get_data(as_text=True)
    order = re.findall(r'data-upload-id="([^"]+)"', html)
    assert set(order) == {quarantined, rejected, available}
    assert order[0] == available  # most recently flagged first: the report came last
    eicar = fresh(Upload, quarantined)
    assert eicar.sha256 and eicar.sha256 in html
    assert "Eicar-Test-Signature" in html and "owner@example.com" in html
    assert "Phishing page inside" in html and "type_not_allowed" in html
    only_reported = admin_api.get("/admin/moderation?reason=reported").get_data(as_text=True)
    assert re.findall(r'data-upload-id="([^"]+)"', only_reported) == [available]
    only_malware = admin_api.get("/admin/moderation?reason=malware").get_data(as_text=True)
    assert re.findall(r'data-upload-id="([^"]+)"', only_malware) == [quarantined]


def test_approve_a_false_positive_makes_it_available(app, api, admin_api, quarantined):
    response = admin_api.form_post(f"/admin/moderation/{quarantined}/approve", {"reason": "test file, not malware"})
    assert response.status_code == 302
    upload = fresh(Upload, quarantined)
    assert upload.status == "available" and upload.file_key.startswith("files/")
    assert upload.reason == "approved_by_moderator" and upload.signature  # the finding stays on record
    assert "a moderator reviewed it and approved it" in api.get(f"/files/{quarantined}").get_data(as_text=True)
    got = requests.get(api.get(f"/files/{quarantined}/download").headers["Location"], timeout=10)
    assert got.content == EICAR
    [event] = events("approve")
    assert (event.actor_email, event.target_id, event.reason) == (
        "admin@example.com",
        quarantined,
        "test file, not malware",
    )
    assert quarantined not in admin_api.get("/admin/moderation").get_data(as_text=True)


def test_approve_serves_the_scanned_copy_not_bytes_rewritten_since(app, api, admin_api, quarantined):
    from webapp.storage import get_storage

    upload = fresh(Upload, quarantined)
    assert upload.file_key and upload.file_key in bucket_keys(app, "files/")  # the scanned copy, kept
    get_storage().put(upload.incoming_key, b"X" * len(EICAR), "text/plain")  # through a still-valid URL
    response = admin_api.form_post(f"/admin/moderation/{quarantined}/approve", {"reason": "looks fine"})
    assert response.status_code == 302
    assert fresh(Upload, quarantined).status == "available"
    served = requests.get(api.get(f"/files/{quarantined}/download").headers["Location"], timeout=10).content
    assert served == EICAR


def test_approve_of_a_file_quarantined_without_a_kept_copy_proves_its_bytes(app, api, admin_api, quarantined):
    # Files quarantined before scanned copies were kept have only the browser's object.
    from webapp.storage import get_storage

    upload = fresh(Upload, quarantined)
    storage = get_storage()
    storage.put(upload.incoming_key, EICAR, "text/plain")
    storage.delete(upload.file_key)
    db.session.execute(update(Upload).where(Upload.id == quarantined).values(file_key=None))
    db.session.commit()
    storage.put(upload.incoming_key, b"X" * len(EICAR), "text/plain")
    response = admin_api.form_post(f"/admin/moderation/{quarantined}/approve", {"reason": "looks fine"})
    assert response.status_code == 302
    assert fresh(Upload, quarantined).status == "quarantined"
    assert "no longer the ones scanned" in admin_api.get("/admin/moderation").get_data(as_text=True)
    assert events("approve") == [] and bucket_keys(app, "files/") == []

    storage.put(upload.incoming_key, EICAR, "text/plain")  # the scanned bytes: approved, and served
    admin_api.form_post(f"/admin/moderation/{quarantined}/approve", {"reason": "looks fine"})
    assert fresh(Upload, quarantined).status == "available"
    assert requests.get(api.get(f"/files/{quarantined}/download").headers["Location"], timeout=10).content == EICAR


def test_approving_the_scanner_flag_does_not_skip_the_other_checks(app, api, admin_api, run_worker):
    from tests.hostile_corpus import obfuscated

    upload_id = api.upload(obfuscated(), filename="invoice.pdf", content_type="application/pdf")
    run_worker()
    assert fresh(Upload, upload_id).status == "quarantined"  # clamd's PDF heuristics flag it first
    response = admin_api.form_post(f"/admin/moderation/{upload_id}/approve", {"reason": "a false positive"})
    assert response.status_code == 302
    assert fresh(Upload, upload_id).status == "quarantined"
    page = admin_api.get("/admin/moderation").get_data(as_text=True)
    assert "fails another check" in page and "JavaScript" in page
    assert events("approve") == []
    assert api.get(f"/files/{upload_id}/download").status_code == 404


def test_remove_deletes_objects_revokes_links_and_tells_the_owner(app, api, admin_api, available):
    from tests.conftest import bucket_keys

    token = share_token(api, available)
    report(app, token)
    response = admin_api.form_post(f"/admin/moderation/{available}/remove", {"reason": "spam"})
    assert response.status_code == 302
    upload = fresh(Upload, available)
    assert (upload.status, upload.reason) == ("removed", "removed_by_moderator")
    assert bucket_keys(app, "files/") == []
    assert app.test_client().get(f"/s/{token}").status_code == 404
    assert all(r.resolution == "removed" for r in db.session.scalars(select(Report)))
    listing = api.get("/files").get_data(as_text=True)
    assert "status-removed" in listing
    assert "Removed by a moderator." in api.get(f"/files/{available}").get_data(as_text=True)
    assert api.get(f"/files/{available}/download").status_code == 404
    assert events("remove")[0].details["shares_revoked"] == 1


def test_dismissing_reports_keeps_the_file(app, api, admin_api, available):
    report(app, share_token(api, available))
    admin_api.form_post(f"/admin/moderation/{available}/approve", {"reason": "harmless"})
    assert fresh(Upload, available).status == "available"
    assert all(r.resolution == "approved" for r in db.session.scalars(select(Report)))
    assert available not in admin_api.get("/admin/moderation").get_data(as_text=True)


def test_block_content_rejects_the_same_bytes_from_anyone(app, api, other_api, admin_api, run_worker, available):
    copy = other_api.upload(b"a perfectly normal text file", filename="copy.txt")
    run_worker()
    assert other_api.status(copy)["status"] == "available"
    admin_api.form_post(f"/admin/moderation/{available}/block", {"reason": "leaked document"})
    sha = fresh(Upload, available).sha256
    assert db.session.get(BlockedHash, sha).reason == "leaked document"
    assert {fresh(Upload, i).status for i in (available, copy)} == {"removed"}
    assert fresh(Upload, copy).reason == "blocked_content"
    again = other_api.upload(b"a perfectly normal text file", filename="again.txt")
    run_worker()
    info = other_api.status(again)
    assert (info["status"], info["reason"]) == ("rejected", "blocked_content")
    assert set(events("block_content")[0].details["removed"]) == {available, copy}


def test_block_needs_a_known_hash(app, api, admin_api, run_worker):
    rejected = api.upload(b"<html></html>", filename="x.png", content_type="image/png")
    run_worker()
    admin_api.form_post(f"/admin/moderation/{rejected}/block", {"reason": "bad"})
    assert "SHA-256 is not known" in admin_api.get("/admin/moderation").get_data(as_text=True)
    assert db.session.scalar(select(BlockedHash)) is None


# --- Users ----------------------------------------------------------------------------------------


def test_ban_ends_sessions_pending_uploads_and_share_links(app, api, admin_api, user, available):
    from tests.conftest import bucket_keys

    token = share_token(api, available)
    pending = api.begin(size=5)
    requests.put(pending["url"], data=b"12345", headers=pending["headers"], timeout=10)
    response = admin_api.form_post(f"/admin/users/{user.id}/ban", {"reason": "abuse"})
    assert response.status_code == 302
    assert fresh(User, user.id).is_banned
    assert api.get("/files").status_code == 302  # the session no longer works
    assert fresh(Upload, pending["upload"]["id"]) is None
    assert bucket_keys(app, "incoming/") == []
    assert app.test_client().get(f"/s/{token}").status_code == 404
    from tests.test_auth import login

    assert login(app.test_client(), "owner@example.com").status_code == 401
    [event] = events("ban")
    assert event.details == {"email": "owner@example.com", "pending_cancelled": 1}
    # Unban: the account and its links work again.
    admin_api.form_post(f"/admin/users/{user.id}/unban", {"reason": "appeal accepted"})
    assert app.test_client().get(f"/s/{token}").status_code == 200
    assert login(app.test_client(), "owner@example.com").status_code == 302


def test_admins_cannot_ban_themselves_or_other_admins(admin_api, admin, make_user):
    other_admin = make_user("admin2@example.com", admin=True)
    for target in (admin, other_admin):
        admin_api.form_post(f"/admin/users/{target.id}/ban", {"reason": "oops"})
        assert not fresh(User, target.id).is_banned
    assert events("ban") == []


def test_users_page_searches_and_shows_usage(admin_api, make_user, available):
    make_user("someone.else@example.com")
    html = admin_api.get("/admin/users?q=owner").get_data(as_text=True)
    assert "owner@example.com" in html and "someone.else@example.com" not in html
    assert "28 bytes in 1 file" in html
    assert "2.0 GB (default)" in html


def test_users_search_treats_wildcards_literally(admin_api, make_user):
    make_user("plain@example.com")
    html = admin_api.get("/admin/users?q=%25").get_data(as_text=True)
    assert "plain@example.com" not in html


class TestMakingAccounts:
    """Admins make accounts on /admin/users (the way in when sign-up is closed), audited as theirs."""

    @pytest.fixture
    def app_config(self):
        return {"REGISTRATION": "closed"}

    def test_with_a_generated_password_shown_once(self, app, admin_api, admin):
        assert 'action="/admin/users/new"' in admin_api.get("/admin/users").get_data(as_text=True)
        response = admin_api.form_post("/admin/users/new", {"email": " New.Person@Example.com ", "password": ""})
        assert response.status_code == 201
        assert response.headers["Cache-Control"] == "no-store"
        password = re.search(r'id="new-password" value="([^"]+)"', response.get_data(as_text=True)).group(1)
        assert len(password) >= 16
        assert login(app.test_client(), "new.person@example.com", password).status_code == 302
        made = fresh(User, db.session.scalar(select(User.id).where(User.email == "new.person@example.com")))
        assert not made.is_admin and password not in made.password_hash
        event = events("account_created")[-1]
        assert (event.actor_id, event.target_id, event.ip) == (admin.id, str(made.id), "127.0.0.1")
        # Shown once: neither the users page nor the session cookie holds it afterwards.
        assert password not in admin_api.get("/admin/users").get_data(as_text=True)
        assert password not in (admin_api.client.get_cookie("session").value or "")

    def test_with_a_chosen_password(self, app, admin_api):
        response = admin_api.form_post("/admin/users/new", {"email": "chosen@example.com", "password": PASSWORD})
        assert response.status_code == 201 and 'id="new-password"' not in response.get_data(as_text=True)
        assert login(app.test_client(), "chosen@example.com").status_code == 302

    @pytest.mark.parametrize(
        "data, message",
        [
            ({"email": "owner@example.com", "password": PASSWORD}, "already exists"),
            ({"email": "not-an-email", "password": PASSWORD}, "Invalid email"),
            ({"email": "short@example.com", "password": "short"}, "at least 10"),
            ({"email": "", "password": PASSWORD}, "This field is required"),
        ],
    )
    def test_refusals_are_readable_and_make_nothing(self, admin_api, user, data, message):
        before = len(events("account_created"))
        response = admin_api.form_post("/admin/users/new", data)
        assert (response.status_code, response.headers["Location"]) == (302, "/admin/users")
        assert message in admin_api.get("/admin/users").get_data(as_text=True)
        assert len(events("account_created")) == before

    def test_users_cannot_make_accounts(self, api):
        assert api.form_post("/admin/users/new", {"email": "x@example.com", "password": PASSWORD}).status_code == 403
        assert db.session.scalar(select(User).where(User.email == "x@example.com")) is None


def test_quota_change_applies_and_is_audited(admin_api, api, user):
    admin_api.form_post(f"/admin/users/{user.id}/quota", {"quota_mb": "1", "reason": "trial account"})
    assert fresh(User, user.id).quota_bytes == 1024 * 1024
    response = api.post(
        "/api/uploads", json={"filename": "a.txt", "size": 2 * 1024 * 1024, "content_type": "text/plain"}
    )
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "quota_exceeded"
    [event] = events("quota_changed")
    assert event.details == {"email": "owner@example.com", "from": None, "to": 1024 * 1024}
    admin_api.form_post(f"/admin/users/{user.id}/quota", {"quota_mb": "", "reason": "back to normal"})
    assert fresh(User, user.id).quota_bytes is None


# --- Audit log ------------------------------------------------------------------------------------


def test_security_events_are_audited(app, api, user, available):
    from tests.test_auth import login

    login(app.test_client(), "owner@example.com", "wrong password")
    login(app.test_client(), "nobody@example.com", "wrong password")
    token = share_token(api, available)
    share = db.session.scalar(select(Share))
    api.form_post(f"/files/{available}/shares/{share.id}/revoke")
    api.form_post(f"/files/{available}/delete")
    actions = [e.action for e in events()]
    assert actions.count("login_failed") == 2
    assert "share_created" in actions and "share_revoked" in actions and "file_deleted" in actions
    failed = events("login_failed")
    assert {e.target_id for e in failed} == {"owner@example.com", "nobody@example.com"}
    assert app.test_client().get(f"/s/{token}").status_code == 404


def test_audit_page_filters(admin_api, api, quarantined, available):
    admin_api.form_post(f"/admin/moderation/{quarantined}/approve", {"reason": "false positive <b>x</b>"})
    admin_api.form_post(f"/admin/moderation/{available}/remove", {"reason": "spam"})
    html = admin_api.get("/admin/audit?action=approve").get_data(as_text=True)
    assert re.findall(r'data-action="([^"]+)"', html) == ["approve"]
    assert "false positive &lt;b&gt;x&lt;/b&gt;" in html
    by_target = admin_api.get(f"/admin/audit?target={available}").get_data(as_text=True)
    assert re.findall(r'data-action="([^"]+)"', by_target) == ["remove", "scan_verdict"]  # newest first
    by_actor = admin_api.get("/admin/audit?actor=admin@").get_data(as_text=True)
    assert set(re.findall(r'data-action="([^"]+)"', by_actor)) == {"account_created", "approve", "remove"}


def test_audit_log_is_append_only_in_the_database(app, admin_api, quarantined):
    from sqlalchemy import text
    from sqlalchemy.exc import DatabaseError

    admin_api.form_post(f"/admin/moderation/{quarantined}/approve", {"reason": "fine"})
    for statement in ("UPDATE audit_events SET reason = 'tampered'", "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError):
            with db.engine.begin() as conn:
                conn.execute(text(statement))
    assert events("approve")[0].reason == "fine"
    assert not [r for r in app.url_map.iter_rules() if r.rule.startswith("/admin/audit/")]


# --- Dashboard and jobs ---------------------------------------------------------------------------


def test_dashboard_shows_counts_volume_storage_queues_and_scanner(admin_api, quarantined, available):
    html = admin_api.get("/admin").get_data(as_text=True)
    assert re.search(r'data-status="available">1<', html) and re.search(r'data-status="quarantined">1<', html)
    assert "owner@example.com" in html  # storage by user
    assert "ClamAV" in html  # clamd's version line
    assert re.search(r'id="last-scan">\d{4}-\d\d-\d\d', html)
    queues = html.split('id="queues"')[1].split("</table>")[0]
    assert "<td>scans</td>" in queues and "<td>maintenance</td>" in queues


def test_dashboard_says_when_the_scanner_is_down(app, admin_api):
    app.config["CLAMD_URL"] = "tcp://127.0.0.1:9"
    html = admin_api.get("/admin").get_data(as_text=True)
    assert 'id="scanner" class="error"' in html and "unreachable" in html


def test_failed_jobs_are_listed_and_can_be_retried(app, api, admin_api, run_worker):
    upload_id = api.upload(b"will fail once")
    clamd = app.config["CLAMD_URL"]
    app.config["CLAMD_URL"] = "tcp://127.0.0.1:9"
    queue = get_queue()
    job = queue.fetch_job(f"scan-{upload_id}")
    job.retries_left = 0
    job.save()
    run_worker()
    assert job.id in queue.failed_job_registry
    html = admin_api.get("/admin/jobs").get_data(as_text=True)
    assert f'data-job-id="{job.id}"' in html and "ScannerUnavailable" in html
    app.config["CLAMD_URL"] = clamd
    response = admin_api.form_post(f"/admin/jobs/{job.id}/retry", {"reason": "clamd is back"})
    assert response.status_code == 302
    assert job.id not in queue.failed_job_registry and job.id in queue.get_job_ids()
    assert events("job_retried")[0].target_id == job.id
    run_worker()
    assert api.status(upload_id)["status"] == "available"


# --- The block list wins over everything, even a scan in progress ----------------------------------


def test_blocked_malware_is_rejected_not_queued_for_approval(app, api, admin_api, run_worker, quarantined):
    admin_api.form_post(f"/admin/moderation/{quarantined}/block", {"reason": "known bad"})
    again = api.upload(EICAR, filename="again.txt")
    run_worker()
    info = api.status(again)
    assert (info["status"], info["reason"]) == ("rejected", "blocked_content")
    assert info["signature"]  # the scanner's finding is still recorded


def test_approve_refuses_blocked_bytes(app, api, admin_api, quarantined):
    from webapp.models import BlockedHash as Blocked

    db.session.add(Blocked(sha256=fresh(Upload, quarantined).sha256, reason="blocked elsewhere"))
    db.session.commit()
    admin_api.form_post(f"/admin/moderation/{quarantined}/approve", {"reason": "looks fine"})
    assert fresh(Upload, quarantined).status == "quarantined"
    assert "on the block list" in admin_api.get("/admin/moderation").get_data(as_text=True)


def test_a_block_during_a_scan_takes_the_file_down(app, api, run_worker, monkeypatch):
    import hashlib

    from webapp.services import scans

    data = b"blocked while being scanned"
    upload_id = api.upload(data)
    real_finish = scans._finish

    def block_then_finish(*args, **values):
        # An admin blocks these bytes after the worker checked the list, before it promotes.
        if values.get("status") == "available":
            db.session.add(BlockedHash(sha256=hashlib.sha256(data).hexdigest(), reason="race"))
            db.session.commit()
        return real_finish(*args, **values)

    monkeypatch.setattr(scans, "_finish", block_then_finish)
    run_worker()
    upload = fresh(Upload, upload_id)
    assert (upload.status, upload.reason) == ("removed", "blocked_content")
    assert api.get(f"/files/{upload_id}/download").status_code == 404
    assert bucket_keys(app, "files/") == []


def test_rejected_files_can_be_cleared_from_the_queue(app, api, admin_api, run_worker):
    rejected = api.upload(b"<html></html>", filename="x.png", content_type="image/png")
    run_worker()
    html = admin_api.get("/admin/moderation").get_data(as_text=True)
    assert f"/admin/moderation/{rejected}/remove" in html
    admin_api.form_post(f"/admin/moderation/{rejected}/remove", {"reason": "junk"})
    assert rejected not in admin_api.get("/admin/moderation").get_data(as_text=True)


# --- Hostile input never reaches a 500 ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/admin/moderation?before_time=2024-01-01T00:00:00&before_id=x",
        "/admin/moderation?before_time=9999-12-31T23:59:59-14:00&before_id=x",
        "/admin/moderation?before_time=0001-01-01T00:00:00%2B14:00&before_id=x",
        "/admin/moderation?before_time=garbage&before_id=x",
        "/admin/moderation?reason=%3Cscript%3E",
        "/admin/users?after=99999999999999999999",
        "/admin/users?after=-5&q=" + "x" * 500,
        "/admin/audit?before=99999999999999999999",
        "/admin/audit?action=nope&actor=%25_%5C&target=" + "y" * 500,
    ],
)
def test_hostile_admin_queries_are_never_500(admin_api, url):
    assert admin_api.get(url).status_code in (200, 400)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/users/99999999999999999999/ban",
        "/admin/users/99999999999999999999/quota",
        "/admin/users/0/unban",
        "/admin/moderation/%E2%80%AE/approve",
        "/admin/moderation/" + "z" * 40 + "/remove",
        "/admin/jobs/" + "j" * 300 + "/retry",
    ],
)
def test_hostile_admin_actions_are_never_500(admin_api, url):
    response = admin_api.form_post(url, {"reason": "testing", "quota_mb": "1"})
    assert response.status_code in (302, 404)


def test_back_field_with_control_characters_is_ignored(admin_api, quarantined):
    response = admin_api.form_post(
        f"/admin/moderation/{quarantined}/approve", {"reason": "fine", "back": "/admin/audit\r\nSet-Cookie: x=y"}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/admin/moderation"


@pytest.fixture
def redis_down(app):
    """Point the app at a Redis port where nothing listens; restored for the fixture's teardown."""
    url = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = "redis://127.0.0.1:9/0"
    app.extensions.pop("satchel.redis", None)
    yield
    app.config["REDIS_URL"] = url
    app.extensions.pop("satchel.redis", None)


def test_jobs_page_survives_redis_down(app, admin_api, redis_down):
    response = admin_api.get("/admin/jobs")
    assert response.status_code == 200
    assert "Redis is unreachable" in response.get_data(as_text=True)
    assert admin_api.get("/admin").status_code == 200


def test_retrying_a_job_whose_data_expired_is_a_clear_refusal(app, admin_api):
    queue = get_queue()
    queue.failed_job_registry.connection.zadd(queue.failed_job_registry.key, {"scan-gone": 9999999999})
    response = admin_api.form_post("/admin/jobs/scan-gone/retry", {"reason": "try it"})
    assert response.status_code == 302
    assert "not in a failed registry" in admin_api.get("/admin/jobs").get_data(as_text=True)
