"""Benchmark: the listing's first and deep pages, and a presign, with 100 and with 100,000 files held.

In process, on PostgreSQL (BENCH_DATABASE_URL, default database `satchel_bench`, emptied first) and
Redis, with moto and clamd: one user holds 100 files, then 100,000 (rows written straight to the
table, as the scan pipeline would leave them). At each size it times `POST /api/uploads` (presign,
rate limiter and quota checked), the first and a deep page of `/files`, and the first and a deep page
of a search matching a tenth of the files sorted by name, and prints p50/p95 per
step and the ratio between the two sizes (goals: `/files` p95 under 25 ms for first and deep pages,
no step growing past 1.2x with files held).

    python -m bench.listing [--requests 300] [--sizes 100,100000]
"""

import argparse
import os
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from flask_login import FlaskLoginClient
from flask_migrate import upgrade
from sqlalchemy import func, insert, select, text

from bench.load import DEFAULT_DATABASE, DEFAULT_REDIS, UNTHROTTLED, reset_database
from bench.stack import ROOT, start_services, stop_all
from webapp import create_app
from webapp.auth.sessions import stamp
from webapp.extensions import db
from webapp.models import Upload, User
from webapp.models.base import utcnow
from webapp.services import listing
from webapp.services.accounts import create_user
from webapp.services.usage import check_counters
from webapp.storage import get_storage, incoming_key


def add_files(user_id, count, start_index):
    """count available files for user_id, one second apart, in batches.

    The usage triggers are off while they are written (each would update the user's row once per
    file), then the usage check counts them; ANALYZE gives the planner the table's new shape, as
    autovacuum would shortly after.
    """
    db.session.execute(text("ALTER TABLE uploads DISABLE TRIGGER USER"))
    now = utcnow()
    batch = []
    for i in range(start_index, start_index + count):
        upload_id = f"held{i:010d}{uuid.uuid4().hex[:8]}"
        batch.append(
            {
                "id": upload_id,
                "user_id": user_id,
                "filename": f"file-{i:06d}.txt",
                "size": 1000,
                "declared_type": "text/plain",
                "detected_type": "text/plain",
                "status": "available",
                "incoming_key": incoming_key(user_id, upload_id),
                "file_key": f"files/{user_id}/{upload_id}.txt",
                "created_at": now - timedelta(seconds=start_index + count - i),
                "updated_at": now,
                "expires_at": now,
            }
        )
        if len(batch) == 5000:
            db.session.execute(insert(Upload), batch)
            batch = []
    if batch:
        db.session.execute(insert(Upload), batch)
    db.session.execute(text("ALTER TABLE uploads ENABLE TRIGGER USER"))
    db.session.commit()
    corrected = check_counters()
    assert list(corrected) == [user_id], corrected
    db.session.execute(text("ANALYZE uploads"))
    db.session.commit()


def percentiles(samples):
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def timed(client, method, url, count, **kwargs):
    """Milliseconds of count requests; each must answer 2xx."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        response = client.open(url, method=method, **kwargs)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code < 300, response.get_data(as_text=True)[:300]
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--sizes", default="100,100000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    database_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE
    reset_database(database_url)
    workdir = Path(tempfile.mkdtemp(prefix="satchel-bench-"))
    env, processes = start_services(workdir, database_url, os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS)
    try:
        os.environ.update(env, **UNTHROTTLED)
        app = create_app()
        app.test_client_class = FlaskLoginClient
        results = {}
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            get_storage().ensure_bucket(["http://127.0.0.1:5000"])
            user = create_user(f"bench-{uuid.uuid4().hex[:6]}@example.com", "benchmark password")
            user_id = user.id
        held = 0
        for size in sizes:
            with app.app_context():
                add_files(user_id, size - held, held)
                held = size
            with app.app_context():
                client = app.test_client(user=db.session.get(User, user_id))
            with client.session_transaction() as session:
                stamp(session)  # signed in just now, as a login does
            page = client.get("/files").get_data(as_text=True)
            csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
            deep = client.get(f"/files?after={_cursor_at(app, user_id, size // 2)}")
            assert deep.status_code == 200
            body = {"filename": "bench.txt", "size": 1000, "content_type": "text/plain"}
            headers = {"X-CSRFToken": csrf}
            timed(client, "POST", "/api/uploads", 30, json=body, headers=headers)  # warm up
            results[size] = {
                "presign": timed(
                    client, "POST", "/api/uploads", args.requests, json=body, headers={"X-CSRFToken": csrf}
                ),
                "/files first page": timed(client, "GET", "/files", args.requests),
                "/files deep page": timed(
                    client, "GET", f"/files?after={_cursor_at(app, user_id, size // 2)}", args.requests
                ),
                # a search matching a tenth of the files, sorted by name (descending)
                "search+sort first": timed(client, "GET", f"/files?{SEARCH}", args.requests),
                "search+sort deep": timed(
                    client,
                    "GET",
                    f"/files?{SEARCH}&after={_search_cursor_at(app, user_id, size // 20)}",
                    args.requests,
                ),
            }
            print(f"{size:>7} files held: done", flush=True)
        report(results, sizes)
    finally:
        stop_all(processes)


SEARCH = "q=7.txt&sort=name&order=desc"


def _search_cursor_at(app, user_id, position):
    """The cursor after the file at position in the listing SEARCH asks for."""
    with app.app_context():
        upload = db.session.scalars(
            select(Upload)
            .where(Upload.user_id == user_id, func.lower(Upload.filename).contains("7.txt"))
            .order_by(func.lower(Upload.filename).desc(), Upload.id.desc())
            .offset(position)
            .limit(1)
        ).one()
        return listing.encode_cursor(upload, "name")


def _cursor_at(app, user_id, position):
    """The listing's cursor after the file at position (newest first)."""
    with app.app_context():
        upload = db.session.scalars(
            select(Upload)
            .where(Upload.user_id == user_id)
            .order_by(Upload.created_at.desc(), Upload.id.desc())
            .offset(position)
            .limit(1)
        ).one()
        return listing.encode_cursor(upload)


def report(results, sizes):
    print(f"\n{'step':<20}" + "".join(f"{f'{size} files p50/p95 ms':>26}" for size in sizes) + f"{'ratio p50':>12}")
    for step in results[sizes[0]]:
        cells = ""
        for size in sizes:
            p50, p95 = percentiles(results[size][step])
            cells += f"{p50:>17.2f} / {p95:>6.2f}"
        ratio = percentiles(results[sizes[-1]][step])[0] / percentiles(results[sizes[0]][step])[0]
        print(f"{step:<20}{cells}{ratio:>11.2f}x")
    print("goals: /files p95 < 25 ms (first and deep pages, with a search and a sort too); ratio within 1.2x")


if __name__ == "__main__":
    main()
