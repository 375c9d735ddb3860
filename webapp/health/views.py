"""Liveness answers without touching anything; readiness checks every dependency."""

from flask import Blueprint, abort, current_app, jsonify

from webapp import metrics
from webapp.extensions import limiter
from webapp.services.health import cached_readiness

bp = Blueprint("health", __name__)


@bp.route("/healthz")
@limiter.exempt
def healthz():
    """The process is up and serving requests."""
    return _no_store(jsonify(status="ok"))


@bp.route("/readyz")
@limiter.exempt
def readyz():
    """200 when the database, Redis, storage and clamd all answer; 503 naming what is down (cached briefly).

    "scanner_limits" says whether clamd was last proved to read SCANNER_MAX_BYTES whole; it is a
    detail for operators, not part of readiness (a larger file is refused, never passed unscanned).
    """
    checks, limits = cached_readiness()
    ready = all(check["ok"] for check in checks.values())
    response = jsonify(status="ok" if ready else "unavailable", checks=checks, scanner_limits=limits)
    response.status_code = 200 if ready else 503
    return _no_store(response)


@bp.route("/metrics")
@limiter.exempt
def metrics_page():
    """Prometheus metrics, for scrapers with METRICS_TOKEN or from METRICS_ALLOW_NETWORKS (404 for anyone else)."""
    if not metrics.allowed():
        abort(404)
    return _no_store(
        current_app.response_class(
            metrics.exposition(current_app._get_current_object()), content_type=metrics.CONTENT_TYPE
        )
    )


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response
