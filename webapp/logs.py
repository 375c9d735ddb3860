"""Structured logs: one JSON object per line, carrying the ids that tie a request, its job and its upload.

Code binds ids as it learns them (`bind(upload_id=...)`); every line logged afterwards in the same
request or job carries them. A request's id comes from a well-formed `X-Request-ID` header or is
made up, is sent back in the response, and travels with the scan job it enqueues.
"""

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import g, request

_context = contextvars.ContextVar("satchel_log_context", default=None)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
#: Probes called every few seconds are logged only at debug level.
_QUIET_ENDPOINTS = {"health.healthz", "health.readyz", "static"}


def current():
    """The ids bound so far in this request or job."""
    return dict(_context.get() or {})


def bind(**values):
    """Attach ids (None values are skipped) to every line logged from here on in this scope."""
    _context.set({**current(), **{k: v for k, v in values.items() if v is not None}})


@contextmanager
def scope(**values):
    """A fresh set of ids for a job (or any unit of work), dropped afterwards."""
    token = _context.set({k: v for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "msg", <bound ids>, <fields>, "exc"?} on one line."""

    def format(self, record):
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **current(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The usual one-line text, with the bound ids and fields appended as key=value."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record):
        extra = {**current(), **getattr(record, "fields", {})}
        line = super().format(record)
        return line + "".join(f" {k}={v}" for k, v in extra.items()) if extra else line


def configure(app):
    """Request ids and one line per request; the root logger to stderr in LOG_FORMAT (json or text)."""
    app.before_request(_start_request)
    app.after_request(_log_request)
    app.teardown_request(_end_request)
    log_format = app.config["LOG_FORMAT"]
    if log_format == "none":  # leave logging as it is (the tests' capture, an embedding app)
        return
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "satchel", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.satchel = True
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"])


def _start_request():
    supplied = request.headers.get("X-Request-ID", "")
    g.request_id = supplied if _REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
    g.request_started = time.perf_counter()
    g.log_token = _context.set({"request_id": g.request_id})
    upload_id = (request.view_args or {}).get("upload_id")
    if isinstance(upload_id, str) and len(upload_id) <= 64:
        bind(upload_id=upload_id)


def _log_request(response):
    if "request_id" not in g:
        return response
    response.headers["X-Request-ID"] = g.request_id
    # The user only if the request loaded one, read from its identity: no query just for the log
    # (the database may be what just failed).
    state = getattr(g.get("_login_user"), "_sa_instance_state", None)
    fields = {
        "event": "request",
        "method": request.method,
        # The route, not the path: share tokens live in paths and must stay out of logs.
        "route": request.url_rule.rule if request.url_rule else None,
        "status": response.status_code,
        "ms": round((time.perf_counter() - g.request_started) * 1000, 1),
        "user_id": state.identity[0] if state is not None and state.identity else None,
    }
    level = logging.DEBUG if request.endpoint in _QUIET_ENDPOINTS else logging.INFO
    logging.getLogger("satchel.request").log(
        level, "%s %s %s", request.method, fields["route"], response.status_code, extra={"fields": fields}
    )
    return response


def _end_request(exc):
    token = g.pop("log_token", None)
    if token is not None:
        try:
            _context.reset(token)
        except ValueError:  # torn down in another context (a streamed response): nothing to undo
            pass
