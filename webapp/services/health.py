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


CHECKS = {"database": check_database, "redis": check_redis, "storage": check_storage,
          "scanner": check_scanner}


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


def clock():
    """Monotonic seconds (one function, so a test can move the clock)."""
    return time.monotonic()


def cached_readiness():
    """readiness(), probed at most once per READYZ_CACHE_SECONDS in this process, whatever the request rate.

    Requests that arrive while a probe runs wait for its answer rather than start probes of their own, so a
    flood of /readyz costs clamd (and the rest) one connection per window, not one per request.
    """
    app = current_app._get_current_object()
    cache = app.extensions.setdefault("readiness", {"lock": threading.Lock(), "at": None, "checks": None})
    with cache["lock"]:
        if cache["at"] is None or clock() - cache["at"] >= app.config["READYZ_CACHE_SECONDS"]:
            cache["checks"] = readiness()
            cache["at"] = clock()
        return cache["checks"]
