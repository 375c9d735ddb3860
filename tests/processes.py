"""Real processes for the tests: `flask worker` subprocesses, and a TCP proxy that can cut a link.

The proxy stands in for a network partition or a server restart where stopping the real server is
not possible or would lose its state (moto keeps objects in memory; the suite shares one
PostgreSQL): `cut()` stops listening and drops every open connection, as a restarting server does;
`restore()` listens again on the same port.
"""

import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from rq import Worker
from werkzeug.serving import make_server

from devtools.localservices import descendants, free_port, kill_tree, stop, stop_tree
from tests.conftest import PASSWORD, form_token, page_token
from webapp.queue import QUEUE_NAMES, get_queue, get_redis

ROOT = Path(__file__).resolve().parent.parent


def worker_environment(app, **extra):
    """Environment variables under which create_app() rebuilds the test app's settings."""
    config = app.config
    env = {name: value for name, value in os.environ.items() if not name.startswith("FLASK_")}
    env.update(
        {
            "SATCHEL_ENV": "testing",
            "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": config["REDIS_URL"],
            "RATELIMIT_STORAGE_URI": config["RATELIMIT_STORAGE_URI"],
            "S3_ENDPOINT_URL": config["S3_ENDPOINT_URL"],
            "S3_BUCKET": config["S3_BUCKET"],
            "S3_ACCESS_KEY_ID": config["S3_ACCESS_KEY_ID"],
            "S3_SECRET_ACCESS_KEY": config["S3_SECRET_ACCESS_KEY"],
            "CLAMD_URL": config["CLAMD_URL"],
            "SCANNER": config["SCANNER"],
            "QUEUE_PREFIX": config["QUEUE_PREFIX"],
        }
    )
    env.update({name: str(value) for name, value in extra.items()})
    return env


def wait_for_worker(process, log_path, timeout=20.0, other_than=None):
    """Block until a worker process of this `flask worker` (other than the pid other_than) listens
    on the app's scan queue; returns its pid. Fails if the command dies first."""
    queue = get_queue(QUEUE_NAMES[0])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the worker exited with {process.returncode}:\n{log_path.read_text()}")
        ours = set(descendants(process.pid)) - {other_than}
        for worker in Worker.all(connection=get_redis(), queue=queue):
            if worker.pid in ours:
                return worker.pid
        time.sleep(0.1)
    pytest.fail(f"the worker did not register within {timeout:.0f}s:\n{log_path.read_text()}")


def kill_group(process):
    """SIGKILL a `flask worker`, its worker process and its scheduler, with no chance to clean up, as a crash does."""
    kill_tree(process)
    process.wait(10)


@contextmanager
def running_worker(app, log_path, scheduler=False, **env):
    """A real `flask worker` process on the test app's database, queues, bucket and clamd."""
    args = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
    if not scheduler:
        args.append("--no-scheduler")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=worker_environment(app, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_worker(process, log_path)
        yield process
    finally:
        stop_tree(process)  # SIGTERM (a warm shutdown that lets the running job finish), then whatever is left


@contextmanager
def serving(app, port=None):
    """The app served over real HTTP on 127.0.0.1 by a threaded server; yields its origin."""
    server = make_server("127.0.0.1", port or free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def http_login(origin, email):
    """A requests session logged in through the real form, sending the page's CSRF token to the API."""
    session = requests.Session()
    token = form_token(session.get(f"{origin}/auth/login", timeout=10).text)
    response = session.post(
        f"{origin}/auth/login", data={"email": email, "password": PASSWORD, "csrf_token": token}, timeout=10
    )
    assert response.ok, response.status_code
    session.headers["X-CSRFToken"] = page_token(session.get(f"{origin}/files", timeout=10).text)
    return session


class Restartable:
    """A service process of the test's own (redis-server, clamd) that it may stop and start again
    on the same port; start(workdir, port=None) -> (process, port) starts one."""

    def __init__(self, start, workdir):
        self._start, self.workdir = start, workdir
        self.process, self.port = start(workdir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        stop(self.process)

    def start(self):
        self.process, _ = self._start(self.workdir, port=self.port)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target port, until cut."""

    def __init__(self, target_port, bytes_per_second=None):
        self.target = ("127.0.0.1", target_port)
        self.bytes_per_second = bytes_per_second  # a slow link, when set
        self.listener = None
        self.port = None
        self.links = []
        self.accepted = 0  # connections forwarded so far
        self.lock = threading.Lock()
        self.restore()

    def restore(self):
        """Listen (again, on the same port) and forward new connections."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port or 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self):
        """Stop listening and reset every open connection: clients see the server go away."""
        listener, self.listener = self.listener, None
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close alone would not
        except OSError:
            pass
        listener.close()
        with self.lock:
            links, self.links = self.links, []
        for sock in links:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()
            except OSError:
                pass

    def close(self):
        if self.listener is not None:
            self.cut()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.links += [client, upstream]
                self.accepted += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a, b):
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in selector.select(timeout=1):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                    if self.bytes_per_second:
                        time.sleep(len(data) / self.bytes_per_second)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for sock in (a, b):
                try:
                    sock.close()
                except OSError:
                    pass
            with self.lock:
                self.links = [s for s in self.links if s not in (a, b)]
