"""Benchmark: time from `POST /complete` to `available` for 1 MiB files with an idle worker.

Real parts: moto's S3 server, clamd, Redis (REDIS_URL, else the bundled redis-server), the
database (BENCH_DATABASE_URL, migrated to head and never dropped; else a temporary SQLite file)
and one `flask worker` (as in production: a supervisor and the worker process it keeps). Prints one line per
run and a summary.

    python -m bench.complete_to_available [--runs 30] [--size 1048576]
"""

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests
from flask_login import FlaskLoginClient
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from bench.stack import ROOT, start_services, start_worker, stop_all
from webapp import create_app
from webapp.auth.sessions import stamp
from webapp.services.accounts import create_user
from webapp.storage import get_storage


def wait_available(engine, upload_id, timeout=60):
    """Poll the row until it leaves the in-flight states; returns (status, seconds waited)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        with engine.connect() as conn:
            status = conn.execute(text("SELECT status FROM uploads WHERE id = :id"), {"id": upload_id}).scalar()
        if status not in ("pending", "uploaded", "scanning"):
            return status, time.perf_counter() - start
        time.sleep(0.002)
    raise TimeoutError(f"upload {upload_id} still {status} after {timeout}s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--size", type=int, default=1024 * 1024)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="satchel-bench-"))
    database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'bench.db'}"
    env, processes = start_services(workdir, database_url, os.environ.get("REDIS_URL"))
    try:
        os.environ.update(env)
        app = create_app({"RATELIMIT_ENABLED": False})
        app.test_client_class = FlaskLoginClient
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            get_storage().ensure_bucket(["http://127.0.0.1:5000"])
            user = create_user(f"bench-{uuid.uuid4().hex[:6]}@example.com", "benchmark password")
            client = app.test_client(user=user)
            with client.session_transaction() as session:
                stamp(session)  # signed in just now, as a login does
            page = client.get("/files").get_data(as_text=True)
            csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
            headers = {"X-CSRFToken": csrf}
        processes.append(start_worker(env))
        time.sleep(2)  # let the worker register and sit idle on its queues
        engine = create_engine(env["DATABASE_URL"])
        payload = (b"satchel benchmark line\n" * (args.size // 23 + 1))[: args.size]
        timings = []
        for run in range(1, args.runs + 1):
            with app.app_context():
                response = client.post(
                    "/api/uploads",
                    headers=headers,
                    json={"filename": f"bench-{run}.txt", "size": len(payload), "content_type": "text/plain"},
                )
                assert response.status_code == 201, response.get_data(as_text=True)
                grant = response.get_json()
                requests.put(grant["url"], data=payload, headers=grant["headers"], timeout=30).raise_for_status()
                upload_id = grant["upload"]["id"]
                started = time.perf_counter()
                response = client.post(f"/api/uploads/{upload_id}/complete", headers=headers)
                assert response.status_code == 202, response.get_data(as_text=True)
            status, _ = wait_available(engine, upload_id)
            elapsed = time.perf_counter() - started
            if status != "available":
                raise SystemExit(f"run {run}: upload ended {status}")
            timings.append(elapsed * 1000)
            print(f"run {run:3d}: complete -> available {elapsed * 1000:7.1f} ms")
            time.sleep(0.2)  # idle worker between runs
        timings.sort()
        p95 = timings[max(0, round(0.95 * len(timings)) - 1)]
        print(
            f"\n{len(timings)} uploads of {args.size} bytes, database {engine.dialect.name}, "
            f"one `flask worker`, clamd INSTREAM"
        )
        print(
            f"complete -> available: median {statistics.median(timings):.1f} ms, "
            f"p95 {p95:.1f} ms, min {timings[0]:.1f} ms, max {timings[-1]:.1f} ms"
        )
        engine.dispose()
    finally:
        stop_all(processes)


if __name__ == "__main__":
    main()
