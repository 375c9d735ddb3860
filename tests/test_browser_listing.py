"""The listing and sharing in headless Chromium: the grid view, a bulk delete of ticked files, and a
password-protected share link opened in a second browser."""

import pytest
from playwright.sync_api import expect

from tests.browser_support import open_files_page
from tests.test_listing import add
from webapp.extensions import db
from webapp.models import Upload

pytest_plugins = ["tests.browser_support"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_grid_view_and_bulk_delete(tab, user, live_server):
    kept = add(user, "keep me.txt", age=0).id
    doomed = [add(user, f"old draft {n}.txt", age=n).id for n in (1, 2)]
    page = tab.page
    open_files_page(tab, user)

    page.get_by_role("link", name="grid").click()
    tiles = page.locator("#files-grid li.tile")
    expect(tiles).to_have_count(3)
    expect(tiles.first.locator(".name")).to_have_text("old draft 2.txt")  # newest first
    page.get_by_label("Search names").fill("draft")
    page.get_by_role("button", name="Show").click()
    expect(tiles).to_have_count(2)
    assert "view=grid" in page.url and "q=draft" in page.url

    for name in ("old draft 1.txt", "old draft 2.txt"):
        page.get_by_label(f"Select {name}").check()
    page.get_by_role("button", name="Delete selected…").click()
    expect(page.get_by_role("heading", name="Delete 2 files?")).to_be_visible()
    page.get_by_role("button", name="Delete 2 files for good").click()
    expect(page.locator(".flash")).to_have_text("Deleted 2 files.")
    expect(page.locator("#files tr[data-upload-id]")).to_have_count(1)
    db.session.expire_all()
    assert [db.session.get(Upload, i) for i in doomed] == [None, None]
    assert db.session.get(Upload, kept).status == "available"
    tab.assert_no_errors()


def test_a_password_share_link_opened_in_a_second_browser(tab, new_tab, user, live_server, worker):
    page = tab.page
    open_files_page(tab, user)
    tab.drop(("holiday notes.txt", "text/plain", b"postcards from the seaside\n" * 50))
    row = page.locator("#files tr[data-upload-id]")
    expect(row.locator('[data-role="status"]')).to_have_text("available", timeout=20_000)
    row.get_by_role("link", name="holiday notes.txt").click()
    page.get_by_label("Password (optional)").fill("sandcastle")
    page.get_by_label("Download limit (optional)").fill("3")
    page.get_by_role("button", name="Create a share link").click()
    link = page.get_by_label("Share link").input_value()
    assert link.startswith(f"{live_server}/s/")

    visitor = new_tab().page
    visitor.goto(link)
    expect(visitor.get_by_role("heading", name="This link needs a password")).to_be_visible()
    expect(visitor.get_by_text("holiday notes.txt")).to_have_count(0)
    visitor.get_by_label("Password").fill("sandcastle")
    visitor.get_by_role("button", name="Open").click()
    expect(visitor.locator("h1.filename")).to_have_text("holiday notes.txt")
    with visitor.expect_download() as download:
        visitor.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "holiday notes.txt"
    page.reload()
    expect(page.locator('[data-role="downloads"]')).to_have_text("1 of 3 downloads")
