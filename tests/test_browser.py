"""The upload widget end to end in headless Chromium.

A real HTTP server runs the test app, the browser PUTs the bytes to moto's S3 server through the
presigned URL, and a real `flask worker` process scans them with clamd and promotes them while the
page polls for the status.
"""
import base64
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from rq import Worker
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.localservices import EICAR, free_port, stop
from webapp.models import Upload
from webapp.queue import QUEUE_NAMES, get_queue, get_redis
from webapp.storage import get_storage

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
#: How long the browser may wait for the worker's verdict (milliseconds).
VERDICT_TIMEOUT = 20_000
#: Upload bandwidth the browser is throttled to, so that a few hundred KB take about a second and
#: the progress bar moves through intermediate values instead of jumping straight to the end.
UPLOAD_BYTES_PER_SECOND = 256 * 1024

# Records every value the page assigns to a <progress> bar, and every CSP violation. Init scripts
# are injected by the browser, not by the page, so the page's CSP does not apply to them.
INSTRUMENT = """
window.__progress = [];
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(`${event.violatedDirective} ${event.blockedURI}`);
});
const native = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, "value");
Object.defineProperty(HTMLProgressElement.prototype, "value", {
  configurable: true,
  get() { return native.get.call(this); },
  set(value) {
    native.set.call(this, value);
    window.__progress.push([native.get.call(this), this.max]);
  },
});
"""

# Builds a DataTransfer holding real File objects, as the OS hands one to a drop event.
MAKE_DATA_TRANSFER = """
(files) => {
  const transfer = new DataTransfer();
  for (const { name, type, data } of files) {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, { type }));
  }
  return transfer;
}
"""


@pytest.fixture
def live_server(app):
    """The test app served over real HTTP on 127.0.0.1; its origin may PUT to the bucket."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    get_storage().ensure_bucket([origin])  # the app fixture's context is the current one
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield origin
    server.shutdown()
    thread.join(10)
    server.server_close()


def _worker_environment(app):
    """Environment variables under which create_app() rebuilds the test app's settings."""
    config = app.config
    env = {name: value for name, value in os.environ.items() if not name.startswith("FLASK_")}
    env.update({
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
    })
    return env


def _wait_for_worker(process, log_path, timeout=20.0):
    """Block until a worker listens on the app's scan queue; fail if the process dies first."""
    queue = get_queue(QUEUE_NAMES[0])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the worker exited with {process.returncode}:\n{log_path.read_text()}")
        if Worker.all(connection=get_redis(), queue=queue):
            return
        time.sleep(0.1)
    pytest.fail(f"the worker did not register within {timeout:.0f}s:\n{log_path.read_text()}")


@pytest.fixture
def worker(app, tmp_path):
    """A real `flask worker` process on the test app's database, queues, bucket and clamd."""
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--no-scheduler"],
            cwd=ROOT, env=_worker_environment(app), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            _wait_for_worker(process, log_path)
            yield process
        finally:
            stop(process)  # SIGTERM: a warm shutdown that waits for the work horse
            try:  # a work horse orphaned by a SIGKILLed parent would still hold the database
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    print(log_path.read_text())  # shown by pytest when the test fails


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, shared by the tests of this module."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
        yield browser
        browser.close()


class Page:
    """A browser tab on the live server that records console errors, page errors and CSP reports."""

    def __init__(self, page, origin):
        self.page = page
        self.origin = origin
        self.errors = []
        self.navigations = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("framenavigated", lambda frame: frame == page.main_frame
                and self.navigations.append(frame.url))

    def _on_console(self, message):
        if message.type != "error":
            return
        url = message.location.get("url", "")
        self.errors.append(f"console: {message.text} ({url})")

    def log_in(self, email):
        """Sign in through the real login form; lands on /files."""
        page = self.page
        page.goto(f"{self.origin}/auth/login")
        page.fill('input[name="email"]', email)
        page.fill('input[name="password"]', PASSWORD)
        page.locator('form [type="submit"]').click()
        expect(page).to_have_url(f"{self.origin}/files")
        expect(page.locator("#uploader")).to_be_visible()

    def drop(self, *files):
        """Drag files (name, type, bytes) over the drop zone and drop them, as a user would."""
        payload = [{"name": name, "type": mime, "data": base64.b64encode(data).decode()}
                   for name, mime, data in files]
        transfer = self.page.evaluate_handle(MAKE_DATA_TRANSFER, payload)
        zone = self.page.locator('[data-role="dropzone"]')
        zone.dispatch_event("dragenter", {"dataTransfer": transfer})
        zone.dispatch_event("dragover", {"dataTransfer": transfer})
        expect(zone).to_have_class("dropzone over")
        zone.dispatch_event("drop", {"dataTransfer": transfer})
        expect(zone).to_have_class("dropzone")
        transfer.dispose()

    def progress(self):
        """Every (value, max) the page assigned to a progress bar, in order."""
        return [tuple(pair) for pair in self.page.evaluate("window.__progress")]

    def assert_clean(self):
        """No console errors, no uncaught exceptions, no CSP violations, no reload since /files."""
        assert self.page.evaluate("window.__csp") == []
        assert self.errors == []
        assert self.navigations[-1] == f"{self.origin}/files"
        assert self.page.evaluate("window.__sentinel") == "still the same page"


