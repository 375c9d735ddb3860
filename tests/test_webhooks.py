"""Outbound webhooks against a real HTTPS receiver run by the test (tests/webhook_receiver.py).

The receiver checks each delivery's signature with the README's own `verify` (read out of README.md),
then the tests replay a delivery, let a receiver hang past the timeout, answer 500 until the retries
run out, and refuse private addresses at registration and at delivery time.
"""

import json
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import Api
from tests.webhook_receiver import serve
from webapp.extensions import db
from webapp.models import WebhookDelivery, WebhookEndpoint
from webapp.queue import WEBHOOKS, get_queue, webhook_job_id
from webapp.scanning.clamd import EICAR
from webapp.services import webhooks

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_verify():
    """The `verify` function exactly as the README shows it."""
    text = README.read_text()
    code = re.search(r"<!-- webhook-verify -->\s*```python\n(.*?)```\s*<!-- /webhook-verify -->", text, re.S).group(1)
    namespace = {}
    exec(code, namespace)  # noqa: S102 (the README's own example)
    return namespace["verify"]


@pytest.fixture
def receiver(tmp_path):
    receiver, stop = serve(tmp_path)
    yield receiver
    stop()


@pytest.fixture
def app_config(receiver):
    return {"WEBHOOK_CA_BUNDLE": receiver.ca_path, "WEBHOOK_TIMEOUT": 1, "WEBHOOK_CONNECT_TIMEOUT": 1}


@pytest.fixture
def admin(app, make_user):
    return Api(app.test_client(user=make_user("admin@example.com", admin=True)))


def add_endpoint(api, url, events=("upload.available",), **flags):
    """Register an endpoint through the settings form; returns the response."""
    data = {"url": url, "events": list(events), **{name: "y" for name, on in flags.items() if on}}
    return api.form_post("/settings/webhooks", data)


def endpoint_of(response):
    assert response.status_code == 302, response.text
    return db.session.get(WebhookEndpoint, int(response.headers["Location"].rsplit("/", 1)[-1]))


def deliveries():
    db.session.expire_all()
    return list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def stored_delivery(user, url, uid, **values):
    """An endpoint of user's at url (private addresses allowed, written directly) with one delivery."""
    endpoint = WebhookEndpoint(user_id=user.id, url=url, events="upload.available", allow_private=True)
    db.session.add(endpoint)
    db.session.flush()
    delivery = WebhookDelivery(uid=uid * 32, endpoint_id=endpoint.id, event="upload.available", payload="{}", **values)
    db.session.add(delivery)
    db.session.commit()
    return delivery


def test_a_verdict_is_delivered_signed_and_can_be_replayed(app, api, admin, receiver, run_worker):
    endpoint = endpoint_of(
        add_endpoint(
            admin, receiver.url(), ("upload.available", "upload.quarantined"), all_users=True, allow_private=True
        )
    )
    verify = readme_verify()
    clean = api.upload(b"hello hooks", "hello.txt")
    virus = api.upload(EICAR, "eicar.txt")
    run_worker()  # the scans, then the deliveries they queued
    assert len(receiver.received) == 2
    by_type = {}
    for got in receiver.received:
        assert verify(endpoint.secret, got.headers["Satchel-Signature"], got.body)
        assert not verify("whsec_wrong", got.headers["Satchel-Signature"], got.body)
        assert not verify(endpoint.secret, got.headers["Satchel-Signature"], got.body + b" ")
        body = json.loads(got.body)
        assert got.headers["Satchel-Event"] == body["type"] and got.headers["Satchel-Delivery"] == body["id"]
        assert got.headers["Content-Type"] == "application/json"
        by_type[body["type"]] = body["data"]["upload"]
    assert by_type["upload.available"]["id"] == clean and by_type["upload.available"]["status"] == "available"
    assert by_type["upload.quarantined"]["id"] == virus
    assert {d.status for d in deliveries()} == {"delivered"} and {d.response_code for d in deliveries()} == {200}

    first = deliveries()[0]
    page = admin.get(f"/settings/webhooks/{endpoint.id}").text
    assert first.uid in page and "delivered" in page
    assert admin.form_post(f"/settings/webhooks/{endpoint.id}/deliveries/{first.id}/replay").status_code == 302
    run_worker()
    assert len(receiver.received) == 3
    replayed = receiver.received[-1]
    assert replayed.body == first.payload.encode()  # the same body and id, signed again
    assert replayed.headers["Satchel-Delivery"] == first.uid
    assert verify(endpoint.secret, replayed.headers["Satchel-Signature"], replayed.body)
    assert deliveries()[0].attempts == 1  # a replay starts a fresh count of attempts


