"""S3 ObjectCreated notifications at /api/storage-events, in AWS's, MinIO's, SNS's and EventBridge's
shapes, against the real S3 endpoint, Redis and worker: an event promotes its pending upload exactly as
`complete` would, before or after `complete`, and the two together cause one scan."""

import base64
import json
from urllib.parse import quote_plus

import pytest
import requests
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import AuditEvent, Upload
from webapp.queue import get_queue, scan_job_id
from webapp.services import uploads

SECRET = "storage-events-secret-for-tests"


@pytest.fixture
def app_config():
    return {"STORAGE_EVENTS_SECRET": SECRET}


def aws_event(bucket, key, name="ObjectCreated:Put"):
    return {
        "Records": [
            {"eventName": name, "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "size": 1}}}
        ]
    }


def minio_event(bucket, key):
    record = aws_event(bucket, key, "s3:ObjectCreated:Put")["Records"][0]
    return {"EventName": "s3:ObjectCreated:Put", "Key": f"{bucket}/{key}", "Records": [record]}


def eventbridge_event(bucket, key):
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key}},
    }


def sns_event(bucket, key):
    return {"Type": "Notification", "MessageId": "m-1", "Message": json.dumps(aws_event(bucket, key))}


def post_event(app, body, secret=SECRET, headers=None, content_type="application/json"):
    auth = {"Authorization": f"Bearer {secret}"} if secret is not None else {}
    return app.test_client().post(
        "/api/storage-events", data=json.dumps(body), headers={**auth, **(headers or {})}, content_type=content_type
    )


def pending_put(api, data=b"sent straight to storage"):
    grant = api.begin("event.txt", len(data))
    assert requests.put(grant["url"], data=data, headers=grant["headers"], timeout=30).status_code == 200
    upload_id = grant["upload"]["id"]
    return upload_id, db.session.get(Upload, upload_id).incoming_key


def scans_recorded(upload_id):
    db.session.expire_all()
    return db.session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "scan_verdict", AuditEvent.target_id == upload_id)
    )


@pytest.mark.parametrize("shape", [aws_event, minio_event, eventbridge_event, sns_event])
def test_an_event_before_complete_promotes_and_complete_adds_nothing(app, api, run_worker, shape):
    upload_id, key = pending_put(api)
    answer = post_event(app, shape(app.config["S3_BUCKET"], key))
    assert answer.status_code == 200 and answer.get_json() == {"promoted": 1, "ignored": 0}
    assert api.status(upload_id)["status"] == "uploaded"
    assert api.post(f"/api/uploads/{upload_id}/complete").status_code == 202  # the browser, late
    assert post_event(app, shape(app.config["S3_BUCKET"], key)).status_code == 200  # storage, again
    run_worker()
    assert api.status(upload_id)["status"] == "available"
    assert scans_recorded(upload_id) == 1


def test_an_event_after_complete_changes_nothing(app, api, run_worker):
    upload_id, key = pending_put(api)
    assert api.post(f"/api/uploads/{upload_id}/complete").status_code == 202
    run_worker()
    answer = post_event(app, minio_event(app.config["S3_BUCKET"], key))
    assert answer.get_json() == {"promoted": 0, "ignored": 1}  # already scanned
    assert get_queue().fetch_job(scan_job_id(upload_id)).get_status() == "finished"
    run_worker()
    assert scans_recorded(upload_id) == 1


def test_an_event_before_the_bytes_are_there_promotes_nothing(app, api):
    grant = api.begin("not yet.txt", 5)
    key = db.session.get(Upload, grant["upload"]["id"]).incoming_key
    answer = post_event(app, aws_event(app.config["S3_BUCKET"], key))
    assert answer.get_json() == {"promoted": 0, "ignored": 1}
    assert api.status(grant["upload"]["id"])["status"] == "pending"


def test_a_multipart_upload_is_promoted_once_storage_assembled_it(app, api, run_worker):
    size = 70 * 1024 * 1024
    grant = api.begin("big.mp4", size, "video/mp4")
    upload_id, plan = grant["upload"]["id"], grant["multipart"]
    numbers = list(range(1, plan["part_count"] + 1))
    urls = api.post(f"/api/uploads/{upload_id}/parts", json={"part_numbers": numbers}).get_json()["parts"]
    for number in numbers:
        length = min(plan["part_size"], size - (number - 1) * plan["part_size"])
        assert requests.put(urls[str(number)], data=b"\0" * length, timeout=60).status_code == 200
    upload = db.session.get(Upload, upload_id)
    # Parts alone are no object: an event now (a stray one) promotes nothing.
    assert post_event(app, aws_event(app.config["S3_BUCKET"], upload.incoming_key)).get_json()["promoted"] == 0
    # Assembled (say the server did, then died before marking it): S3 says CompleteMultipartUpload.
    uploads.assemble_multipart(upload)
    event = aws_event(app.config["S3_BUCKET"], upload.incoming_key, "ObjectCreated:CompleteMultipartUpload")
    assert post_event(app, event).get_json() == {"promoted": 1, "ignored": 0}
    assert api.status(upload_id)["status"] == "uploaded"
    assert api.post(f"/api/uploads/{upload_id}/complete").status_code == 202
    run_worker()
    assert api.status(upload_id)["status"] == "rejected"  # zeros are no MP4: the same checks ran, once
    assert scans_recorded(upload_id) == 1


