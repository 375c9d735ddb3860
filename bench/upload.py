"""Benchmark: a large upload through the API next to a plain boto3 `upload_file`, with the memory it costs.

Real parts on loopback: gunicorn serving Satchel (one sync worker), one `flask worker`, moto's S3
server, clamd (limits raised to read the file whole), PostgreSQL (BENCH_DATABASE_URL, emptied
first) and Redis. In the same run, for one file of --size MiB:

- boto3's `upload_file` sends it to the same endpoint (its defaults: 8 MiB parts, 10 threads);
- a client logged in like a browser sends it through the API as the upload widget does: presign,
  parts signed in batches and sent --parallel at a time, complete; then the worker scans it.

It prints both throughputs and their ratio (goal: >= 0.9x), the web process's peak RSS growth
during the upload (goal: < 10 MiB, whatever the size) and the worker process's while it scans
(goal: < 64 MiB).

    python -m bench.upload [--size 1024] [--parallel 4]
"""

import argparse
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from flask_migrate import upgrade

from bench.client import SimulatedUser
from bench.load import UNTHROTTLED, fresh_services
from bench.scan import MiB, memory_kib, wait_for_worker_process, wait_status, write_file
from bench.stack import ROOT, start_gunicorn, start_worker, stop_all
from devtools import localservices

SIGN_BATCH = 20  # parts signed per request, as the widget does
WARM_UP = 64 * 1024 * 1024  # the default multipart threshold


def api_upload(user, path, size, parallel):
    """Send path through the API as the widget does; returns (upload id, seconds to the 202 of complete)."""
    api, base = {"X-CSRFToken": user.csrf}, user.base_url
    started = time.perf_counter()
    grant = user.session.post(
        f"{base}/api/uploads",
        headers=api,
        json={"filename": path.name, "size": size, "content_type": "text/plain"},
        timeout=30,
    )
    grant.raise_for_status()
    grant = grant.json()
    upload_id, plan = grant["upload"]["id"], grant["multipart"]
    part_size, count = plan["part_size"], plan["part_count"]

    def send(number, url):
        with path.open("rb") as source:
            source.seek((number - 1) * part_size)
            body = source.read(part_size)
        response = requests.put(url, data=body, timeout=600)
        response.raise_for_status()
        return {"part_number": number, "etag": response.headers["ETag"]}

    def sign(numbers):
        signed = user.session.post(
            f"{base}/api/uploads/{upload_id}/parts", headers=api, json={"part_numbers": numbers}, timeout=30
        )
        signed.raise_for_status()
        return signed.json()["parts"]

    # As the widget does: the next batch is signed while parts are in flight, so the pipe never drains.
    with ThreadPoolExecutor(parallel) as pool:
        sent = []
        for first in range(1, count + 1, SIGN_BATCH):
            urls = sign(list(range(first, min(first + SIGN_BATCH, count + 1))))
            sent += [pool.submit(send, int(n), url) for n, url in urls.items()]
        parts = sorted((future.result() for future in sent), key=lambda part: part["part_number"])
    parts_sent = time.perf_counter()
    done = user.session.post(
        f"{base}/api/uploads/{upload_id}/complete", headers=api, json={"parts": parts}, timeout=120
    )
    if done.status_code != 202:
        raise SystemExit(f"complete answered {done.status_code}: {done.text[:300]}")
    finished = time.perf_counter()
    print(f"  parts sent in {parts_sent - started:.1f} s, complete took {finished - parts_sent:.1f} s", flush=True)
    return upload_id, finished - started


def boto3_upload(client, bucket, path):
    """Seconds for boto3's upload_file of path (its default transfer settings) with client into bucket."""
    started = time.perf_counter()
    client.upload_file(str(path), bucket, f"peer/{uuid.uuid4().hex}")
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="MiB")
    parser.add_argument("--parallel", type=int, default=4, help="parts in flight at once (the widget's default)")
    args = parser.parse_args()
    size = args.size * MiB

    limits = {**UNTHROTTLED, "MAX_UPLOAD_BYTES": str(size), "LOG_FORMAT": "json", "SECRET_KEY": secrets.token_hex(32)}
    workdir, settings, processes = fresh_services(limits)
    try:
        from webapp import create_app
        from webapp.services.accounts import create_user
        from webapp.storage import get_storage

        app = create_app()
        email, password = f"bench-{uuid.uuid4().hex[:6]}@example.com", secrets.token_urlsafe(16)
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            get_storage().ensure_bucket(["http://127.0.0.1:5000"])
            create_user(email, password)
        gunicorn, base_url = start_gunicorn(settings, 1, log=workdir / "gunicorn.log")
        processes.append(gunicorn)
        supervisor = start_worker(settings, workdir / "worker.log")
        processes.append(supervisor)
        worker = wait_for_worker_process(supervisor)
        web = localservices.descendants(gunicorn.pid)[0]
        user = SimulatedUser(base_url, email, password, payloads=None, seed=0)
        user.log_in()

        # A first, smaller upload warms the web process (imports, pools, caches), so that the growth
        # measured next is what the large upload costs.
        warm = workdir / "warm-up.txt"
        write_file(warm, WARM_UP)
        api_upload(user, warm, WARM_UP, args.parallel)
        path = workdir / "large.txt"
        write_file(path, size)
        with app.app_context():
            storage = get_storage()  # the app's own boto3 client for the endpoint: the same credentials
            peer_seconds = boto3_upload(storage.client, storage.bucket, path)
        Path(f"/proc/{web}/clear_refs").write_text("5")  # restart the peak RSS count
        web_before = memory_kib(web, "VmRSS")
        upload_id, api_seconds = api_upload(user, path, size, args.parallel)
        web_growth = (memory_kib(web, "VmHWM") - web_before) / 1024
        Path(f"/proc/{worker}/clear_refs").write_text("5")
        worker_before = memory_kib(worker, "VmRSS")
        status = wait_status(app, upload_id, timeout=1800)
        worker_growth = (memory_kib(worker, "VmHWM") - worker_before) / 1024
        if status != "available":
            raise SystemExit(f"the upload ended {status}")
    finally:
        stop_all(processes)
    report(size, args.parallel, peer_seconds, api_seconds, web_growth, worker_growth)


def report(size, parallel, peer_seconds, api_seconds, web_growth, worker_growth):
    peer, api = size / MiB / peer_seconds, size / MiB / api_seconds
    print(f"\n{size // MiB} MiB to moto's S3 server on loopback")
    print(f"  boto3 upload_file (8 MiB parts, 10 threads):   {peer:7.0f} MiB/s ({peer_seconds:.1f} s)")
    print(f"  Satchel's API, {parallel} parts at a time, to complete: {api:7.0f} MiB/s ({api_seconds:.1f} s)")
    print(f"  ratio {api / peer:.2f}x (goal >= 0.9x)")
    print(f"  web process peak RSS growth during the upload: {web_growth:.1f} MiB (goal < 10 MiB)")
    print(f"  worker process peak RSS growth while scanning: {worker_growth:.1f} MiB (goal < 64 MiB)")


if __name__ == "__main__":
    main()