@pytest.fixture
def tab(browser, live_server):
    """A fresh browser context and tab on the live server; closed before the server stops."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.add_init_script(INSTRUMENT)
    page = context.new_page()
    page.set_default_timeout(10_000)
    network = context.new_cdp_session(page)
    network.send("Network.enable")
    network.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": UPLOAD_BYTES_PER_SECOND})
    yield Page(page, live_server)
    context.close()


def open_files_page(tab, user):
    """Log in and mark the page, so a reload would be noticed."""
    tab.log_in(user.email)
    tab.page.evaluate("window.__sentinel = 'still the same page'")


def stored_uploads(user):
    """The user's uploads as the database has them now (the worker writes from another process)."""
    db.session.rollback()  # end any transaction so the worker's commits are visible
    rows = db.session.scalars(select(Upload).where(Upload.user_id == user.id)).all()
    db.session.rollback()
    return rows


def test_dropped_file_uploads_with_progress_and_becomes_available(worker, tab, user, tmp_path):
    page = tab.page
    data = b"".join(b"line %06d of a plain text file that is a few hundred KB long\n" % n
                    for n in range(6000))
    assert 300_000 < len(data) < 500_000
    open_files_page(tab, user)
    expect(page.locator("#no-files")).to_be_visible()

    tab.drop(("field notes.txt", "text/plain", data))

    transfer = page.locator('[data-role="transfers"] li.transfer')
    expect(transfer).to_have_count(1)
    expect(transfer.locator(".name")).to_have_text("field notes.txt")
    bar = transfer.locator("progress")
    expect(bar).to_have_attribute("max", str(len(data)))
    page.wait_for_function("(bar) => bar.value === bar.max", arg=bar.element_handle())
    row = page.locator("#files tr[data-upload-id]")
    expect(row).to_have_count(1)
    badge = row.locator('[data-role="status"]')
    expect(badge).to_have_text("available", timeout=VERDICT_TIMEOUT)
    expect(badge).to_have_class("badge status-available")
    expect(transfer).to_have_attribute("data-state", "available")
    expect(transfer.locator('[data-role="message"]')).to_have_text("Ready.")
    expect(row.locator('[data-role="download"]')).to_be_visible()
    expect(row.locator("td").nth(2)).to_have_text("text/plain")
    expect(page.locator("#no-files")).to_have_count(0)

    values = [value for value, _ in tab.progress()]
    assert values[0] == 0 and values[-1] == len(data)
    assert values == sorted(values), values  # the bar never went backwards
    assert any(0 < value < len(data) for value in values), values  # real progress, not a jump
    upload_id = row.get_attribute("data-upload-id")
    assert [(u.id, u.status, u.size) for u in stored_uploads(user)] == [
        (upload_id, "available", len(data))]
    tab.assert_clean()
    page.screenshot(path=tmp_path / "available.png", full_page=True)


