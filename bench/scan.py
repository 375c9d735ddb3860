"""Benchmark: large objects through the real scan job, next to a bare GET and clamd fed from memory.

Real parts: moto's S3 server, clamd (limits raised to read the largest object whole), Redis,
PostgreSQL (BENCH_DATABASE_URL, emptied first) and one `flask worker`. For each size, one clean
text file is uploaded through the API's presigned PUT and, in the same run:

- a bare streaming GET of the same object reads it (boto3, the job's chunk size);
- clamd INSTREAM scans the same bytes sent from memory;
- the worker scans it: its log gives each step's milliseconds, the server-side copy apart.

It prints the scan step's throughput against the slower of the two peers (goal: >= 0.9x), the
whole job's (goal: >= 0.6x on moto), the copy's share of the job, and the worker process's peak
RSS growth while it scanned.

    python -m bench.scan [--sizes 200,1024]   (MiB)
"""

import argparse
import json
import re
import time
import uuid
from pathlib import Path

import requests
from flask_migrate import upgrade

from bench.load import UNTHROTTLED, fresh_services
from bench.stack import ROOT, start_worker, stop_all
from devtools import localservices
from webapp.scanning.clamd import ClamdClient, parse_instream_reply

MiB = 1024 * 1024
CHUNK = 256 * 1024  # the storage adapter's read size
LINE = b"Satchel scan benchmark: one clean line of plain text, repeated.\n"
PEER_MARK = b"clamd peer: "


def write_file(path, size):
    block = LINE * (MiB // len(LINE) + 1)
    with path.open("wb") as out:
        left = size
        while left:
            piece = block[: min(MiB, left)]
            out.write(piece)
            left -= len(piece)


def bare_get(storage, key):
    """Seconds to stream key once, discarding it."""
    started = time.perf_counter()
    body = storage.client.get_object(Bucket=storage.bucket, Key=key)["Body"]
    while body.read(CHUNK):
        pass
    return time.perf_counter() - started


def clamd_from_memory(url, data):
    """Seconds for clamd to scan data sent from memory (the verdict must be clean)."""
    view = memoryview(data)
    started = time.perf_counter()
    reply = ClamdClient(url, timeout=600).instream(view[i : i + CHUNK] for i in range(0, len(view), CHUNK))
    elapsed = time.perf_counter() - started
    assert parse_instream_reply(reply) is None, reply
    return elapsed


def memory_kib(pid, field):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1))


def scan_lines(log, upload_id):
    """The worker's log lines about upload_id: (its steps, the job's line)."""
    steps = job = None
    for line in log.read_text().splitlines():
        if upload_id not in line or not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("event") == "scan_steps":
            steps = record
        elif record.get("event") == "job":
            job = record
    return steps, job


