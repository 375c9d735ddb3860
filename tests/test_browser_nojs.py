"""Uploading with scripts switched off, in headless Chromium: the plain form on /files, a real
multipart POST from the browser to storage under the presigned policy (checked by the
signature-checking gateway in front of moto, which also fills in ${filename} as S3 does), the
redirect back, and the same scan by a real worker."""

import hashlib

import pytest
from playwright.sync_api import expect

from tests.browser_support import VERDICT_TIMEOUT
from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import Upload

pytest_plugins = ["tests.browser_support"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def app_config(gateway):
    return {"S3_ENDPOINT_URL": gateway.url}


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_a_file_uploads_without_javascript(page, live_server, worker, user, gateway, tmp_path):
    data = b"a plain form, no scripts\n" * 2000
    path = tmp_path / "no scripts.txt"
    path.write_bytes(data)
    page.goto(f"{live_server}/auth/login")
    page.fill('input[name="email"]', user.email)
    page.fill('input[name="password"]', PASSWORD)
    page.locator('form [type="submit"]').click()
    expect(page).to_have_url(f"{live_server}/files")
    expect(page.locator('[data-role="dropzone"]')).to_be_hidden()  # it needs the widget

    page.get_by_role("button", name="Upload a file").click()
    expect(page.get_by_role("heading", name="Upload a file")).to_be_visible()
    page.locator('input[type="file"][name="file"]').set_input_files(str(path))
    refusals = len(gateway.refusals)
    page.get_by_role("button", name="Upload", exact=True).click()

    expect(page.locator(".flash")).to_contain_text("Received no scripts.txt. It is being checked")
    assert len(gateway.refusals) == refusals  # the policy held for what the browser really sent
    upload_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    expect(page.locator("h1.filename")).to_have_text("no scripts.txt")
    # Without scripts the page does not poll: reload until the worker's verdict shows.
    badge = page.locator('[data-role="status"]').first
    for _ in range(VERDICT_TIMEOUT // 500):
        if badge.text_content().strip() == "available":
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(badge).to_have_text("available")
    db.session.expire_all()
    upload = db.session.get(Upload, upload_id)
    assert (upload.size, upload.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert page.get_by_role("link", name="Download").is_visible()
