"""Prometheus metrics: what the app and its workers count, and what /metrics reads at each scrape.

Counters and histograms are prometheus_client's. Under gunicorn (several processes) set
PROMETHEUS_MULTIPROC_DIR to an empty directory shared by the web and worker processes: each process
then writes its own file there and a scrape adds them up (`gunicorn.conf.py` marks dead workers).
Queue depths, the oldest job's age, failed jobs and whether clamd answers are read at the scrape
itself, by SatchelCollector.
"""

import hmac
import ipaddress
import os

from flask import current_app, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from webapp.security import client_address

UPLOADS_FINISHED = Counter(
    "satchel_uploads_finished_total", "Uploads that reached a final status, by status and reason.", ["status", "reason"]
)
BYTES_ACCEPTED = Counter("satchel_bytes_accepted_total", "Bytes of uploads that became available.")
SCAN_DURATION = Histogram(
    "satchel_scan_duration_seconds",
    "Time from claiming an upload to its verdict.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
JOB_FAILURES = Counter("satchel_job_failures_total", "Jobs that raised, by kind.", ["job"])
WEBHOOK_DELIVERIES = Counter(
    "satchel_webhook_deliveries_total",
    "Attempts at webhook deliveries, by result (delivered, retrying, failed, refused).",
    ["result"],
)
HTTP_REQUESTS = Counter(
    "satchel_http_requests_total",
    "HTTP requests by route (its rule), method and status.",
    ["route", "method", "status"],
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The methods counted by name; any other is "other", so that clients cannot add series at will.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def upload_finished(status, reason=None, size=0):
    UPLOADS_FINISHED.labels(status=status, reason=reason or "").inc()
    if status == "available" and size:
        BYTES_ACCEPTED.inc(size)


def scan_took(seconds):
    SCAN_DURATION.observe(seconds)


def job_failed(kind):
    JOB_FAILURES.labels(job=kind).inc()


def webhook_delivery(result):
    WEBHOOK_DELIVERIES.labels(result=result).inc()


def register(app):
    """Count every HTTP request by its route's rule (not its URL: ids would make each one a series)."""

    @app.after_request
    def count_request(response):
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"  # a client may send any word
        HTTP_REQUESTS.labels(route=rule, method=method, status=str(response.status_code)).inc()
        return response


# --- At the scrape ----------------------------------------------------------------------------------


class SatchelCollector:
    """Gauges read from Redis and clamd when /metrics is scraped."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        from webapp import queue
        from webapp.services import health

        depth = GaugeMetricFamily("satchel_queue_depth", "Jobs waiting in each queue.", labels=["queue"])
        oldest = GaugeMetricFamily(
            "satchel_queue_oldest_job_age_seconds", "Age of the oldest job waiting in each queue.", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "satchel_queue_failed_jobs", "Jobs in each queue's failed registry.", labels=["queue"]
        )
        redis_up = GaugeMetricFamily("satchel_redis_up", "1 when Redis answered this scrape.")
        clamd_up = GaugeMetricFamily(
            "satchel_clamd_up", "1 when clamd answered the readiness probe (shared with /readyz, cached briefly)."
        )
        with self.app.app_context():
            try:
                for name, stats in queue.queue_stats().items():
                    depth.add_metric([name], stats["depth"])
                    oldest.add_metric([name], stats["oldest_age"])
                    failed.add_metric([name], stats["failed"])
                redis_up.add_metric([], 1)
            except Exception:  # Redis down: say so, and let the rest of the scrape through
                redis_up.add_metric([], 0)
            checks, _ = health.cached_readiness()  # /readyz's probe: a scrape adds no clamd connection
            clamd_up.add_metric([], 1 if checks["scanner"]["ok"] else 0)
        yield from (depth, oldest, failed, redis_up, clamd_up)


def allowed():
    """The scraper may read /metrics: it sent METRICS_TOKEN as a bearer token, or it comes from one of
    METRICS_ALLOW_NETWORKS."""
    config = current_app.config
    token = config["METRICS_TOKEN"]
    sent = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return True
    if "X-Forwarded-For" in request.headers and not config["TRUSTED_PROXY_HOPS"]:
        # A proxy on this host with TRUSTED_PROXY_HOPS left at 0 would make everyone 127.0.0.1.
        return False
    try:
        address = ipaddress.ip_address(client_address() or "")
    except ValueError:
        return False
    return any(address in network for network in config["METRICS_ALLOW_NETWORKS"])


def exposition(app):
    """The metrics in Prometheus's text format: every process's (multiprocess mode) or this one's,
    and the gauges read now."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    now = CollectorRegistry()
    now.register(SatchelCollector(app))
    return generate_latest(counted) + generate_latest(now)
