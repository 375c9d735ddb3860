"""Fault tests with real processes: workers killed, Redis, clamd, S3 and the database going away.

Each test bounds its waits; none leaves a process behind. Redis and clamd are really stopped and
started again; S3 (moto keeps its objects in memory) and PostgreSQL (shared by the suite) are cut
off by a TCP proxy that drops every connection and refuses new ones, as a restart does.
"""

import re
import resource
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from sqlalchemy import func, select

from devtools import localservices
from tests.conftest import bucket_keys
from tests.hostile_corpus import png
from tests.processes import Restartable, TcpProxy, http_login, kill_group, running_worker, serving
from tests.test_flow import row
from webapp.extensions import db
from webapp.models import AuditEvent, Upload
from webapp.queue import scan_job_status
from webapp.scanning.clamd import EICAR

pytestmark = pytest.mark.slow

MiB = 1024 * 1024


def wait_for(predicate, timeout, what, interval=0.2):
    """Poll until predicate() is truthy; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def status_of(upload_id):
    return row(upload_id).status


def verdicts(upload_id):
    return db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "scan_verdict", AuditEvent.target_id == upload_id)
    ).all()


def port_of(url):
    return urlsplit(url).port


def with_port(url, port):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


# --- kill -9 a worker in the middle of a scan ---


@pytest.fixture
def slow_clamd(services):
    """clamd behind a 16 MiB/s link, so that scanning a large file takes seconds."""
    proxy = TcpProxy(port_of(services["clamd"].replace("tcp://", "http://")), bytes_per_second=16 * MiB)
    yield f"tcp://127.0.0.1:{proxy.port}"
    proxy.close()


def test_worker_killed_mid_scan_ends_available_exactly_once(app, api, tmp_path, slow_clamd):
    data = b"".join(b"line %09d of a large plain text file\n" % i for i in range(1_400_000))  # 49 MiB
    upload_id = api.upload(data, filename="large.txt")
    log = tmp_path / "workers.log"
    with running_worker(app, log, CLAMD_URL=slow_clamd) as first:
        wait_for(lambda: status_of(upload_id) == "scanning", 30, "the first worker to start scanning")
        time.sleep(1.0)  # well into the stream: about 16 of 49 MiB sent to clamd
        kill_group(first)  # the supervisor and its worker process, with no chance to clean up
    assert status_of(upload_id) == "scanning"
    assert api.get(f"/files/{upload_id}/download").status_code == 404  # its scanned copy is never served

    # A new worker finds the abandoned job once its heartbeat has lapsed (RQ: 10 s + 60 s).
    with running_worker(app, log, scheduler=True, CLAMD_URL=slow_clamd, WORKER_MAINTENANCE_INTERVAL=2):
        wait_for(lambda: status_of(upload_id) == "available", 150, "the new worker to finish the upload")
    upload = row(upload_id)
    assert upload.scan_failures == 1  # the killed run
    assert bucket_keys(app, "files/") == [upload.file_key]  # the killed run's copy is gone too
    assert bucket_keys(app, "incoming/") == []
    assert [event.details["status"] for event in verdicts(upload_id)] == ["available"]


# --- A file the scanner chokes on: clamd hangs, clamd crashes, the job runs out of memory ---


@pytest.fixture
def silent_clamd():
    """A server that takes every INSTREAM whole and never answers, as a clamd stuck on a file."""
    server = socket.create_server(("127.0.0.1", 0))
    connections = []

    def drain(conn):
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed
            connections.append(conn)
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
    server.close()
    thread.join(5)
    for conn in connections:
        conn.close()


def test_a_file_clamd_never_answers_for_ends_rejected_not_requeued_forever(app, api, tmp_path, silent_clamd):
    upload_id = api.upload(b"clamd hangs on this file")
    with running_worker(
        app, tmp_path / "worker.log", scheduler=True, CLAMD_URL=silent_clamd, CLAMD_TIMEOUT=1, MAX_SCAN_FAILURES=2
    ):
        # The first run times out (counted) and RQ retries 5 s later; the second is the last.
        wait_for(lambda: status_of(upload_id) == "rejected", 60, "the timed-out scans to reject the upload")
    upload = row(upload_id)
    assert (upload.reason, upload.scan_failures) == ("scan_failed", 2)
    assert bucket_keys(app) == []
    assert [event.details["status"] for event in verdicts(upload_id)] == ["rejected"]


@pytest.fixture
def slow_s3(services):
    """moto behind a 16 MiB/s link, so that the worker streams a large file to clamd for seconds."""
    proxy = TcpProxy(port_of(services["s3"]), bytes_per_second=16 * MiB)
    yield f"http://127.0.0.1:{proxy.port}"
    proxy.close()


class TestClamdCrash:
    @pytest.fixture
    def app_config(self, own_clamd):
        return {"CLAMD_URL": f"tcp://127.0.0.1:{own_clamd.port}"}

    def test_clamd_dying_mid_stream_counts_against_the_file(self, app, api, own_clamd, slow_s3, tmp_path):
        data = b"".join(b"line %09d of a large plain text file\n" % i for i in range(1_400_000))  # 49 MiB
        upload_id = api.upload(data, filename="large.txt")
        with running_worker(app, tmp_path / "worker.log", scheduler=True, S3_ENDPOINT_URL=slow_s3, MAX_SCAN_FAILURES=2):
            for attempt in (1, 2):
                wait_for(lambda: status_of(upload_id) == "scanning", 60, f"scan {attempt} to start")
                # Once the stream to clamd is open (the copy and the first reads come before it).
                wait_for(lambda: connections_to(own_clamd.port), 60, f"scan {attempt} to reach clamd")
                time.sleep(0.5)
                own_clamd.process.kill()  # clamd crashes on this file
                own_clamd.process.wait(10)
                if attempt == 1:
                    wait_for(lambda: row(upload_id).scan_failures == 1, 30, "the crash to count")
                    assert status_of(upload_id) == "uploaded"  # released for RQ's retry, still unserved
                    own_clamd.start()
            wait_for(lambda: status_of(upload_id) == "rejected", 30, "the second crash to reject the upload")
        upload = row(upload_id)
        assert (upload.reason, upload.scan_failures) == ("scan_failed", 2)
        assert bucket_keys(app) == []


def connections_to(port):
    """How many established TCP connections on this machine go to 127.0.0.1:port."""
    found = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port, state = int(fields[2].rsplit(":", 1)[1], 16), fields[3]
            found += remote_port == port and state == "01"
    return found


def headroom_memory_limit(app, log_path):
    """SCAN_MEMORY_LIMIT that leaves a worker process 160 MiB above what an idle `flask worker` maps."""
    with running_worker(app, log_path, SCAN_MEMORY_LIMIT=0) as worker:
        status = (Path("/proc") / str(worker.pid) / "status").read_text()
    mapped = int(re.search(r"VmSize:\s+(\d+) kB", status).group(1)) * 1024
    return mapped + 160 * MiB


class TestScanMemoryLimit:
    @pytest.fixture
    def app_config(self):
        return {"MAX_IMAGE_PIXELS": 70_000_000}

    def test_a_scan_that_runs_out_of_memory_fails_that_upload_only(self, app, api, run_worker, tmp_path):
        log = tmp_path / "worker.log"
        limit = headroom_memory_limit(app, log)
        image = png((8000, 8000))  # 300 KB that decode to 256 MB of pixels
        small, flood = api.upload(b"a small file"), api.upload(image, "big.png", "image/png")
        with running_worker(app, log, SCAN_MEMORY_LIMIT=limit, MAX_SCAN_FAILURES=1, MAX_IMAGE_PIXELS=70_000_000):
            wait_for(lambda: status_of(flood) == "rejected", 60, "the image's scan to run out of memory")
            wait_for(lambda: status_of(small) == "available", 30, "the small file to pass under the same limit")
        assert row(flood).reason == "scan_failed" and row(flood).scan_failures == 1
        assert "MemoryError" in log.read_text()
        assert bucket_keys(app, f"files/{row(small).user_id}/") == [row(small).file_key]

        # The limit belongs to the worker process: this process (and its in-process worker) has none.
        again = api.upload(image, "big.png", "image/png")
        run_worker()
        assert status_of(again) == "available"
        assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY


# --- Redis stopped when complete is called ---


def restartable(start, name):
    """A fixture: a server of this test's own (start's), which the test may stop and start again on
    the same port."""

    @pytest.fixture
    def service(tmp_path_factory):
        with Restartable(start, tmp_path_factory.mktemp(name)) as running:
            yield running

    return service


own_redis = restartable(localservices.start_redis, "redis")


class TestRedisDown:
    @pytest.fixture
    def app_config(self, own_redis):
        url = f"redis://127.0.0.1:{own_redis.port}/0"
        return {"REDIS_URL": url, "RATELIMIT_STORAGE_URI": url, "RATELIMIT_ENABLED": True, "MAINTENANCE_INTERVAL": 2}

    def test_complete_is_accepted_and_finishes_when_redis_returns(self, app, api, own_redis, tmp_path):
        grant = api.begin("later.txt", 11)
        upload_id = grant["upload"]["id"]
        assert requests.put(grant["url"], data=b"hello world", headers=grant["headers"], timeout=10).ok
        own_redis.stop()

        response = api.post(f"/api/uploads/{upload_id}/complete")
        assert response.status_code == 202  # the intent is in the database; the scan is queued later
        assert response.get_json()["upload"]["status"] == "uploaded"
        assert api.get(f"/api/uploads/{upload_id}").status_code == 200
        assert api.get("/files").status_code == 200  # rate limits fall back to memory
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503 and not ready.get_json()["checks"]["redis"]["ok"]

        own_redis.start()  # empty: like a restart without persistence
        # STUCK_AFTER stays at its default (15 minutes): a job Redis lost is re-queued at once.
        with running_worker(app, tmp_path / "worker.log", scheduler=True, MAINTENANCE_INTERVAL=2):
            wait_for(lambda: status_of(upload_id) == "available", 60, "the reconciler to queue the scan")
        assert [event.details["status"] for event in verdicts(upload_id)] == ["available"]


# --- clamd stopped ---


own_clamd = restartable(localservices.start_clamd, "clamd")


class TestClamdDown:
    @pytest.fixture
    def app_config(self, own_clamd):
        return {"CLAMD_URL": f"tcp://127.0.0.1:{own_clamd.port}"}

    def test_files_stay_unserved_and_are_scanned_when_clamd_returns(self, app, api, own_clamd, make_user, tmp_path):
        own_clamd.stop()
        clean = api.upload(b"a clean file", filename="clean.txt")
        infected = api.upload(EICAR, filename="eicar.txt")
        with running_worker(app, tmp_path / "worker.log", scheduler=True):
            wait_for(
                lambda: all(scan_job_status(i) == "scheduled" for i in (clean, infected)),
                30,
                "the first scan attempts to fail and be scheduled again",
            )
            assert {status_of(clean), status_of(infected)} == {"uploaded"}
            for upload_id in (clean, infected):
                assert api.get(f"/files/{upload_id}/download").status_code == 404
            assert bucket_keys(app, "files/") == []
            ready = app.test_client().get("/readyz").get_json()
            assert ready["checks"]["scanner"] == {
                "ok": False,
                "error": "clamd unreachable",
                "ms": ready["checks"]["scanner"]["ms"],
            }
            admin = app.test_client(user=make_user(admin=True))
            dashboard = admin.get("/admin").get_data(as_text=True)
            assert re.search(r"<p id=\"scanner\" class=\"error\">clamd (unreachable|failed)", dashboard), dashboard

            own_clamd.start()  # the scheduled retries (5 s, then 20 s) find it back
            wait_for(
                lambda: {status_of(clean), status_of(infected)} == {"available", "quarantined"},
                90,
                "the retries to scan both files",
            )
        assert status_of(clean) == "available" and status_of(infected) == "quarantined"
        assert row(clean).scan_failures == 0  # a scanner outage never counts against a file


# --- S3 unreachable ---


class TestStorageDown:
    @pytest.fixture
    def s3_link(self, services):
        proxy = TcpProxy(port_of(services["s3"]))
        yield proxy
        proxy.close()

    @pytest.fixture
    def app_config(self, s3_link):
        return {
            "S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_link.port}",
            "MULTIPART_THRESHOLD": 6 * MiB,
            "MULTIPART_PART_SIZE": 5 * MiB,
        }

    def test_requests_that_need_s3_answer_503_and_uploads_finish_later(self, app, api, run_worker, s3_link):
        first = api.begin("first.txt", 5)
        assert requests.put(first["url"], data=b"first", headers=first["headers"], timeout=10).ok
        rows_before = db.session.scalar(select(func.count()).select_from(Upload))
        s3_link.cut()

        response = api.post(f"/api/uploads/{first['upload']['id']}/complete")
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "storage_unavailable"
        assert status_of(first["upload"]["id"]) == "pending"
        big = api.post("/api/uploads", json={"filename": "big.txt", "size": 12 * MiB, "content_type": "text/plain"})
        assert big.status_code == 503 and big.get_json()["error"]["code"] == "storage_unavailable"
        assert db.session.scalar(select(func.count()).select_from(Upload)) == rows_before  # nothing half made
        second = api.begin("second.txt", 6)  # signing is local: presigning still works

        s3_link.restore()
        assert requests.put(second["url"], data=b"second", headers=second["headers"], timeout=10).ok
        for grant in (first, second):
            assert api.post(f"/api/uploads/{grant['upload']['id']}/complete").status_code == 202
        run_worker()
        assert status_of(first["upload"]["id"]) == status_of(second["upload"]["id"]) == "available"


# --- The database restarted under load ---


@pytest.mark.postgresql  # a database restart is tested on PostgreSQL
class TestDatabaseRestart:
    @pytest.fixture
    def db_link(self, services):
        proxy = TcpProxy(port_of(services["database"].replace("postgresql+psycopg", "http")))
        yield proxy
        proxy.close()

    @pytest.fixture
    def app_config(self, services, db_link):
        return {"SQLALCHEMY_DATABASE_URI": with_port(services["database"], db_link.port), "MAX_PENDING_UPLOADS": 10_000}

    def test_requests_fail_cleanly_during_a_restart_and_succeed_after(self, app, make_user, db_link):
        with serving(app) as origin:
            self.run_load(origin, make_user, db_link)

    def run_load(self, origin, make_user, db_link):
        sessions = [http_login(origin, make_user().email) for _ in range(4)]
        db.session.remove()  # the test's own session holds no connection through the outage
        results, created, stop_at = [], [], time.monotonic() + 8
        phase = {"now": "before"}

        def load(session):
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                if n % 2:
                    response = session.post(
                        f"{origin}/api/uploads",
                        timeout=10,
                        json={"filename": f"f{n}.txt", "size": 10, "content_type": "text/plain"},
                    )
                    if response.status_code == 201:
                        created.append(response.json()["upload"]["id"])
                else:
                    response = session.get(f"{origin}/files", timeout=10)
                results.append(
                    (
                        phase["now"],
                        response.request.method,
                        response.status_code,
                        response.headers.get("Content-Type", ""),
                        response.headers.get("Retry-After"),
                    )
                )

        threads = [threading.Thread(target=load, args=(session,)) for session in sessions]
        for thread in threads:
            thread.start()
        time.sleep(2)
        phase["now"] = "down"
        db_link.cut()
        time.sleep(2)
        db_link.restore()
        phase["now"] = "restarting"
        time.sleep(1)
        phase["now"] = "after"
        for thread in threads:
            thread.join(30)

        by_phase = Counter((phase_, status) for phase_, _, status, _, _ in results)
        assert {status for _, _, status, _, _ in results} <= {200, 201, 503}, by_phase  # never a 500
        assert by_phase[("down", 503)] > 0, by_phase  # the outage was felt ...
        assert all(status in (200, 201) for phase_, _, status, _, _ in results if phase_ in ("before", "after")), (
            by_phase
        )  # ... and only while it lasted
        for _, method, status, content_type, retry_after in results:
            if status == 503:
                assert retry_after == "5"
                assert content_type.startswith("application/json" if method == "POST" else "text/html")
        # Nothing lost: every upload the API granted exists; at most one in-flight request per user
        # may have committed just before its connection was cut.
        rows = set(db.session.scalars(select(Upload.id)))
        assert set(created) <= rows
        assert len(rows - set(created)) <= len(sessions)
