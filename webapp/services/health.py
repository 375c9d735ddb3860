"""Readiness: can this process reach everything an upload needs, each within a short timeout."""
import time
from concurrent.futures import ThreadPoolExecutor

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp import queue
from webapp import storage as store
from webapp.extensions import db
from webapp.scanning import ClamdClient, ScannerUnavailable

#: Seconds each dependency gets to answer.
TIMEOUT = 2.0


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
        store.get_storage().probe(timeout=TIMEOUT)
    except store.StorageError as exc:
        raise Down("storage unreachable or the bucket is missing") from exc


def check_scanner():
    config = current_app.config
    if config["SCANNER"] != "clamd":
        raise Down("scanning is disabled")
    try:
        if not ClamdClient(config["CLAMD_URL"], timeout=TIMEOUT).ping():
            raise Down("clamd did not answer PONG")
    except ScannerUnavailable as exc:
        raise Down("clamd unreachable") from exc


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