def test_a_receiver_that_hangs_is_cut_off_and_retried_later(app, api, admin, receiver, run_worker):
    add_endpoint(admin, receiver.url(), all_users=True, allow_private=True)
    receiver.delay = 3
    upload_id = api.upload(b"slow receiver", "slow.txt")
    started = time.monotonic()
    run_worker()
    took = time.monotonic() - started
    assert api.status(upload_id)["status"] == "available"  # the verdict never waited for the receiver
    [delivery] = deliveries()
    assert delivery.status == "retrying" and delivery.attempts == 1
    assert delivery.error.startswith("timeout")
    assert took < 3  # cut off after WEBHOOK_TIMEOUT (1 s), not the receiver's 3 s
    scheduled = get_queue(WEBHOOKS).scheduled_job_registry.get_job_ids()
    assert webhook_job_id(delivery.id) in scheduled  # RQ tries again after its backoff


def test_an_error_answer_is_retried_then_the_delivery_fails(app, api, admin, receiver, run_worker):
    add_endpoint(admin, receiver.url(), all_users=True, allow_private=True)
    receiver.status = 500
    api.upload(b"the receiver is broken", "broken.txt")
    run_worker()
    [delivery] = deliveries()
    assert (delivery.status, delivery.response_code) == ("retrying", 500)
    assert webhooks.deliver(delivery.id, retries_left=0) == "failed"  # the last of RQ's tries
    assert deliveries()[0].attempts == 2 and len(receiver.received) == 2


def test_private_addresses_are_refused_unless_an_admin_allows_them(app, api, user, admin, receiver, run_worker):
    for url in (receiver.url(), receiver.url(host="127.0.0.1"), "https://10.0.0.1/hook", "https://169.254.169.254/"):
        refused = add_endpoint(api, url)
        assert refused.status_code == 422 and "resolve to public addresses only" in refused.text, url
        assert "resolves to" not in refused.text  # no address named: no map of internal names
    assert add_endpoint(api, "http://example.com/hook").status_code == 422  # https only
    assert add_endpoint(api, receiver.url(), all_users=True).status_code == 404  # an admin's flag
    assert db.session.scalar(select(WebhookEndpoint.id)) is None

    # An endpoint whose name resolved to a public address when it was registered, and to this host
    # now (DNS rebinding): the delivery is refused on the address it reached, and nothing is sent.
    endpoint = WebhookEndpoint(user_id=user.id, url=receiver.url(), events="upload.available")
    db.session.add(endpoint)
    db.session.commit()
    api.upload(b"to a rebound name", "rebound.txt")
    run_worker()
    [delivery] = deliveries()
    assert delivery.status == "refused" and "public addresses only" in delivery.error
    assert receiver.received == []


def test_deletions_and_reports_are_events_too(app, api, admin, receiver, run_worker, available):
    add_endpoint(admin, receiver.url(), ("upload.deleted", "report.created"), all_users=True, allow_private=True)
    from tests.conftest import report, share_token

    token = share_token(api, available)
    assert report(app, token, "spam, says a visitor").status_code == 302
    api.delete(f"/api/uploads/{available}")
    run_worker()
    bodies = [json.loads(got.body) for got in receiver.received]
    assert [b["type"] for b in bodies] == ["report.created", "upload.deleted"]
    assert bodies[0]["data"]["report"]["reason"] == "spam, says a visitor"
    assert bodies[1]["data"]["upload"]["id"] == available and bodies[1]["data"]["previous_status"] == "available"


def test_a_users_endpoint_hears_only_of_that_users_files(app, api, other_api, admin, receiver, run_worker):
    own = endpoint_of(add_endpoint(admin, receiver.url("/admin-only"), allow_private=True))  # not all users
    api.upload(b"someone else's", "theirs.txt")
    run_worker()
    assert receiver.received == [] and deliveries() == []
    assert own.all_users is False


def test_endpoints_are_their_owners_alone(app, api, other_api, admin, receiver):
    endpoint = endpoint_of(add_endpoint(admin, receiver.url(), allow_private=True))
    for url in (f"/settings/webhooks/{endpoint.id}",):
        assert other_api.get(url).status_code == 404
    assert other_api.form_post(f"/settings/webhooks/{endpoint.id}/delete").status_code == 404
    assert other_api.form_post(f"/settings/webhooks/{endpoint.id}/deliveries/1/replay").status_code == 404
    assert endpoint.secret not in other_api.get("/settings/webhooks").text
    assert admin.form_post(f"/settings/webhooks/{endpoint.id}/delete").status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(WebhookEndpoint.id)) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"url": ""},
        {"url": "not a url"},
        {"url": "https://user:pw@example.com/"},
        {"events": []},
        {"events": ["file.eaten"]},
    ],
)
def test_bad_endpoints_are_refused(admin, fields):
    data = {"url": "https://example.com/hook", "events": ["upload.available"], **fields}
    response = admin.form_post("/settings/webhooks", data)
    assert response.status_code == 422, fields
    assert db.session.scalar(select(WebhookEndpoint.id)) is None