def test_a_form_upload_is_promoted_with_what_storage_knows(app, api):
    response = api.form_post("/upload")
    upload_id = response.headers["Location"].rsplit("/", 1)[-1]
    upload = db.session.get(Upload, upload_id)
    from webapp.storage import get_storage

    get_storage().client.put_object(
        Bucket=app.config["S3_BUCKET"],
        Key=upload.incoming_key,
        Body=b"from a form",
        ContentType="text/plain",
        Metadata={"filename": "form.txt"},
    )
    assert post_event(app, aws_event(app.config["S3_BUCKET"], upload.incoming_key)).get_json()["promoted"] == 1
    assert api.status(upload_id)["status"] == "uploaded"
    assert api.status(upload_id)["size"] == len(b"from a form")


def test_the_secret_is_required_and_checked(app, api):
    upload_id, key = pending_put(api)
    body = aws_event(app.config["S3_BUCKET"], key)
    for secret in (None, "wrong", ""):
        refused = post_event(app, body, secret=secret)
        assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "invalid_secret", secret
    assert api.status(upload_id)["status"] == "pending"
    basic = base64.b64encode(f"sns:{SECRET}".encode()).decode()
    sns = post_event(
        app,
        sns_event(app.config["S3_BUCKET"], key),
        secret=None,
        headers={"Authorization": f"Basic {basic}"},
        content_type="text/plain; charset=UTF-8",
    )
    assert sns.get_json()["promoted"] == 1  # SNS: basic auth from the subscription URL, JSON sent as text/plain
    raw = post_event(app, body, secret=None, headers={"Authorization": SECRET})  # MinIO's bare auth_token
    assert raw.status_code == 200


def test_other_buckets_other_keys_and_other_events_are_ignored(app, api):
    upload_id, key = pending_put(api)
    bucket = app.config["S3_BUCKET"]
    for body in (
        aws_event("someone-elses-bucket", key),
        aws_event(bucket, "files/1/not-incoming"),
        aws_event(bucket, key, "ObjectRemoved:Delete"),
        {"Event": "s3:TestEvent", "Bucket": bucket},
        {
            "source": "aws.s3",
            "detail-type": "Object Deleted",
            "detail": {"bucket": {"name": bucket}, "object": {"key": key}},
        },
    ):
        answer = post_event(app, body)
        assert answer.status_code == 200 and answer.get_json()["promoted"] == 0, body
    assert api.status(upload_id)["status"] == "pending"


def test_an_sns_subscription_confirmation_is_logged_not_fetched(app, caplog):
    body = {
        "Type": "SubscriptionConfirmation",
        "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t",
    }
    answer = post_event(app, body, content_type="text/plain; charset=UTF-8")
    assert answer.status_code == 200 and answer.get_json()["confirmation"] == "logged"
    assert "ConfirmSubscription" in caplog.text


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"Records": "no"}',
        b'{"Records": [1]}',
        b'{"Records": [{"eventName": "ObjectCreated:Put"}]}',
        b"[" * 100000,
    ],
)
def test_garbage_is_a_clear_400(app, raw):
    answer = app.test_client().post(
        "/api/storage-events", data=raw, headers={"Authorization": f"Bearer {SECRET}"}, content_type="application/json"
    )
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_event"


def test_without_a_secret_configured_the_endpoint_is_off(app):
    app.config["STORAGE_EVENTS_SECRET"] = ""
    answer = post_event(app, {"Records": []}, secret="")
    assert answer.status_code == 404


@pytest.mark.parametrize("key", ["incoming/a\u0000b", "incoming/\ud800", "incoming/" + "x" * 600])
def test_keys_no_upload_could_have_are_ignored(app, key):
    body = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": app.config["S3_BUCKET"]}, "object": {"key": key}},
            }
        ]
    }
    answer = app.test_client().post(
        "/api/storage-events",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {SECRET}"},
        content_type="application/json",
    )
    assert answer.status_code == 200 and answer.get_json() == {"promoted": 0, "ignored": 1}
