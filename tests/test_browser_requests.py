"""A file request in headless Chromium: the owner makes one, a visitor with no account opens its link in
a browser of their own and drops a file on the same upload widget, watches it get checked, and the file
arrives in the owner's listing marked with the request."""

import pytest
from playwright.sync_api import expect

from tests.browser_support import open_files_page
from webapp.extensions import db
from webapp.models import Upload

pytest_plugins = ["tests.browser_support"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_visitor_without_an_account_sends_a_file_through_a_request(tab, new_tab, user, live_server, worker):
    page = tab.page
    open_files_page(tab, user)
    page.get_by_role("link", name="Requests").click()
    expect(page.locator("#no-requests")).to_be_visible()
    page.get_by_label("Title").fill("Holiday photos <b>2026</b>")
    page.get_by_label("Message to the sender (optional)").fill("Drop the seaside notes here, thanks!")
    page.get_by_label("Files at most").fill("3")
    page.get_by_role("button", name="Create request").click()
    link = page.get_by_label("The request's link").input_value()
    assert link.startswith(f"{live_server}/r/")

    visitor_tab = new_tab()
    visitor = visitor_tab.page
    visitor.goto(link)
    expect(visitor.get_by_role("heading", name="Holiday photos <b>2026</b>")).to_be_visible()  # escaped, as text
    expect(visitor.locator("#request-message")).to_have_text("Drop the seaside notes here, thanks!")
    expect(visitor.get_by_role("link", name="My files")).to_have_count(0)  # no account here
    expect(visitor.locator("#uploader")).to_have_attribute("data-ready", "true")
    visitor_tab.drop(("seaside notes.txt", "text/plain", b"sand, shells and sun\n" * 40))
    transfer = visitor.locator("li.transfer")
    expect(transfer).to_have_attribute("data-state", "available", timeout=30_000)
    expect(transfer.locator('[data-role="message"]')).to_have_text("Ready.")
    sent = visitor.locator("#files tr[data-upload-id]")
    expect(sent).to_have_count(1)
    expect(sent.locator('[data-role="status"]')).to_have_text("available", timeout=20_000)
    visitor.reload()  # still there after a reload: this browser sent it
    expect(visitor.locator("#files tr[data-upload-id]")).to_contain_text("seaside notes.txt")
    expect(visitor.get_by_role("link", name="Download")).to_have_count(0)
    visitor_tab.assert_no_errors()

    page.get_by_role("link", name="See the files it received").click()
    row = page.locator("#files tr[data-upload-id]")
    expect(row).to_have_count(1)
    expect(row.get_by_role("link", name="seaside notes.txt")).to_be_visible()
    expect(row.locator('[data-role="request"]')).to_have_text("via Holiday photos <b>2026</b>")
    expect(row.locator('[data-role="status"]')).to_have_text("available")
    upload = db.session.query(Upload).one()
    assert upload.user_id == user.id and upload.file_request_id is not None

    page.get_by_role("link", name="Holiday photos <b>2026</b>").first.click()
    page.get_by_role("button", name="Close this request now").click()
    expect(page.locator("#request-state")).to_have_text("closed")
    visitor.reload()
    expect(visitor.locator("h1")).not_to_have_text("Holiday photos <b>2026</b>")
    tab.assert_no_errors()
