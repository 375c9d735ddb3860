"""One place that turns refusals into HTTP responses: JSON under /api, a page elsewhere."""

import logging
import math
import time

from flask import g, jsonify, render_template, request
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from webapp.extensions import db, limiter, login_manager
from webapp.services.refusals import ServiceError

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def wants_json():
    """API clients get JSON errors; browsers get pages."""
    return request.path == "/api" or request.path.startswith("/api/")


def error_response(status, code, message):
    """A JSON error body under /api, a readable page elsewhere."""
    if wants_json():
        response = jsonify({"error": {"code": code, "message": message}})
        response.status_code = status
        return response
    return render_template("error.html", status=status, code=code, message=message), status


def _seconds_until_reset():
    """Whole seconds until the limit this request broke lets another through (at least 1)."""
    try:
        return max(1, math.ceil(limiter.current_limit.reset_at - time.time()))
    except Exception:  # the limiter's storage went away since: a short, safe guess
        return 60


def register_errorhandlers(app):
    """Install the handlers on app."""

    @app.errorhandler(ServiceError)
    def service_error(exc):
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return error_response(400, "csrf_failed", "The form expired or did not come from this site; reload and retry.")

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc):
        # The limiter writes no headers on every answer (that would cost two more Redis round trips
        # per request): the refusal alone says when to retry.
        response = app.make_response(error_response(429, "rate_limited", exc.description or exc.name))
        response.headers["Retry-After"] = str(_seconds_until_reset())
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc):
        status = exc.code or 500
        message = exc.description or exc.name
        return error_response(status, _CODES.get(status, "http_error"), message)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(RedisError)
    def dependency_down(exc):
        # The database (restarting, failing over) or Redis is away: a clear 503, nothing half-written.
        log.warning("dependency unavailable on %s %s: %s", request.method, request.path, type(exc).__name__)
        db.session.rollback()
        # The page must not query the database again (the rollback expired the loaded user).
        g._login_user = login_manager.anonymous_user()
        response = error_response(503, "unavailable", "The service is briefly unavailable; try again in a moment.")
        response = app.make_response(response)
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side.")
