"""The upload widget end to end in headless Chromium.

A real HTTP server runs the test app, the browser PUTs the bytes to moto's S3 server through the
presigned URL, and a real `flask worker` process scans them with clamd and promotes them while the
page polls for the status (fixtures in tests/browser_support.py).
"""

import time

import pytest
from playwright.sync_api import expect

from tests.browser_support import VERDICT_TIMEOUT, open_files_page, stored_uploads
from webapp.extensions import db
from webapp.scanning.clamd import EICAR
from webapp.storage import get_storage

pytest_plugins = ["tests.browser_support"]  # live_server, worker, browser, tab
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def expect_verdict(row, transfer, status, message):
    """The listing row's badge and the widget's transfer both reach status, with message."""
    badge = row.locator('[data-role="status"]')
    expect(badge).to_have_text(status, timeout=VERDICT_TIMEOUT)
    expect(badge).to_have_class(f"badge status-{status}")
    expect(transfer).to_have_attribute("data-state", status)
    expect(transfer.locator('[data-role="message"]')).to_have_text(message)


def test_dropped_file_uploads_with_progress_and_becomes_available(worker, tab, user, tmp_path):
    page = tab.page
    data = b"".join(b"line %06d of a plain text file that is a few hundred KB long\n" % n for n in range(6000))
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
    expect_verdict(row, transfer, "available", "Ready.")
    expect(row.locator('[data-role="download"]')).to_be_visible()
    expect(row.locator('[data-role="type"]')).to_have_text("text/plain")
    expect(page.locator("#no-files")).to_have_count(0)

    values = [value for value, _ in tab.progress()]
    assert values[0] == 0 and values[-1] == len(data)
    assert values == sorted(values), values  # the bar never went backwards
    assert any(0 < value < len(data) for value in values), values  # real progress, not a jump
    upload_id = row.get_attribute("data-upload-id")
    assert [(u.id, u.status, u.size) for u in stored_uploads(user)] == [(upload_id, "available", len(data))]
    tab.assert_clean()
    page.screenshot(path=tmp_path / "available.png", full_page=True)


def test_refused_files_say_why_and_malware_ends_quarantined(worker, tab, user, tmp_path):
    page = tab.page
    api_posts = []
    page.on(
        "request",
        lambda request: (
            request.method == "POST" and request.url == f"{tab.origin}/api/uploads" and api_posts.append(request)
        ),
    )
    open_files_page(tab, user)

    tab.drop(
        ("eicar.txt", "text/plain", EICAR), ("page.html", "text/html", b"<!doctype html><script>alert(1)</script>")
    )

    transfers = page.locator('[data-role="transfers"] li.transfer')
    expect(transfers).to_have_count(2)
    html = transfers.filter(has_text="page.html")
    expect(html).to_have_attribute("data-state", "failed")
    expect(html.locator('[data-role="message"]')).to_have_text("Files of type text/html are not accepted.")
    eicar = transfers.filter(has_text="eicar.txt")
    row = page.locator("#files tr[data-upload-id]")
    expect(row).to_have_count(1)  # only the EICAR file reached the server
    expect(row.locator("a").first).to_have_text("eicar.txt")
    expect_verdict(row, eicar, "quarantined", "Quarantined: malware was found.")
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
        "This upload would take you over your storage quota."
    )
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
