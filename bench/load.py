"""Load benchmark: simulated users presign, PUT and complete uploads for a bounded time, then an audit.

Real parts on loopback: gunicorn (`wsgi:app`, sync workers), `flask worker` processes (RQ
workers), PostgreSQL (BENCH_DATABASE_URL), Redis (BENCH_REDIS_URL), moto's S3 server and clamd.
The database's public schema is dropped and migrated afresh and the Redis database is flushed at
start, so the audit can be exact: point them at nothing you want to keep. Rate limits, quotas and
the pending-upload cap are raised so that the benchmark measures the system, not its throttles.

Prints throughput and p50/p99/max per step, then the audit; exits 1 if any audit figure is not 0.

    python -m bench.load [--users 50] [--duration 60] [--size 32768] [--gunicorn-workers 2] [--gunicorn-threads 1]
                         [--rq-workers 2] [--settle 300]
"""

import argparse
import math
import os
import random
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flask_migrate import upgrade
from redis import Redis
from rq import Worker
from rq.job import Job
from rq.registry import FinishedJobRegistry
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bench.audit import CHECKS, FINAL, WAITING, audit, load_rows
from bench.client import STEPS, Payloads, SimulatedUser
from bench.stack import ROOT, start_gunicorn, start_services, start_worker, stop_all
from webapp import create_app, queue
from webapp.extensions import db
from webapp.models import Upload
from webapp.services import job_listings
from webapp.services.accounts import create_user
from webapp.storage import get_storage

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/satchel_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/7"
#: Limits raised so that nothing is throttled (each is still checked on every request).
UNTHROTTLED = {
    "PRESIGN_LIMIT": "1000000 per minute",
    "LOGIN_LIMIT_PER_IP": "1000000 per minute",
    "LOGIN_LIMIT_PER_ACCOUNT": "1000000 per minute",
    "MAX_PENDING_UPLOADS": "1000000",
    "DEFAULT_QUOTA_BYTES": str(2**50),
}


def reset_database(url):
    """Create the benchmark database if it is missing, then empty it (public schema dropped and recreated)."""
    url = make_url(url)
    if url.get_backend_name() != "postgresql" or not re.fullmatch(r"\w*bench\w*", url.database or ""):
        raise SystemExit(
            "BENCH_DATABASE_URL must name a PostgreSQL database with 'bench' in its name "
            f"(the benchmark empties it), not {url.render_as_string()}"
        )
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}) is None:
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))  # a name checked above
    server.dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def fresh_services(limits):
    """The emptied benchmark database (BENCH_DATABASE_URL) and the services, with limits in the
    environment first (clamd's follow MAX_UPLOAD_BYTES); returns (workdir, the app's settings, processes)."""
    os.environ.update(limits)
    database_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE
    reset_database(database_url)
    workdir = Path(tempfile.mkdtemp(prefix="satchel-bench-"))
    settings, processes = start_services(workdir, database_url, os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS)
    settings.update(limits)
    os.environ.update(settings)
    return workdir, settings, processes


def wait_for_workers(count, timeout=60):
    """Block until count RQ workers listen on the scan queue."""
    deadline = time.monotonic() + timeout
    scans = queue.get_queue(queue.SCANS)
    while Worker.count(connection=scans.connection, queue=scans) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} RQ workers did not start within {timeout} s")
        time.sleep(0.2)


def run_load(users, duration):
    """Every user uploads in a thread of its own for duration seconds; returns the seconds it took."""
    stop = threading.Event()
    start = time.monotonic()
    threads = [threading.Thread(target=user.run, args=(start + duration, stop), daemon=True) for user in users]
    for thread in threads:
        thread.start()
    next_progress = start + 10
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
                if time.monotonic() >= next_progress:
                    done = sum(attempt.completed for user in users for attempt in user.attempts)
                    print(f"  {time.monotonic() - start:4.0f} s: {done} uploads completed", flush=True)
                    next_progress += 10
    finally:
        stop.set()
    return time.monotonic() - start


