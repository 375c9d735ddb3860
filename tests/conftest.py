"""Fixtures: real S3 (moto's server), real clamd, real Redis and a real database for every test."""

import os
import re
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from flask_login import FlaskLoginClient
from jinja2 import BytecodeCache
from rq import SimpleWorker
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from devtools import localservices
from tests.sigv4_gateway import Gateway
from webapp import create_app
from webapp.auth.sessions import stamp
from webapp.extensions import db, limiter
from webapp.models import AuditEvent
from webapp.queue import QUEUE_NAMES, get_queue, get_redis
from webapp.scanning.clamd import EICAR
from webapp.services.accounts import create_user
from webapp.storage import get_storage

# Processes the tests start name their environment too; with none, the app would run as production.
os.environ.setdefault("SATCHEL_ENV", "testing")

RESOURCES = Path(__file__).parent / "resources"
PASSWORD = "correct horse battery staple"


def pytest_runtest_setup(item):
    """A PostgreSQL-only test on SQLite: skipped in a developer's loop, a failure in CI (CI=true)."""
    if item.get_closest_marker("postgresql") and not os.environ.get("DATABASE_URL", "").startswith("postgresql"):
        message = f"{item.nodeid} needs PostgreSQL (DATABASE_URL=postgresql+psycopg://...)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def worker_number():
    """0 for a plain run; N for pytest-xdist's worker gwN (`make test-fast` runs one per core)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def own_database(url):
    """The database this process's tests may drop tables in: under xdist, worker N's is <name>_gwN
    (created on the same server if missing); a plain run uses the one given."""
    number = worker_number()
    if not number:
        return url
    given = make_url(url)
    if given.get_backend_name() == "sqlite":
        return str(given.set(database=f"{given.database}.gw{number}"))
    name = f"{given.database}_gw{number}"
    engine = create_engine(given, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if not connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}):
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return given.set(database=name).render_as_string(hide_password=False)


def own_redis(url):
    """Under xdist, worker N uses Redis database <given> + N: the limiter's reset clears a whole database."""
    number = worker_number()
    if not url or not number:
        return url
    parts = urlsplit(url)
    database = (int(parts.path.strip("/") or 0) + number) % 16
    return urlunsplit(parts._replace(path=f"/{database}"))


def sqlite_directory(workdir):
    """Where the SQLite file goes: in memory-backed /dev/shm when there is one (no fsync per commit)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="satchel-tests-", dir=shm))
    return workdir


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    """Start clamd and moto's S3 server (and Redis unless REDIS_URL is set) for the session."""
    workdir = tmp_path_factory.mktemp("services")
    urls, started = localservices.start_scanning_stack(workdir, own_redis(os.environ.get("REDIS_URL")))
    given = os.environ.get("DATABASE_URL")
    sqlite_dir = None if given else sqlite_directory(workdir)
    try:
        database_url = own_database(given) if given else f"sqlite:///{sqlite_dir / 'test.db'}"
        yield {**urls, "database": database_url, "workdir": workdir}
    finally:
        for process in reversed(started):
            localservices.stop(process)
        if sqlite_dir and sqlite_dir != workdir:
            shutil.rmtree(sqlite_dir, ignore_errors=True)


def make_config(services, **overrides):
    """Settings for one test app: its own bucket and queues on the shared services."""
    tag = uuid.uuid4().hex[:10]
    config = {
        "ENV_NAME": "testing",
        "SQLALCHEMY_DATABASE_URI": services["database"],
        "REDIS_URL": services["redis"],
        "RATELIMIT_STORAGE_URI": services["redis"],
        "S3_ENDPOINT_URL": services["s3"],
        "S3_BUCKET": f"satchel-test-{tag}",
        "S3_ACCESS_KEY_ID": "testing",
        "S3_SECRET_ACCESS_KEY": "testing",
        "CLAMD_URL": services["clamd"],
        "SCANNER": "clamd",
        "QUEUE_PREFIX": f"test-{tag}",
        "SERVER_NAME": None,
    }
    config.update(overrides)
    return config


class Client(FlaskLoginClient):
    """A test client whose requests each run in their own app context, as in production.

    test_client(user=...) signs the user in as a login does, session lifetimes included.
    """

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        if user is not None:
            with self.session_transaction() as session:
                stamp(session)

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app_config():
    """Per-test overrides of the app's settings (override this fixture in a module)."""
    return {}


class SharedBytecode(BytecodeCache):
    """Compiled templates kept for the process: each test builds an app, and Jinja would compile every
    template again for each one."""

    def __init__(self):
        self.compiled = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket):
        self.compiled[bucket.key] = bucket.bytecode_to_string()


_TEMPLATES = SharedBytecode()


def build_app(settings):
    """An app from the factory with settings (make_config's), whose test client runs each request in
    its own app context."""
    app = create_app(settings)
    app.test_client_class = Client
    app.jinja_env.bytecode_cache = _TEMPLATES
    return app


#: Databases whose tables this process made: the next test empties them instead of making them again.
_schemas_made = set()


def empty_schema():
    """Empty tables: create_all once per database and process, then delete every row before each test.

    The audit log refuses DELETE, so its table is made again (with its triggers). A database that
    a test changed under us (dropped a table, say) is made again from scratch.
    """
    url = db.engine.url.render_as_string(hide_password=False)
    if url in _schemas_made:
        try:
            with db.engine.begin() as connection:
                for table in reversed(db.metadata.sorted_tables):
                    if table is not AuditEvent.__table__:
                        connection.execute(table.delete())
                AuditEvent.__table__.drop(connection)
                AuditEvent.__table__.create(connection)
            return
        except SQLAlchemyError:
            _schemas_made.discard(url)
    db.drop_all()
    db.create_all()
    _schemas_made.add(url)


