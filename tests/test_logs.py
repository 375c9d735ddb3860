"""Structured logs: one JSON line per request and per job, tied together by request, job and upload ids."""

import io
import json
import logging

import pytest
import requests

from tests.conftest import build_app, make_config, share_token
from webapp.extensions import db
from webapp.logs import JsonFormatter


@pytest.fixture
def log_lines():
    """Everything logged through the root logger while the test runs, as parsed JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines(**match):
        entries = [json.loads(line) for line in stream.getvalue().splitlines()]
        return [e for e in entries if all(e.get(k) == v for k, v in match.items())]

    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


def test_request_job_and_upload_share_ids(app, api, run_worker, log_lines, user):
    grant = api.begin("notes.txt", 11)
    upload_id = grant["upload"]["id"]
    assert requests.put(grant["url"], data=b"hello world", headers=grant["headers"], timeout=10).ok
    response = api.post(f"/api/uploads/{upload_id}/complete", headers={"X-Request-ID": "req-complete-42"})
    assert response.status_code == 202
    assert response.headers["X-Request-ID"] == "req-complete-42"
    run_worker()

    [begin] = log_lines(event="request", route="/api/uploads")
    assert (begin["method"], begin["status"], begin["upload_id"], begin["user_id"]) == ("POST", 201, upload_id, user.id)
    assert len(begin["request_id"]) == 32 and begin["ms"] >= 0
    [complete] = log_lines(event="request", request_id="req-complete-42")
    assert (complete["route"], complete["status"], complete["upload_id"]) == (
        "/api/uploads/<upload_id>/complete",
        202,
        upload_id,
    )
    [job] = log_lines(event="job")
    assert job["job"] == "scan" and job["result"] == "available"
    assert (job["request_id"], job["upload_id"], job["job_id"]) == ("req-complete-42", upload_id, f"scan-{upload_id}")
    # Lines logged inside the job carry the same ids without passing them around.
    inside = [e for e in log_lines(upload_id=upload_id) if e["logger"].startswith("webapp.")]
    assert all(e["request_id"] == "req-complete-42" for e in inside)


@pytest.mark.parametrize("supplied", ["short", "has space in it", "x" * 65, "bad/slash-12345"])
def test_a_malformed_request_id_is_replaced(app, log_lines, supplied):
    response = app.test_client().get("/auth/login", headers={"X-Request-ID": supplied})
    assert response.headers["X-Request-ID"] != supplied
    assert len(response.headers["X-Request-ID"]) == 32
    [line] = log_lines(event="request", route="/auth/login")
    assert line["request_id"] == response.headers["X-Request-ID"]


def test_share_tokens_stay_out_of_the_logs(app, api, available, log_lines):
    token = share_token(api, available)
    assert app.test_client().get(f"/s/{token}").status_code == 200
    assert log_lines(event="request", route="/s/<token>")
    assert all(token not in json.dumps(entry) for entry in log_lines())


def test_log_format_json_writes_one_object_per_line_to_stderr(services, capfd):
    app = build_app(make_config(services, LOG_FORMAT="json", LOG_LEVEL="DEBUG"))
    try:
        assert app.test_client().get("/healthz").status_code == 200
        err = capfd.readouterr().err.strip().splitlines()
        entry = json.loads(err[-1])
        assert entry["event"] == "request" and entry["route"] == "/healthz" and entry["level"] == "debug"
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "satchel", False)]:
            root.removeHandler(handler)
        root.setLevel(logging.WARNING)
        with app.app_context():
            db.engine.dispose()