def wait_for_drain(timeout):
    """Wait until no upload waits for its scan and no scan job is queued, running or scheduled.

    Returns (drained, seconds waited).
    """
    start = time.monotonic()
    while True:
        waiting = db.session.scalar(select(func.count()).select_from(Upload).where(Upload.status.in_(WAITING)))
        db.session.remove()
        scans = (job_listings.overview() or [None])[0]
        busy = scans is None or scans["queued"] or scans["started"] or scans["scheduled"]
        elapsed = time.monotonic() - start
        if not waiting and not busy:
            return True, elapsed
        if elapsed >= timeout:
            return False, elapsed
        time.sleep(0.5)


def percentile(ordered, fraction):
    """Nearest-rank percentile of an ascending list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def _step_line(name, values):
    ordered = sorted(values)
    if not ordered:
        return f"{name:<16}{0:>7}"
    return (
        f"{name:<16}{len(ordered):>7}{percentile(ordered, 0.5):>10.1f}{percentile(ordered, 0.99):>10.1f}"
        f"{ordered[-1]:>10.1f}"
    )


def report(args, elapsed, attempts, rows, drain, findings, capacity):
    """Print throughput, latencies per step and the audit."""
    completed = [attempt for attempt in attempts if attempt.completed]
    finished = [rows[a.upload_id] for a in completed if a.upload_id in rows and rows[a.upload_id].status in FINAL]
    sent = sum(attempt.size for attempt in completed)
    kind = "sync" if args.gunicorn_threads == 1 else f"gthread ({args.gunicorn_threads} threads)"
    print(
        f"\nSatchel load: {args.users} users for {args.duration:g} s; gunicorn {args.gunicorn_workers} {kind} "
        f"workers, {args.rq_workers} RQ workers; PostgreSQL, Redis, moto S3, clamd on loopback"
    )
    print(
        f"payloads: text/plain and PNG, {args.size // 2}-{args.size * 3 // 2} bytes "
        f"(mean {sent / max(1, len(completed)):.0f})"
    )
    print(
        f"completed {len(completed)} uploads in {elapsed:.1f} s: {len(completed) / elapsed:.1f} uploads/s, "
        f"{sent / elapsed / 2**20:.2f} MiB/s; {findings.figures['errors']} failed requests"
    )
    statuses = {status: sum(row.status == status for row in finished) for status in sorted(FINAL)}
    drained, waited = drain
    print(
        "final states: "
        + ", ".join(f"{status} {n}" for status, n in statuses.items())
        + f"; queue {'drained' if drained else 'NOT drained'} {waited:.1f} s after the load"
    )
    if finished:
        span = (max(row.scanned_at for row in finished) - min(row.uploaded_at for row in finished)).total_seconds()
        print(
            f"scanning: {len(finished)} verdicts in {span:.1f} s from the first complete: "
            f"{len(finished) / max(span, 0.001):.1f} scans/s"
        )
    print(f"\n{'step':<16}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for step in STEPS:
        print(_step_line(step, [a.timings[step] for a in attempts if step in a.timings]))
    to_final = sorted((row.scanned_at - row.uploaded_at).total_seconds() * 1000 for row in finished)
    print(_step_line("complete->final", to_final))
    report_goals(args, len(completed) / elapsed, capacity, drain, to_final)
    print("\naudit: " + ", ".join(f"{check} {findings.figures[check]}" for check in CHECKS))
    print(f"scan jobs {findings.scan_jobs}, run more than once {findings.scans_rerun}")
    for check, description in CHECKS.items():
        if findings.figures[check]:
            print(f"  {check}: {description}; e.g. {', '.join(findings.examples[check])}")
    for refusal, n in findings.refusals.most_common():
        print(f"  refused as {refusal}: {n}")
    print("FAIL" if findings.failed else "PASS")


def scan_capacity(rq_workers):
    """Scans a second the RQ workers can do: scan jobs finished over the seconds they kept the workers
    busy (RQ's own start and end times), times the workers. Unlike verdicts over wall time, this is not
    capped by how fast uploads arrive. Returns (scans/s, jobs, mean ms per job)."""
    durations = []
    for name in (queue.SCANS, queue.SCAN_BACKLOG):
        finished = FinishedJobRegistry(queue=queue.get_queue(name))
        jobs = Job.fetch_many(finished.get_job_ids(), connection=finished.connection)
        durations += [(job.ended_at - job.started_at).total_seconds() for job in jobs if job and job.ended_at]
    if not durations:
        return 0.0, 0, 0.0
    busy = sum(durations)
    return len(durations) / busy * rq_workers, len(durations), busy / len(durations) * 1000


def report_goals(args, completes_per_s, capacity, drain, to_final):
    """The load test's figures against the performance goals."""
    scans_per_s, jobs, mean_ms = capacity
    drained, waited = drain
    p50 = percentile(to_final, 0.5) if to_final else float("nan")
    ratio = scans_per_s / completes_per_s if completes_per_s else float("nan")
    print("\ngoals:")
    print(
        f"  scan capacity {scans_per_s:.1f} scans/s ({jobs} jobs, {mean_ms:.0f} ms each, {args.rq_workers} workers) "
        f"vs {completes_per_s:.1f} completes/s = {ratio:.2f}x (goal >= 2x): {_met(ratio >= 2)}"
    )
    print(
        f"  queue {'drained' if drained else 'NOT drained'} {waited:.1f} s after the load "
        f"(goal <= 5 s): {_met(drained and waited <= 5)}"
    )
    print(f"  complete->final p50 {p50:.0f} ms (goal < 2000 ms): {_met(p50 < 2000)}")


def _met(ok):
    return "met" if ok else "MISSED"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="simulated users, one thread each")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load")
    parser.add_argument("--size", type=int, default=32 * 1024, help="typical bytes per file (varied by +-50%%)")
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--gunicorn-threads", type=int, default=1, help="threads per worker (gthread when > 1)")
    parser.add_argument("--rq-workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=300, help="seconds to wait for the scan queue to drain")
    args = parser.parse_args()
    counts = (args.users, args.gunicorn_workers, args.gunicorn_threads, args.rq_workers, args.size)
    if min(counts) < 1 or args.duration <= 0:
        parser.error("users, workers, size and duration must be positive")
    return args


def prepare(args, workdir, processes):
    """An empty database and Redis, the services, gunicorn, the RQ workers and the logged-in users.

    Appends every process it starts to processes as it goes; returns (app, users).
    """
    database_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE
    redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS
    reset_database(database_url)
    Redis.from_url(redis_url).flushdb()
    settings, started = start_services(workdir, database_url, redis_url)
    processes += started
    settings.update(UNTHROTTLED, SECRET_KEY=secrets.token_hex(32))
    os.environ.update(settings)
    app = create_app()
    emails = [f"load-{n}@example.com" for n in range(1, args.users + 1)]
    password = secrets.token_urlsafe(16)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        get_storage().ensure_bucket(["http://127.0.0.1:5000"])
        for email in emails:
            create_user(email, password)
    gunicorn, base_url = start_gunicorn(
        settings, args.gunicorn_workers, args.gunicorn_threads, workdir / "gunicorn.log"
    )
    processes.append(gunicorn)
    processes += [start_worker(settings, workdir / f"worker-{n}.log") for n in range(1, args.rq_workers + 1)]
    payloads = Payloads(args.size, random.Random(0))
    users = [SimulatedUser(base_url, email, password, payloads, seed) for seed, email in enumerate(emails)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(SimulatedUser.log_in, users))
    with app.app_context():
        wait_for_workers(args.rq_workers)
    return app, users


def main():
    """Start everything, load it, audit it, stop everything; returns the exit status."""
    args = parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops what we started, as Ctrl-C does
    workdir = Path(tempfile.mkdtemp(prefix="satchel-load-"))
    processes, outcome = [], "error"
    try:
        app, users = prepare(args, workdir, processes)
        print(f"{args.users} users logged in; uploading for {args.duration:g} s", flush=True)
        elapsed = run_load(users, args.duration)
        attempts = [attempt for user in users for attempt in user.attempts]
        with app.app_context():
            drain = wait_for_drain(args.settle)
            rows = load_rows()
            findings = audit(attempts, rows)
            report(args, elapsed, attempts, rows, drain, findings, scan_capacity(args.rq_workers))
        outcome = "fail" if findings.failed else "pass"
    except KeyboardInterrupt:
        outcome = "interrupted"
        print("\ninterrupted: stopping everything", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        stop_all(processes)
        if outcome in ("pass", "interrupted"):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs of gunicorn and the workers: {workdir}")
    return {"pass": 0, "interrupted": 130}.get(outcome, 1)


if __name__ == "__main__":
    raise SystemExit(main())
