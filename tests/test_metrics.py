"""/metrics in Prometheus's text format, read back with prometheus_client's own parser: in-process,
and under gunicorn (two worker processes) with a real `flask worker`, in multiprocess mode."""

import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devtools.localservices import free_port, stop_tree
from tests.processes import ROOT, http_login, running_worker, worker_environment
from webapp.scanning.clamd import EICAR

QUEUES = {"scans", "maintenance", "webhooks", "scan-backlog"}


def scrape(client, **kwargs):
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.get_data(as_text=True))


def parse(text):
    """{(sample name, frozenset of labels): value} of every sample, through prometheus_client's parser."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_scrape_counts_verdicts_bytes_scans_queues_clamd_and_requests(app, api, run_worker):
    client = app.test_client()
    before = scrape(client)
    clean = b"counted by the metrics" * 10
    api.upload(clean, "counted.txt")
    api.upload(EICAR, "eicar.txt")
    api.get("/files")
    run_worker()
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("satchel_uploads_finished_total", status="available", reason="") == 1
    assert grew("satchel_uploads_finished_total", status="quarantined", reason="malware") == 1
    assert grew("satchel_bytes_accepted_total") == len(clean)
    assert grew("satchel_scan_duration_seconds_count") == 2
    assert grew("satchel_http_requests_total", route="/api/uploads", method="POST", status="201") == 2
    assert grew("satchel_http_requests_total", route="/files", method="GET", status="200") >= 1
    assert grew("satchel_http_requests_total", route="/metrics", method="GET", status="200") == 1
    for queue in QUEUES:
        assert ("satchel_queue_depth", frozenset({("queue", queue)})) in after
        assert ("satchel_queue_oldest_job_age_seconds", frozenset({("queue", queue)})) in after
        assert ("satchel_queue_failed_jobs", frozenset({("queue", queue)})) in after
    assert value(after, "satchel_queue_depth", queue="scans") == 0
    assert value(after, "satchel_clamd_up") == 1 and value(after, "satchel_redis_up") == 1


def test_queue_depth_and_age_show_waiting_work(app, api):
    api.upload(b"waiting for a worker", "waiting.txt")
    time.sleep(1.1)
    samples = scrape(app.test_client())
    assert value(samples, "satchel_queue_depth", queue="scans") == 1
    assert value(samples, "satchel_queue_oldest_job_age_seconds", queue="scans") >= 1


class TestProtection:
    @pytest.fixture
    def app_config(self):
        return {
            "METRICS_TOKEN": "scrape-me",
            "METRICS_ALLOW_NETWORKS": [__import__("ipaddress").ip_network("10.0.0.0/8")],
        }

    def test_only_the_token_or_an_allowed_network_may_scrape(self, app):
        client = app.test_client()
        assert client.get("/metrics").status_code == 404  # 127.0.0.1 is not in 10.0.0.0/8
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200
        inside = client.get("/metrics", environ_overrides={"REMOTE_ADDR": "10.1.2.3"})
        assert inside.status_code == 200


@pytest.mark.slow
def test_gunicorn_workers_and_the_rq_worker_add_up_in_multiprocess_mode(app, user, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    port = free_port()
    secret = "one key for every process of this test"  # testing makes a new one per process otherwise
    env = worker_environment(app, PROMETHEUS_MULTIPROC_DIR=metrics_dir, SECRET_KEY=secret)
    log = (tmp_path / "gunicorn.log").open("wb")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{origin}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:  # gunicorn listens before its workers have booted
                time.sleep(0.2)
        with running_worker(app, tmp_path / "worker.log", PROMETHEUS_MULTIPROC_DIR=metrics_dir, SECRET_KEY=secret):
            session = http_login(origin, user.email)
            hits = 20
            for _ in range(hits):  # spread over both workers by the kernel
                assert session.get(f"{origin}/healthz", timeout=5).ok
            data = b"counted across processes"
            grant = session.post(
                f"{origin}/api/uploads", json={"filename": "mp.txt", "size": len(data), "content_type": "text/plain"}
            ).json()
            assert requests.put(grant["url"], data=data, headers=grant["headers"], timeout=10).ok
            upload_id = grant["upload"]["id"]
            assert session.post(f"{origin}/api/uploads/{upload_id}/complete").status_code == 202
            for _ in range(100):
                if session.get(f"{origin}/api/uploads/{upload_id}").json()["upload"]["status"] == "available":
                    break
                time.sleep(0.2)
            samples = parse(requests.get(f"{origin}/metrics", timeout=10).text)
    finally:
        stop_tree(web)
        log.close()
    assert value(samples, "satchel_http_requests_total", route="/healthz", method="GET", status="200") >= hits
    # Counted in the RQ worker's process, read through gunicorn's: the files in the shared directory.
    assert value(samples, "satchel_uploads_finished_total", status="available", reason="") == 1
    assert value(samples, "satchel_bytes_accepted_total") == len(data)
    assert len(list(metrics_dir.glob("*.db"))) >= 3  # two web workers and the RQ worker, at least


def test_odd_methods_do_not_make_new_series(app):
    client = app.test_client()
    for method in ("FOOA", "FOOB", "BREW"):
        client.open("/nope", method=method)
    samples = scrape(client)
    methods = {dict(labels).get("method") for name, labels in samples if name == "satchel_http_requests_total"}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert (
        value(samples, "satchel_http_requests_total", route="unmatched", method="other", status="405")
        + value(samples, "satchel_http_requests_total", route="unmatched", method="other", status="404")
        >= 3
    )


def test_a_forwarded_request_is_not_loopback_when_no_proxy_is_trusted(app):
    """A proxy on this host with TRUSTED_PROXY_HOPS=0 would make every client 127.0.0.1: refused."""
    response = app.test_client().get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 404