def test_maintenance_sends_deliveries_whose_job_was_lost(app, api, admin, receiver, run_worker):
    from datetime import timedelta

    from webapp.models.base import utcnow
    from webapp.services import maintenance

    add_endpoint(admin, receiver.url(), all_users=True, allow_private=True)
    upload_id = api.upload(b"redis forgot", "forgot.txt")
    run_worker()
    [delivery] = deliveries()
    assert delivery.status == "delivered"
    # Made while Redis was down (no job), long enough ago:
    delivery.status, delivery.created_at = "pending", utcnow() - timedelta(minutes=10)
    delivery.attempts, delivery.last_attempt_at = 0, None
    db.session.commit()
    get_queue(WEBHOOKS).empty()
    counts, _ = maintenance.requeue_webhooks(utcnow())
    assert counts == {"requeued": 1}
    run_worker()
    assert deliveries()[0].status == "delivered" and len(receiver.received) == 2
    assert json.loads(receiver.received[1].body)["data"]["upload"]["id"] == upload_id


def test_a_name_resolving_inward_only_at_connect_time_is_refused_by_the_socket_guard(
    app, api, user, receiver, run_worker, monkeypatch
):
    """DNS rebinding: the name looked public when it was checked, and reaches this host when connected.
    (The check is replaced by one that says "public", as a rebinding name's first answer would.)"""
    from webapp import outbound

    monkeypatch.setattr(outbound, "check_url", lambda url, allow_private=False: url)
    db.session.add(WebhookEndpoint(user_id=user.id, url=receiver.url(), events="upload.available"))
    db.session.commit()
    api.upload(b"rebound at connect time", "rebound.txt")
    run_worker()
    [delivery] = deliveries()
    assert delivery.status == "refused" and "public addresses only" in delivery.error
    assert receiver.received == []  # refused before TLS, before a byte of the body


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_total_deadline(app, user, receiver):
    receiver.drip = 0.3  # a byte of the answer every 0.3 s: every read is quick, the whole is not
    delivery = stored_delivery(user, receiver.url(), "d")
    started = time.monotonic()
    assert webhooks.deliver(delivery.id, retries_left=0) == "failed"
    assert time.monotonic() - started < 4  # connect (1 s) + read (1 s), not the 20 s the answer would take
    assert deliveries()[0].error.startswith("timeout")


def test_a_delivery_stops_after_its_attempts_even_if_its_jobs_keep_dying(app, user, receiver):
    from datetime import timedelta

    from webapp.models.base import utcnow

    stuck = stored_delivery(
        user,
        receiver.url(),
        "s",
        status="pending",
        attempts=webhooks.MAX_ATTEMPTS,
        created_at=utcnow() - timedelta(hours=1),
        last_attempt_at=utcnow() - timedelta(hours=1),
    )
    assert webhooks.requeue_stale(utcnow(), timedelta(minutes=5)) == 0
    assert webhooks.deliver(stuck.id) == "failed" and receiver.received == []


def test_the_owner_hears_that_a_file_was_reported_but_not_the_reporters_words(
    app, api, user, admin, receiver, run_worker, available
):
    from tests.conftest import report, share_token

    db.session.add(
        WebhookEndpoint(user_id=user.id, url=receiver.url("/owner"), events="report.created", allow_private=True)
    )
    db.session.commit()
    add_endpoint(admin, receiver.url("/admins"), ("report.created",), all_users=True, allow_private=True)
    assert report(app, share_token(api, available), "it is my photo, I am Jo").status_code == 302
    run_worker()
    heard = {got.path: json.loads(got.body)["data"]["report"] for got in receiver.received}
    assert heard["/admins"]["reason"] == "it is my photo, I am Jo"
    assert "reason" not in heard["/owner"] and heard["/owner"]["id"] == heard["/admins"]["id"]


def test_a_tls_handshake_at_a_crawl_is_cut_off_at_the_total_deadline(app, user, receiver):
    from tests.webhook_receiver import drip_proxy

    # The certificate alone would take over a minute. (CPython bounds a whole TLS handshake by the
    # socket timeout, here the connect timeout; the total deadline covers what follows it.)
    port, stop = drip_proxy(receiver.port, 0.05)
    try:
        delivery = stored_delivery(user, f"https://localhost:{port}/hook", "h")
        started = time.monotonic()
        assert webhooks.deliver(delivery.id, retries_left=0) == "failed"
        assert time.monotonic() - started < 4
        assert deliveries()[0].error.startswith("timeout")
    finally:
        stop()


def test_a_new_secret_signs_from_then_on(app, api, admin, receiver, run_worker, other_api):
    endpoint = endpoint_of(add_endpoint(admin, receiver.url(), all_users=True, allow_private=True))
    old = endpoint.secret
    assert other_api.form_post(f"/settings/webhooks/{endpoint.id}/rotate").status_code == 404
    assert admin.form_post(f"/settings/webhooks/{endpoint.id}/rotate").status_code == 302
    db.session.expire_all()
    new = db.session.get(WebhookEndpoint, endpoint.id).secret
    assert new != old and new.startswith("whsec_")
    api.upload(b"after the rotation", "rotated.txt")
    run_worker()
    verify = readme_verify()
    [got] = receiver.received
    assert verify(new, got.headers["Satchel-Signature"], got.body)
    assert not verify(old, got.headers["Satchel-Signature"], got.body)
