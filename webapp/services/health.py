"""Readiness: can this process reach everything an upload needs, each within 2 seconds."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp import queue
from webapp import storage as store
from webapp.extensions import db
from webapp.services.dashboard import scanner_status
from webapp.services.scanner_check import last_scanner_check


class Down(Exception):
    """A dependency did not answer as it should."""


def check_database():
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise Down("database unreachable") from exc
    finally:
        db.session.remove()


def check_redis():
    try:
        queue.get_redis().ping()
    except RedisError as exc:
        raise Down("redis unreachable") from exc


def check_storage():
    try:
        store.get_storage().probe()
    except store.StorageError as exc:
        raise Down("storage unreachable or the bucket is missing") from exc


def check_scanner():
    # The dashboard's probe (clamd's VERSION), with a public message instead of its error text.
    status = scanner_status()
    if not status["ok"]:
        raise Down("scanning is disabled" if current_app.config["SCANNER"] != "clamd" else "clamd unreachable")


CHECKS = {"database": check_database, "redis": check_redis, "storage": check_storage, "scanner": check_scanner}


def _timed(app, check):
    started = time.perf_counter()
    with app.app_context():
        try:
            check()
            result = {"ok": True}
        except Down as exc:
            # What is down, never how it is addressed: this answer is public.
            result = {"ok": False, "error": str(exc)}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def readiness():
    """{name: {"ok", "ms", "error"?}} for every dependency, checked in parallel."""
    app = current_app._get_current_object()
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        futures = {name: pool.submit(_timed, app, check) for name, check in CHECKS.items()}
        return {name: future.result() for name, future in futures.items()}


def scanner_limits():
    """What the last `flask scanner check` proved: a detail for operators, never a reason to be unready."""
    try:
        last = last_scanner_check()
    except SQLAlchemyError:
        return {"ok": False, "error": "unknown: the database is unreachable"}
    finally:
        db.session.remove()
    if last is None:
        return {"ok": False, "error": "never checked: run flask scanner check"}
    found = {
        "ok": last["ok"] and last["covers_setting"],
        "checked_at": last["checked_at"],
        "max_bytes": last["max_bytes"],
    }
    if not last["ok"]:
        found["error"] = "the last check failed"
    elif not last["covers_setting"]:
        found["error"] = "SCANNER_MAX_BYTES is larger than the last check proved"
    return found


def clock():
    """Monotonic seconds (one function, so a test can move the clock)."""
    return time.monotonic()


def cached_readiness():
    """(readiness(), scanner_limits()), probed at most once per READYZ_CACHE_SECONDS in this process.

    Requests that arrive while a probe runs wait for its answer rather than start probes of their own, so a
    flood of /readyz costs clamd (and the rest) one connection per window, not one per request.
    """
    app = current_app._get_current_object()
    cache = app.extensions.setdefault("readiness", {"lock": threading.Lock(), "at": None, "answer": None})
    with cache["lock"]:
        if cache["at"] is None or clock() - cache["at"] >= app.config["READYZ_CACHE_SECONDS"]:
            cache["answer"] = readiness(), scanner_limits()
            cache["at"] = clock()
        return cache["answer"]