def wait_status(app, upload_id, timeout):
    from webapp.extensions import db
    from webapp.models import Upload

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            status = db.session.get(Upload, upload_id).status
        if status not in ("uploaded", "scanning"):
            return status
        time.sleep(0.1)
    raise SystemExit(f"{upload_id} still unscanned after {timeout} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1024", help="MiB, one object each")
    args = parser.parse_args()
    sizes = [int(size) * MiB for size in args.sizes.split(",")]

    largest = max(sizes)
    limits = {
        **UNTHROTTLED,
        "MAX_UPLOAD_BYTES": str(largest),
        "MULTIPART_THRESHOLD": str(largest + 1),  # one presigned PUT, as the bare GET reads one object
        "LOG_FORMAT": "json",
    }
    workdir, settings, processes = fresh_services(limits)
    results = []
    try:
        from webapp import create_app
        from webapp.extensions import db
        from webapp.models import User
        from webapp.services import uploads
        from webapp.services.accounts import create_user
        from webapp.storage import get_storage

        app = create_app()
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            get_storage().ensure_bucket(["http://127.0.0.1:5000"])
            user_id = create_user(f"bench-{uuid.uuid4().hex[:6]}@example.com", "benchmark password").id
        log = workdir / "worker.log"
        supervisor = start_worker(settings, log)
        processes.append(supervisor)
        worker = wait_for_worker_process(supervisor)
        for size in sizes:
            path = workdir / "object.txt"
            write_file(path, size)
            with app.app_context():
                grant = uploads.begin_upload(db.session.get(User, user_id), "large.txt", size, "text/plain")
                upload_id, key = grant["upload"]["id"], None
            with path.open("rb") as body:
                headers = {**grant["headers"], "Content-Length": str(size)}
                requests.put(grant["url"], data=body, headers=headers, timeout=600).raise_for_status()
            with app.app_context():
                storage = get_storage()
                key = uploads.own_upload(db.session.get(User, user_id), upload_id).incoming_key
                get_seconds = bare_get(storage, key)
            # Other bytes of the same kind: clamd caches the verdict of content it has seen, by hash.
            data = bytearray(path.read_bytes())
            data[: len(PEER_MARK)] = PEER_MARK
            clamd_seconds = clamd_from_memory(settings["CLAMD_URL"], data)
            del data
            Path(f"/proc/{worker}/clear_refs").write_text("5")  # restart the peak RSS count
            rss_before = memory_kib(worker, "VmRSS")
            with app.app_context():
                uploads.complete_upload(uploads.own_upload(db.session.get(User, user_id), upload_id))
            status = wait_status(app, upload_id, timeout=1800)
            peak = memory_kib(worker, "VmHWM")
            if status != "available":
                raise SystemExit(f"the {size // MiB} MiB file ended {status}")
            time.sleep(0.5)  # the job's own log line follows the verdict
            steps, job = scan_lines(log, upload_id)
            results.append(
                {
                    "size": size,
                    "get_s": get_seconds,
                    "clamd_s": clamd_seconds,
                    "steps": steps["steps_ms"],
                    "job_ms": job["ms"] if job else sum(steps["steps_ms"].values()) - steps["steps_ms"]["copy"],
                    "rss_growth_mib": (peak - rss_before) / 1024,
                }
            )
            print(f"{size // MiB} MiB: {steps['steps_ms']}", flush=True)
            path.unlink()
        report(results)
    finally:
        stop_all(processes)


def wait_for_worker_process(supervisor, timeout=30):
    """The pid of the worker process the `flask worker` supervisor forked."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = localservices.descendants(supervisor.pid)
        if children:
            time.sleep(1)  # registered and listening
            return children[0]
        time.sleep(0.1)
    raise SystemExit("the worker process did not start")


def rate(size, seconds):
    return size / MiB / seconds


def report(results):
    print(
        f"\n{'size':>8}{'bare GET':>11}{'clamd':>9}{'scan step':>11}{'ratio':>7}{'whole job':>11}{'ratio':>7}"
        f"{'w/o copy':>10}{'copy share':>12}{'RSS growth':>12}"
    )
    for row in results:
        steps, size = row["steps"], row["size"]
        floor = min(rate(size, row["get_s"]), rate(size, row["clamd_s"]))
        scan = rate(size, steps["stream_through_scanner"] / 1000)
        whole = rate(size, row["job_ms"] / 1000)
        without_copy = rate(size, (row["job_ms"] - steps["copy"]) / 1000)
        print(
            f"{size // MiB:>5} MiB{rate(size, row['get_s']):>8.0f} MB/s{rate(size, row['clamd_s']):>5.0f} MB/s"
            f"{scan:>6.0f} MB/s{scan / floor:>6.2f}x{whole:>6.0f} MB/s{whole / floor:>6.2f}x"
            f"{without_copy / floor:>9.2f}x{steps['copy'] / row['job_ms']:>11.0%}{row['rss_growth_mib']:>8.0f} MiB"
        )
    print(
        "MB/s are MiB/s; ratio: against the slower of the bare GET and clamd; w/o copy: the whole job less the\n"
        "server-side promotion copy. Goals: the scan step >= 0.9x, the whole job >= 0.6x on moto, the worker's\n"
        "RSS growth < 64 MiB"
    )


if __name__ == "__main__":
    main()