def test_refused_files_say_why_and_malware_ends_quarantined(worker, tab, user, tmp_path):
    page = tab.page
    api_posts = []
    page.on("request", lambda request: request.method == "POST"
            and request.url == f"{tab.origin}/api/uploads" and api_posts.append(request))
    open_files_page(tab, user)

    tab.drop(("eicar.txt", "text/plain", EICAR),
             ("page.html", "text/html", b"<!doctype html><script>alert(1)</script>"))

    transfers = page.locator('[data-role="transfers"] li.transfer')
    expect(transfers).to_have_count(2)
    html = transfers.filter(has_text="page.html")
    expect(html).to_have_attribute("data-state", "failed")
    expect(html.locator('[data-role="message"]')).to_have_text(
        "Files of type text/html are not accepted.")
    eicar = transfers.filter(has_text="eicar.txt")
    row = page.locator("#files tr[data-upload-id]")
    expect(row).to_have_count(1)  # only the EICAR file reached the server
    expect(row.locator("a").first).to_have_text("eicar.txt")
    badge = row.locator('[data-role="status"]')
    expect(badge).to_have_text("quarantined", timeout=VERDICT_TIMEOUT)
    expect(badge).to_have_class("badge status-quarantined")
    expect(eicar).to_have_attribute("data-state", "quarantined")
    expect(eicar.locator('[data-role="message"]')).to_have_text("Quarantined: malware was found.")
    expect(row.locator('[data-role="download"]')).to_be_hidden()

    assert len(api_posts) == 1  # the HTML file was refused before anything was signed
    [stored] = stored_uploads(user)
    assert (stored.id, stored.status) == (row.get_attribute("data-upload-id"), "quarantined")
    tab.assert_clean()
    page.screenshot(path=tmp_path / "refused.png", full_page=True)


def test_finished_transfer_offers_no_cancel_or_retry(tab, user):
    open_files_page(tab, user)
    tab.drop(("page.html", "text/html", b"<!doctype html><p>hello</p>"))
    transfer = tab.page.locator('[data-role="transfers"] li.transfer')
    expect(transfer).to_have_attribute("data-state", "failed")
    # A refused type cannot be retried, and there is nothing left to cancel.
    expect(transfer.get_by_role("button", name="Retry")).to_be_hidden(timeout=1000)
    expect(transfer.get_by_role("button", name="Cancel")).to_be_hidden(timeout=1000)


def test_cancel_mid_upload_then_retry(worker, tab, user, app):
    page = tab.page
    data = b"x" * (1024 * 1024)  # about four seconds at the throttled upload speed
    open_files_page(tab, user)
    tab.drop(("big.txt", "text/plain", data))
    transfer = page.locator('[data-role="transfers"] li.transfer')
    bar = transfer.locator("progress")
    page.wait_for_function("(bar) => bar.value > 0 && bar.value < bar.max", arg=bar.element_handle())

    transfer.get_by_role("button", name="Cancel").click()
    expect(transfer).to_have_attribute("data-state", "cancelled")
    expect(transfer.locator('[data-role="message"]')).to_have_text("Cancelled.")
    retry = transfer.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    # The pending upload was aborted on the server: no row, nothing in the bucket.
    deadline = time.monotonic() + 5
    while stored_uploads(user) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored_uploads(user) == []
    assert list(get_storage().list_keys("")) == []

    retry.click()
    row = page.locator("#files tr[data-upload-id]")
    expect(row.locator('[data-role="status"]')).to_have_text("available", timeout=VERDICT_TIMEOUT)
    expect(transfer).to_have_attribute("data-state", "available")
    assert [u.status for u in stored_uploads(user)] == ["available"]
    tab.assert_clean()


def test_server_refusal_is_shown(tab, user):
    user.quota_bytes = 10
    db.session.commit()
    open_files_page(tab, user)
    tab.drop(("notes.txt", "text/plain", b"more than ten bytes"))
    transfer = tab.page.locator('[data-role="transfers"] li.transfer')
    expect(transfer).to_have_attribute("data-state", "failed")
    expect(transfer.locator('[data-role="message"]')).to_have_text(
        "This upload would take you over your storage quota.")
    expect(transfer.get_by_role("button", name="Retry")).to_be_hidden()
    assert stored_uploads(user) == []


def test_listing_updates_rows_in_flight_without_reload(request, tab, user, app):
    from tests.conftest import Api

    api = Api(app.test_client(user=user))
    upload_id = api.upload(b"uploaded from another device, not yet scanned")
    open_files_page(tab, user)
    row = tab.page.locator(f'#files tr[data-upload-id="{upload_id}"]')
    badge = row.locator('[data-role="status"]')
    expect(badge).to_have_text("uploaded")
    expect(row.locator('[data-role="download"]')).to_be_hidden()
    request.getfixturevalue("worker")  # the worker starts only now, while the page is open
    expect(badge).to_have_text("available", timeout=VERDICT_TIMEOUT)
    expect(row.locator('[data-role="download"]')).to_be_visible()
    tab.assert_clean()
