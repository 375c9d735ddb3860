"""The listing in headless Chromium: the grid view, and ticking files for one bulk delete."""

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
