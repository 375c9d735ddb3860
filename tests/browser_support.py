"""Fixtures and helpers shared by the headless-Chromium tests.

A real HTTP server runs the test app, the browser PUTs the bytes to moto's S3 server through the
presigned URL, and a real `flask worker` process scans them with clamd and promotes them.

The browser test modules load this file with `pytest_plugins = ["tests.browser_support"]` (for the
fixtures) and also import its helpers, so it is imported before pytest could mark it for assertion
rewriting: PYTEST_DONT_REWRITE says so, and the asserts here carry their own messages instead.
"""

import base64
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import select

from devtools.localservices import free_port
from tests.conftest import PASSWORD
from tests.processes import running_worker, serving
from webapp.extensions import db
from webapp.models import Upload
from webapp.storage import get_storage

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
#: How long the browser may wait for the worker's verdict (milliseconds).
VERDICT_TIMEOUT = 20_000
#: Upload bandwidth the browser is throttled to, so that a few hundred KB take about a second and
#: the progress bar moves through intermediate values instead of jumping straight to the end.
UPLOAD_BYTES_PER_SECOND = 256 * 1024

# Records every value the page assigns to a <progress> bar (also per bar, named by its aria-label or
# data-role), and every CSP violation. Init scripts are injected by the browser, not by the page, so
# the page's CSP does not apply to them.
INSTRUMENT = """
window.__progress = [];
window.__bars = [];
window.__csp = [];
const barNumbers = new WeakMap();
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
    if (!barNumbers.has(this)) barNumbers.set(this, window.__bars.length);
    const name = this.getAttribute("aria-label") || this.dataset.role || "progress";
    window.__bars.push([barNumbers.get(this), name, native.get.call(this), this.max]);
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

# Pastes files as Ctrl+V does: a paste event on the focused element whose clipboardData holds them.
PASTE = """
(transfer) => {
  const target = document.activeElement || document.body;
  target.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true }));
}
"""


@pytest.fixture
def live_server(app):
    """The test app served over real HTTP on 127.0.0.1; its origin may PUT to the bucket."""
    port = free_port()
    get_storage().ensure_bucket([f"http://127.0.0.1:{port}"])  # the app fixture's context is the current one
    with serving(app, port) as origin:
        yield origin


@pytest.fixture
def worker(app, tmp_path):
    """A real `flask worker` process on the test app's database, queues, bucket and clamd."""
    log_path = tmp_path / "worker.log"
    with running_worker(app, log_path) as process:
        yield process
    print(log_path.read_text())  # shown by pytest when the test fails


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, shared by the tests of one module."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Page:
    """A browser tab on the live server that records console errors, page errors and CSP reports."""

    def __init__(self, page, origin):
        self.page = page
        self.origin = origin
        self.network = None  # the DevTools session that throttles the tab, once there is one
        self.errors = []
        self.navigations = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("framenavigated", lambda frame: frame == page.main_frame and self.navigations.append(frame.url))

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
        # The widget is a deferred module: wait until it listens, or an early drop reaches nothing.
        expect(page.locator('#uploader[data-ready="true"]')).to_be_visible()

    def throttle(self, bytes_per_second):
        """Limit the tab's upload bandwidth (None: no limit); it lasts across reloads."""
        if self.network is None:
            self.network = self.page.context.new_cdp_session(self.page)
            self.network.send("Network.enable")
        self.network.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second or -1},
        )

    def _data_transfer(self, files):
        payload = [{"name": name, "type": mime, "data": base64.b64encode(data).decode()} for name, mime, data in files]
        return self.page.evaluate_handle(MAKE_DATA_TRANSFER, payload)

    def drop(self, *files):
        """Drag files (name, type, bytes) over the drop zone and drop them, as a user would."""
        transfer = self._data_transfer(files)
        zone = self.page.locator('[data-role="dropzone"]')
        zone.dispatch_event("dragenter", {"dataTransfer": transfer})
        zone.dispatch_event("dragover", {"dataTransfer": transfer})
        expect(zone).to_have_class("dropzone over")
        zone.dispatch_event("drop", {"dataTransfer": transfer})
        expect(zone).to_have_class("dropzone")
        transfer.dispose()

    def paste(self, *files):
        """Paste files (name, type, bytes) into the page, as Ctrl+V does with copied files or a screenshot."""
        transfer = self._data_transfer(files)
        self.page.evaluate(PASTE, transfer)
        transfer.dispose()

    def choose(self, *paths):
        """Pick files from disk with the widget's file chooser (they keep their modification time)."""
        self.page.locator('[data-role="picker"]').set_input_files(list(paths))

    def progress(self):
        """Every (value, max) the page assigned to a progress bar, in order."""
        return [tuple(pair) for pair in self.page.evaluate("window.__progress")]

    def progress_by_bar(self):
        """{(bar number, name): [value, ...]}: what the page assigned to each progress bar, in order."""
        bars = {}
        for number, name, value, _ in self.page.evaluate("window.__bars"):
            bars.setdefault((number, name), []).append(value)
        return bars

    def assert_no_errors(self):
        """No console errors and no uncaught exceptions so far, no CSP violation on this page."""
        csp = self.page.evaluate("window.__csp")
        assert csp == [], f"CSP violations on {self.page.url}: {csp}"
        assert self.errors == [], f"errors in the browser: {self.errors}"

    def assert_clean(self):
        """assert_no_errors(), and no reload or navigation since open_files_page()."""
        self.assert_no_errors()
        assert self.navigations[-1] == f"{self.origin}/files", self.navigations
        sentinel = self.page.evaluate("window.__sentinel")
        assert sentinel == "still the same page", f"the page was reloaded (sentinel {sentinel!r})"


def _open_tab(browser, origin, throttle):
    """A fresh context (its own cookies) with one instrumented tab; returns (context, Page)."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.add_init_script(INSTRUMENT)
    page = context.new_page()
    page.set_default_timeout(10_000)
    tab = Page(page, origin)
    if throttle:
        tab.throttle(UPLOAD_BYTES_PER_SECOND)
    return context, tab


@pytest.fixture
def tab(browser, live_server):
    """A fresh browser context and tab on the live server, uploads throttled; closed before the server stops."""
    context, page = _open_tab(browser, live_server, throttle=True)
    yield page
    context.close()


@pytest.fixture
def new_tab(browser, live_server):
    """Open more people's tabs: new_tab() is a fresh context (not logged in), unthrottled.

    Every context is closed before the server stops.
    """
    contexts = []

    def open_one():
        context, page = _open_tab(browser, live_server, throttle=False)
        contexts.append(context)
        return page

    yield open_one
    for context in contexts:
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
