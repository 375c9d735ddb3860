"""/healthz answers while the process lives; /readyz checks each dependency and says which is down."""

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import requests

from devtools.localservices import free_port
from tests.conftest import build_app, make_config
from tests.processes import TcpProxy, serving
from webapp.extensions import db
from webapp.services import health
from webapp.storage import get_storage


@contextmanager
def app_with(services, **overrides):
    """An app on the test services with some settings pointing elsewhere; its bucket exists."""
    config = make_config(services)
    app = build_app({**config, **overrides})
    with build_app(config).app_context():
        get_storage().ensure_bucket(["http://127.0.0.1:5000"])
        db.engine.dispose()
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()


def test_healthz_touches_nothing(services):
    with app_with(
        services,
        SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://x@127.0.0.1:{free_port()}/x",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    ) as app:
        response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_with_everything_up(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "storage", "scanner"}
    assert all(check["ok"] and check["ms"] >= 0 for check in body["checks"].values())
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "down, setting, value, error",
    [
        ("database", "SQLALCHEMY_DATABASE_URI", "postgresql+psycopg://x@127.0.0.1:{port}/x", "database unreachable"),
        ("redis", "REDIS_URL", "redis://127.0.0.1:{port}/0", "redis unreachable"),
        ("storage", "S3_ENDPOINT_URL", "http://127.0.0.1:{port}", "storage unreachable or the bucket is missing"),
        ("storage", "S3_BUCKET", "satchel-no-such-bucket-{port}", "storage unreachable or the bucket is missing"),
        ("scanner", "CLAMD_URL", "tcp://127.0.0.1:{port}", "clamd unreachable"),
        ("scanner", "SCANNER", "none-{port}", "scanning is disabled"),
    ],
    ids=["database", "redis", "s3", "bucket", "clamd", "no-scanner"],
)
def test_readyz_names_the_dependency_that_is_down(services, down, setting, value, error):
    with app_with(services, **{setting: value.format(port=free_port())}) as app:
        response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    failing = {name: check["error"] for name, check in body["checks"].items() if not check["ok"]}
    assert failing == {down: error}
    assert body["checks"][down]["ms"] < 5000
    # The public answer names what is down, not where it lives.
    assert "127.0.0.1" not in response.get_data(as_text=True)


@contextmanager
def clamd_behind_proxy(services, **overrides):
    """An app whose clamd connections pass through a TcpProxy that counts them; yields (app, proxy)."""
    proxy = TcpProxy(urlsplit(services["clamd"]).port)
    try:
        with app_with(services, CLAMD_URL=f"tcp://127.0.0.1:{proxy.port}", **overrides) as app:
            yield app, proxy
    finally:
        proxy.close()


def flood(base, requests_count, threads=10):
    """GET /readyz requests_count times from parallel threads; returns the status codes."""

    def one(_):
        return requests.get(f"{base}/readyz", timeout=30).status_code

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(requests_count)))


@pytest.mark.parametrize("cache_seconds, connections", [(60, 1), (0, 40)], ids=["cached", "uncached"])
def test_a_flood_of_readyz_costs_clamd_one_connection(services, cache_seconds, connections):
    # Uncached (as before the cache) every request opened its own clamd connection: a flood of the public
    # probe could take all of clamd's MaxConnectionQueueLength/MaxThreads from the workers' scans.
    with clamd_behind_proxy(services, READYZ_CACHE_SECONDS=cache_seconds) as (app, proxy), serving(app) as base:
        assert flood(base, 40) == [200] * 40
    assert proxy.accepted == connections


def test_readyz_probes_again_once_the_cache_is_stale(services, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(health, "clock", lambda: now[0])
    with clamd_behind_proxy(services, READYZ_CACHE_SECONDS=2) as (app, proxy):
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        now[0] += 1.9
        assert client.get("/readyz").status_code == 200
        assert proxy.accepted == 1
        now[0] += 0.1
        proxy.cut()  # clamd goes away: the next probe, and only that, sees it
        response = client.get("/readyz")
        scanner = response.get_json()["checks"]["scanner"]
        assert (response.status_code, scanner["ok"], scanner["error"]) == (503, False, "clamd unreachable")
        assert proxy.accepted == 1


def test_readyz_says_what_the_last_scanner_check_proved(app):
    from webapp.models import ScannerCheck

    app.config["READYZ_CACHE_SECONDS"] = 0
    client = app.test_client()
    body = client.get("/readyz").get_json()
    assert body["scanner_limits"] == {"ok": False, "error": "never checked: run flask scanner check"}
    assert body["status"] == "ok"  # a detail, not a reason to take the process out of service

    size = app.config["SCANNER_MAX_BYTES"]
    db.session.add(ScannerCheck(ok=True, max_bytes=size, reply="stream: Eicar-Test-Signature.UNOFFICIAL FOUND"))
    db.session.commit()
    limits = client.get("/readyz").get_json()["scanner_limits"]
    assert limits["ok"] is True and limits["max_bytes"] == size and "error" not in limits

    app.config["SCANNER_MAX_BYTES"] = size + 1  # raised past what was proved
    limits = client.get("/readyz").get_json()["scanner_limits"]
    assert (limits["ok"], limits["error"]) == (False, "SCANNER_MAX_BYTES is larger than the last check proved")

    db.session.add(ScannerCheck(ok=False, max_bytes=size + 1, reply="stream: OK"))
    db.session.commit()
    limits = client.get("/readyz").get_json()["scanner_limits"]
    assert (limits["ok"], limits["error"]) == (False, "the last check failed")
    assert "stream" not in str(limits)  # clamd's words stay on the admin dashboard