@contextmanager
def fresh_world(app):
    """Inside app's context: empty tables, and a fresh bucket and queues (dropped afterwards)."""
    with app.app_context():
        empty_schema()
        get_storage().ensure_bucket(["http://127.0.0.1:5000"])
        if app.config["RATELIMIT_ENABLED"]:
            limiter.reset()  # the limiter's storage outlives one app: start with no counts
        yield app
        db.session.remove()
        connection = get_redis()
        for name in QUEUE_NAMES:
            get_queue(name).empty()
        keys = list(connection.scan_iter(f"*{app.config['QUEUE_PREFIX']}*"))
        if keys:
            connection.delete(*keys)
        connection.close()  # the app's pool; otherwise its sockets close whenever the collector gets to them
        db.engine.dispose()


@pytest.fixture(scope="module")
def gateway(services):
    """tests/sigv4_gateway.py in front of moto's S3 server: checks signatures, expiry and POST policies as S3 does."""
    with Gateway(services["s3"], {"testing": "testing"}) as gateway:
        yield gateway


@pytest.fixture
def app(services, app_config):
    """An app with a fresh schema, bucket and queues; everything is dropped afterwards."""
    with fresh_world(build_app(make_config(services, **app_config))) as app:
        yield app


@pytest.fixture
def make_user(app):
    """Create accounts: make_user("a@example.com", admin=False)."""

    def make(email=None, admin=False, password=PASSWORD):
        return create_user(email or f"user-{uuid.uuid4().hex[:8]}@example.com", password, is_admin=admin)

    return make


@pytest.fixture
def user(make_user):
    return make_user("owner@example.com")


@pytest.fixture
def other_user(make_user):
    return make_user("other@example.com")


def form_token(html):
    """The CSRF token of the first form on a page."""
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def page_token(html):
    """The page's CSRF token for API calls (its <meta name="csrf-token">)."""
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


class Api:
    """A logged-in test client that speaks the JSON API with the page's CSRF token."""

    def __init__(self, client):
        self.client = client
        page = client.get("/files")
        assert page.status_code == 200, page.status_code
        self.csrf = page_token(page.text)

    def _headers(self, headers):
        return {"X-CSRFToken": self.csrf, **(headers or {})}

    def post(self, url, json=None, headers=None, **kwargs):
        return self.client.post(url, json=json, headers=self._headers(headers), **kwargs)

    def delete(self, url, headers=None):
        return self.client.delete(url, headers=self._headers(headers))

    def get(self, url, **kwargs):
        return self.client.get(url, **kwargs)

    def form_post(self, url, data=None, **kwargs):
        return self.client.post(url, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)

    def begin(self, filename="notes.txt", size=11, content_type="text/plain"):
        """POST /api/uploads and return the JSON (asserting 201)."""
        response = self.post("/api/uploads", json={"filename": filename, "size": size, "content_type": content_type})
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    def upload(self, data, filename="notes.txt", content_type="text/plain", size=None):
        """Presign, PUT the bytes to storage, complete; returns the upload id."""
        grant = self.begin(filename, len(data) if size is None else size, content_type)
        put = requests.put(grant["url"], data=data, headers=grant["headers"], timeout=30)
        assert put.status_code == 200, put.text
        done = self.post(f"/api/uploads/{grant['upload']['id']}/complete")
        assert done.status_code == 202, done.get_data(as_text=True)
        return grant["upload"]["id"]

    def status(self, upload_id):
        response = self.get(f"/api/uploads/{upload_id}")
        assert response.status_code == 200
        return response.get_json()["upload"]


@pytest.fixture
def api(app, user):
    """The owner's logged-in API client."""
    return Api(app.test_client(user=user))


@pytest.fixture
def other_api(app, other_user):
    return Api(app.test_client(user=other_user))


@pytest.fixture
def run_worker(app):
    """Run the real RQ job code path: a burst SimpleWorker on the app's queues, in-process."""

    def run():
        with app.app_context():  # the job's own app context, as in a worker process
            queues = [get_queue(name) for name in QUEUE_NAMES]
            worker = SimpleWorker(queues, connection=get_redis())
            worker.work(burst=True)
        db.session.expire_all()
        return worker

    return run


def bucket_keys(app, prefix=""):
    """Every object key in the test app's bucket under prefix."""
    with app.app_context():
        return sorted(get_storage().list_keys(prefix))


# --- Files in a known state, and share links ---


@pytest.fixture
def quarantined(api, run_worker):
    upload_id = api.upload(EICAR, filename="eicar.txt")
    run_worker()
    assert api.status(upload_id)["status"] == "quarantined"
    return upload_id


@pytest.fixture
def available(api, run_worker):
    upload_id = api.upload(b"a perfectly normal text file", filename="normal.txt")
    run_worker()
    assert api.status(upload_id)["status"] == "available"
    return upload_id


def share_token(api, upload_id, days="7"):
    response = api.form_post(f"/files/{upload_id}/shares", {"days": days})
    assert response.status_code == 302
    html = api.get(f"/files/{upload_id}").get_data(as_text=True)
    return re.findall(r"/s/([A-Za-z0-9_-]{40,})", html)[0]


def report(app, token, reason="This is spam"):
    client = app.test_client()
    page = client.get(f"/s/{token}")
    csrf = form_token(page.get_data(as_text=True))
    return client.post(f"/s/{token}/report", data={"reason": reason, "csrf_token": csrf})
