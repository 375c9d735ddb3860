"""Moderation end to end in headless Chromium: an owner, an anonymous visitor and an admin, each in
their own browser context, against the live server and a real worker (fixtures in
tests/browser_support.py).
"""

import re

import pytest
from playwright.sync_api import expect

from tests.browser_support import VERDICT_TIMEOUT, open_files_page, stored_uploads
from webapp.scanning.clamd import EICAR
from webapp.storage import get_storage

pytest_plugins = ["tests.browser_support"]  # live_server, worker, browser, tab, new_tab
pytestmark = [pytest.mark.browser, pytest.mark.slow]

LETTER = b"Dear Sam,\nthe keys are under the third flower pot.\n"
REPORT_REASON = "This is my private letter; it was shared without my consent."
APPROVE_REASON = "EICAR test string uploaded on purpose by QA: a false positive"
REMOVE_REASON = "Report upheld: a private letter shared without consent"


def moderation_item(page, upload_id):
    """The moderation queue's card for one upload."""
    return page.locator(f'article.moderation-item[data-upload-id="{upload_id}"]')


def act(item, button, reason):
    """Type a reason into the card's form whose button says `button`, and submit it."""
    form = item.locator("form.reason-form").filter(has=item.page.get_by_role("button", name=button, exact=True))
    expect(form).to_have_count(1)
    form.locator('input[name="reason"]').fill(reason)
    form.get_by_role("button", name=button, exact=True).click()


def badge(row):
    return row.locator('[data-role="status"]')


def test_admin_approves_quarantined_file_and_removes_reported_one(worker, tab, new_tab, user, make_user, tmp_path):
    origin = tab.origin
    owner = tab.page

    # The owner uploads malware (quarantined by clamd) and a clean letter (available).
    open_files_page(tab, user)
    tab.drop(("eicar.txt", "text/plain", EICAR), ("letter.txt", "text/plain", LETTER))
    rows = owner.locator("#files tr[data-upload-id]")
    expect(rows).to_have_count(2)
    eicar_row, letter_row = rows.filter(has_text="eicar.txt"), rows.filter(has_text="letter.txt")
    expect(badge(eicar_row)).to_have_text("quarantined", timeout=VERDICT_TIMEOUT)
    expect(badge(letter_row)).to_have_text("available", timeout=VERDICT_TIMEOUT)
    expect(eicar_row.locator('[data-role="download"]')).to_be_hidden()
    eicar_id = eicar_row.get_attribute("data-upload-id")
    letter_id = letter_row.get_attribute("data-upload-id")
    tab.assert_clean()

    # ... shares the letter from its detail page ...
    letter_row.get_by_role("link", name="letter.txt").click()
    expect(owner).to_have_url(f"{origin}/files/{letter_id}")
    owner.get_by_role("button", name="Create a share link").click()
    expect(owner.locator("p.flash.success")).to_have_text("Share link created: anyone with it can download this file.")
    share_url = owner.locator("input.share-url").input_value()
    assert re.fullmatch(re.escape(f"{origin}/s/") + r"[A-Za-z0-9_-]{20,64}", share_url), share_url

    # ... and an anonymous visitor with the link reports it.
    visitor = new_tab()
    response = visitor.page.goto(share_url)
    assert response.status == 200
    expect(visitor.page.locator("#shared-file h1")).to_have_text("letter.txt")
    visitor.page.get_by_label("What is wrong with this file?").fill(REPORT_REASON)
    visitor.page.get_by_role("button", name="Report", exact=True).click()
    expect(visitor.page.locator("p.flash.success")).to_have_text("Thank you: a moderator will look at this file.")
    visitor.assert_no_errors()

    # An admin signs in through the form and finds both files in the moderation queue.
    admin_user = make_user("admin@example.com", admin=True)
    admin = new_tab()
    admin.log_in(admin_user.email)
    admin.page.get_by_role("link", name="Admin", exact=True).click()
    expect(admin.page).to_have_url(f"{origin}/admin")
    admin.assert_no_errors()
    admin.page.locator("nav.subnav").get_by_role("link", name="Moderation").click()
    expect(admin.page).to_have_url(f"{origin}/admin/moderation")
    expect(admin.page.locator("article.moderation-item")).to_have_count(2)
    quarantined, reported = moderation_item(admin.page, eicar_id), moderation_item(admin.page, letter_id)
    expect(badge(quarantined)).to_have_text("quarantined")
    expect(quarantined).to_contain_text(user.email)
    expect(quarantined).to_contain_text("Malware was found in this file.")
    expect(badge(reported)).to_have_text("available")
    expect(reported.locator("ul.reports li")).to_have_count(1)
    expect(reported.locator("ul.reports li")).to_contain_text(REPORT_REASON)
    admin.page.screenshot(path=tmp_path / "moderation.png", full_page=True)
    admin.assert_no_errors()

    act(quarantined, "Approve", APPROVE_REASON)
    expect(admin.page.locator("p.flash.success")).to_have_text("Approved: the file is available to its owner.")
    expect(quarantined).to_have_count(0)  # approved and unreported: no longer flagged
    admin.assert_no_errors()

    act(reported, "Remove", REMOVE_REASON)
    expect(admin.page.locator("p.flash.success")).to_have_text("Removed: the file is gone and its share links revoked.")
    expect(reported).to_have_count(0)
    expect(admin.page.locator("#queue-empty")).to_be_visible()
    admin.assert_no_errors()

    # The owner's listing reflects both decisions, and the approved file really downloads.
    owner.goto(f"{origin}/files")
    expect(badge(eicar_row)).to_have_text("available")
    expect(badge(eicar_row)).to_have_class("badge status-available")
    expect(badge(letter_row)).to_have_text("removed")
    expect(badge(letter_row)).to_have_class("badge status-removed")
    expect(letter_row.locator('[data-role="download"]')).to_be_hidden()
    download_link = eicar_row.locator('[data-role="download"]')
    expect(download_link).to_be_visible()
    with owner.expect_download() as download:
        download_link.click()
    assert download.value.suggested_filename == "eicar.txt"
    assert download.value.path().read_bytes() == EICAR
    letter_row.get_by_role("link", name="letter.txt").click()
    expect(owner.locator("section[data-upload-id] dl.facts")).to_contain_text("Removed by a moderator.")
    tab.assert_no_errors()

    # The visitor's link is dead.
    assert visitor.page.goto(share_url).status == 404
    assert visitor.page.request.get(f"{share_url}/download", max_redirects=0).status == 404

    # The audit log has both actions with the reasons typed.
    admin.page.locator("nav.subnav").get_by_role("link", name="Audit log").click()
    expect(admin.page).to_have_url(f"{origin}/admin/audit")
    for action, target, reason in [("approve", eicar_id, APPROVE_REASON), ("remove", letter_id, REMOVE_REASON)]:
        event = admin.page.locator(f'#audit tr[data-action="{action}"]')
        expect(event).to_have_count(1)
        expect(event.locator("td").nth(1)).to_have_text(admin_user.email)
        expect(event.locator("td").nth(3)).to_have_text(f"upload {target}")
        expect(event.locator("td").nth(4)).to_have_text(reason)
    admin.assert_no_errors()

    # What the server holds: the approved file is served, the removed one's bytes are gone.
    uploads = {u.id: u for u in stored_uploads(user)}
    assert set(uploads) == {eicar_id, letter_id}
    assert uploads[eicar_id].status == "available"
    assert (uploads[letter_id].status, uploads[letter_id].reason) == ("removed", "removed_by_moderator")
    keys = set(get_storage().list_keys(""))
    assert uploads[eicar_id].file_key in keys
    assert not keys & {uploads[letter_id].incoming_key, uploads[letter_id].file_key}, keys
