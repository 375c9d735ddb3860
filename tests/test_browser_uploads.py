"""The upload widget with large files, many files, pastes, pauses, failures and reloads, in headless
Chromium against the live server, moto's S3 server and a real worker (tests/browser_support.py).

The presigned URLs point at a proxy in front of moto (tests/storage_proxy.py), so the part PUTs are
counted where they reach storage, and storage can be made to fail, slow down or hold back a part.
Files of 6 MiB and more go up in 5 MiB parts (S3's smallest), so the test file has four parts.
"""

import hashlib
import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser_support import VERDICT_TIMEOUT, open_files_page, stored_uploads
from tests.conftest import RESOURCES, Api
from tests.storage_proxy import StorageProxy
from webapp.extensions import db
from webapp.storage import get_storage

pytest_plugins = ["tests.browser_support"]  # live_server, worker, browser, tab
pytestmark = [pytest.mark.browser, pytest.mark.slow]

MiB = 1024 * 1024
PART_SIZE = 5 * MiB
#: Three 5 MiB parts and a last one of a little over 1 MiB.
BIG_SIZE = 3 * PART_SIZE + MiB + 12345
TRANSFERS = '[data-role="transfers"] li.transfer'


@pytest.fixture
def storage(services):
    """The proxy in front of moto that the app's presigned URLs point at."""
    with StorageProxy(services["s3"]) as proxy:
        yield proxy


@pytest.fixture
def app_config(storage):
    """Multipart uploads from 6 MiB, in 5 MiB parts, through the proxy."""
    return {"S3_ENDPOINT_URL": storage.url, "MULTIPART_THRESHOLD": 6 * MiB, "MULTIPART_PART_SIZE": PART_SIZE}


def text_of_size(size, tag):
    """size bytes of plain text (what the checker accepts as text/plain), different for each tag."""
    line = b"%s line %%08d: the quick brown fox jumps over the lazy dog\n" % tag
    lines = (line % n for n in range(size // len(line % 0) + 1))
    return b"".join(lines)[:size]


@pytest.fixture
def big_file(tmp_path):
    """A four-part text file on disk: (path, bytes)."""
    data = text_of_size(BIG_SIZE, b"field")
    path = tmp_path / "field recordings.txt"
    path.write_bytes(data)
    return path, data


def wait_until(condition, what, timeout=20):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def outcomes_by_part(storage, count=4):
    """{part number: [outcome of each PUT of it, in order]} as the proxy saw them."""
    puts = storage.part_puts()
    return {n: [put.outcome for put in puts if put.part_number == n] for n in range(1, count + 1)}


def saved_for_resume(page):
    """The widget's localStorage, as text (it names the upload ids it could resume)."""
    return page.evaluate("JSON.stringify(localStorage)")


def assert_stored_intact(user, data, upload_id=None):
    """The user's one upload is available with exactly these bytes (the worker's SHA-256 and size)."""
    [stored] = stored_uploads(user)
    assert (stored.status, stored.size, stored.sha256) == ("available", len(data), hashlib.sha256(data).hexdigest())
    if upload_id is not None:
        assert stored.id == upload_id  # the same upload, resumed: not a second one
    return stored


def assert_bars_only_moved_forward(tab, final=None):
    """No progress bar ever went backwards; with final, every bar ended there."""
    bars = tab.progress_by_bar()
    assert bars, "no progress bar moved"
    for (_, name), values in bars.items():
        assert values == sorted(values), f"{name} went backwards: {values}"
        if final is not None:
            assert values[-1] == final, f"{name} ended at {values[-1]}, not {final}"


def assert_only_refusals_from(tab, *origins):
    """No CSP violation, and no browser error but the "Failed to load resource" lines that the refusals
    this test provoked (from these origins) log."""
    assert tab.page.evaluate("window.__csp") == []
    unexpected = [
        error
        for error in tab.errors
        if not (error.startswith("console: Failed to load resource") and any(f"({o}/" in error for o in origins))
    ]
    assert unexpected == [], unexpected


def test_large_file_goes_up_in_parallel_parts_and_becomes_available(worker, tab, user, storage, big_file):
    path, data = big_file
    page = tab.page
    storage.delay = 0.5  # each part spends half a second at storage: parts sent in parallel overlap there
    open_files_page(tab, user)
    tab.throttle(2 * MiB)  # several seconds for the file: speed and time left show meanwhile

    tab.choose(path)

    transfer = page.locator(TRANSFERS)
    expect(transfer.locator(".name")).to_have_text(path.name)
    expect(transfer).to_have_attribute("data-state", "uploading")
    expect(transfer.get_by_role("button", name="Pause")).to_be_visible()
    rate = re.compile(r"^\d+\.\d (KB|MB)/s, \d+ (s|min) left$")
    expect(transfer.locator('[data-role="rate"]')).to_have_text(rate)
    summary = page.locator('[data-role="batch-summary"]')
    expect(summary).to_have_text(re.compile(r"^0 of 1 file sent · \d+\.\d (KB|MB)/s, \d+ (s|min) left$"))
    page.screenshot(path=path.parent / "uploading.png", full_page=True)
    row = page.locator("#files tr[data-upload-id]")
    expect(row.locator('[data-role="status"]')).to_have_text("available", timeout=VERDICT_TIMEOUT)
    expect(transfer).to_have_attribute("data-state", "available")
    expect(transfer.locator('[data-role="message"]')).to_have_text("Ready.")
    expect(summary).to_have_text("1 of 1 file sent.")
    expect(transfer.locator('[data-role="rate"]')).to_have_text("")

    assert storage.max_in_flight == 4  # all four parts were at storage at once
    assert outcomes_by_part(storage) == {n: ["stored"] for n in range(1, 5)}  # each sent once, none failed
    stored = assert_stored_intact(user, data, row.get_attribute("data-upload-id"))
    assert (stored.part_size, stored.part_count) == (PART_SIZE, 4)
    assert_bars_only_moved_forward(tab, final=len(data))
    assert saved_for_resume(page) == "{}"  # finished: nothing left to resume
    tab.assert_clean()


def test_reload_midway_resumes_sending_only_the_missing_parts(worker, tab, user, storage, big_file):
    path, data = big_file
    page = tab.page
    storage.hold_after(2)  # two parts reach storage; the other two are held until the reload loses them
    open_files_page(tab, user)
    tab.throttle(None)
    tab.choose(path)
    wait_until(lambda: len(storage.stored_parts()) == 2 and storage.held() == 2, "two parts stored and two held")
    first = set(storage.stored_parts())
    [pending] = stored_uploads(user)
    assert pending.status == "pending"
    assert pending.id in saved_for_resume(page)

    page.reload()
    expect(page.locator('#uploader[data-ready="true"]')).to_be_visible()
    storage.release()  # the held parts never reach storage, like bytes cut off by the reload
    wait_until(lambda: storage.held() == 0 and storage.in_flight == 0, "the held parts to be dropped")
    assert len(storage.part_puts("dropped")) == 2
    notice = page.locator('[data-role="resumable"]')
    expect(notice).to_contain_text("1 upload can be resumed: choose the same file again to continue.")
    expect(notice.locator("li")).to_have_text(re.compile(rf"^{re.escape(path.name)} \(16\.0 MB\)\s*Discard$"))
    page.screenshot(path=path.parent / "resumable.png", full_page=True)

    storage.delay = 1.0  # the missing parts take a second at storage, long enough to read the message
    tab.choose(path)

    transfer = page.locator(TRANSFERS)
    expect(transfer.locator('[data-role="message"]')).to_have_text("Resuming: 2 of 4 parts are already uploaded.")
    expect(transfer).to_have_attribute("data-state", "available", timeout=VERDICT_TIMEOUT)
    expect(notice).to_be_hidden()

    # Counted at storage: the two parts it held were not sent again, the two it lacked were sent
    # once each, so the four parts took four PUTs that arrived (and two that a reload cut off).
    stored = storage.stored_parts()
    assert set(stored[2:]) == {1, 2, 3, 4} - first
    assert sorted(stored) == [1, 2, 3, 4]
    assert len(storage.part_puts()) == 4 + 2
    assert_stored_intact(user, data, pending.id)
    assert saved_for_resume(page) == "{}"
    tab.assert_no_errors()


def send_until_one_part_is_stored(tab, user, storage, path):
    """Choose the 4-part file with storage letting one part through and holding the other three."""
    storage.hold_after(1)
    open_files_page(tab, user)
    tab.throttle(None)
    tab.choose(path)
    wait_until(lambda: len(storage.stored_parts()) == 1 and storage.held() == 3, "one part stored and three held")


def test_unfinished_upload_left_by_a_reload_can_be_discarded(tab, user, storage, big_file, app):
    path, _ = big_file
    page = tab.page
    send_until_one_part_is_stored(tab, user, storage, path)
    page.reload()
    storage.release()
    notice = page.locator('[data-role="resumable"]')
    expect(notice).to_contain_text("1 upload can be resumed")

    notice.get_by_role("button", name="Discard").click()

    expect(notice).to_be_hidden()
    assert saved_for_resume(page) == "{}"
    wait_until(lambda: stored_uploads(user) == [], "the pending upload to be deleted")
    bucket = get_storage().client.list_multipart_uploads(Bucket=app.config["S3_BUCKET"])
    assert bucket.get("Uploads", []) == []  # its parts are gone from storage too
    db.session.refresh(user)
    assert (user.pending_uploads, user.bytes_reserved) == (0, 0)  # and the quota it held is free
    page.reload()
    expect(page.locator('#uploader[data-ready="true"]')).to_be_visible()
    expect(notice).to_be_hidden()
    tab.assert_no_errors()


def test_sixty_dropped_files_queue_and_all_become_available(worker, tab, user, app):
    assert (app.config["MAX_PENDING_UPLOADS"], app.config["UPLOAD_PARALLEL_FILES"]) == (50, 3)
    page = tab.page
    answers = []  # ("begin" | "complete", status) in the order the browser got them
    api = f"{tab.origin}/api/uploads"

    def on_response(response):
        if response.request.method == "POST" and response.url == api:
            answers.append(("begin", response.status))
        elif response.request.method == "POST" and response.url.startswith(api) and response.url.endswith("/complete"):
            answers.append(("complete", response.status))

    page.on("response", on_response)
    files = [(f"note {n:02}.txt", "text/plain", b"note number %02d\n" % n * (n + 1)) for n in range(60)]
    open_files_page(tab, user)

    tab.drop(*files)

    transfers = page.locator(TRANSFERS)
    expect(transfers).to_have_count(60)
    expect(transfers.first.locator(".name")).to_have_text("note 00.txt")  # the drop's order, on top
    expect(page.locator('#files [data-role="status"]', has_text="available")).to_have_count(60, timeout=90_000)
    expect(page.locator(f'{TRANSFERS}[data-state="available"]')).to_have_count(60)
    expect(page.locator('[data-role="batch-summary"]')).to_have_text("60 of 60 files sent.")

    pending, most = 0, 0
    for step, status in answers:
        assert status == (201 if step == "begin" else 202), answers
        pending += 1 if step == "begin" else -1
        most = max(most, pending)
    assert most <= 3  # three files at a time: far from the 50 pending uploads the server allows
    assert len(answers) == 120
    stored = stored_uploads(user)
    assert sorted((u.filename, u.status, u.size) for u in stored) == [
        (name, "available", len(data)) for name, _, data in files
    ]
    tab.assert_clean()


def test_too_many_pending_uploads_wait_for_their_turn(worker, tab, user, app):
    # 48 uploads begun elsewhere (another tab, a script) wait for their bytes: two more are allowed.
    elsewhere = Api(app.test_client(user=user))
    for n in range(48):
        elsewhere.begin(f"elsewhere {n}.txt", 100)
    page = tab.page
    refusals = []
    page.on("response", lambda r: r.status == 429 and refusals.append(r.url))
    open_files_page(tab, user)

    tab.drop(*[(f"memo {n}.txt", "text/plain", b"memo %d\n" % n) for n in range(6)])

    expect(page.locator(f'{TRANSFERS}[data-state="available"]')).to_have_count(6, timeout=60_000)
    assert refusals and set(refusals) == {f"{tab.origin}/api/uploads"}  # refused, waited, tried again
    statuses = sorted(u.status for u in stored_uploads(user))
    assert statuses == ["available"] * 6 + ["pending"] * 48
    assert_only_refusals_from(tab, tab.origin)


def test_pasted_screenshot_and_file_upload(worker, tab, user):
    page = tab.page
    open_files_page(tab, user)
    png = (RESOURCES / "tiny.png").read_bytes()

    tab.paste(("image.png", "image/png", png))  # how browsers name a screenshot on the clipboard
    tab.paste(("clipboard notes.txt", "text/plain", b"copied in the file manager, pasted in the page\n"))

    transfers = page.locator(TRANSFERS)
    expect(transfers).to_have_count(2)
    screenshot = transfers.filter(has_text=re.compile(r"pasted-\d{4}-\d\d-\d\d-\d{6}\.png"))
    expect(screenshot).to_have_attribute("data-state", "available", timeout=VERDICT_TIMEOUT)
    notes = transfers.filter(has_text="clipboard notes.txt")
    expect(notes).to_have_attribute("data-state", "available", timeout=VERDICT_TIMEOUT)
    names = sorted(u.filename for u in stored_uploads(user))
    assert names[0] == "clipboard notes.txt" and re.fullmatch(r"pasted-\d{4}-\d\d-\d\d-\d{6}\.png", names[1]), names

    # Pasting text is left to the page: nothing is uploaded.
    page.evaluate("""() => {
      const transfer = new DataTransfer();
      transfer.setData("text/plain", "just some words");
      document.body.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true }));
    }""")
    expect(transfers).to_have_count(2)
    tab.assert_clean()


def test_pause_stops_sending_and_resume_completes(worker, tab, user, storage, big_file):
    path, data = big_file
    page = tab.page
    send_until_one_part_is_stored(tab, user, storage, path)
    transfer = page.locator(TRANSFERS)

    transfer.get_by_role("button", name="Pause").click()

    expect(transfer).to_have_attribute("data-state", "paused")
    expect(transfer.locator('[data-role="message"]')).to_have_text("Paused.")
    expect(transfer.get_by_role("button", name="Pause")).to_be_hidden()
    expect(transfer.get_by_role("button", name="Cancel")).to_be_visible()
    page.screenshot(path=path.parent / "paused.png", full_page=True)
    storage.release()  # the parts in flight were aborted by the page; they never reach storage
    wait_until(lambda: storage.held() == 0 and storage.in_flight == 0, "the aborted parts to be dropped")
    seen = len(storage.part_puts())
    time.sleep(1.5)
    assert (len(storage.part_puts()), storage.in_flight) == (seen, 0)  # nothing is sent while paused
    [pending] = stored_uploads(user)
    assert pending.status == "pending"

    transfer.get_by_role("button", name="Resume").click()

    expect(transfer).to_have_attribute("data-state", "available", timeout=VERDICT_TIMEOUT)
    assert sorted(storage.stored_parts()) == [1, 2, 3, 4]  # the part stored before the pause was not sent again
    assert len(storage.part_puts("dropped")) == 3
    assert_stored_intact(user, data, pending.id)
    assert_bars_only_moved_forward(tab, final=len(data))
    tab.assert_clean()


def test_failed_part_is_retried_and_an_expired_url_signed_again(worker, tab, user, storage, big_file):
    path, data = big_file
    page = tab.page
    storage.fail_part(2, 500)  # storage fails part 2 once
    storage.fail_part(3, 403)  # and refuses part 3's URL once, as when it has expired
    signed = []  # part_numbers of every request for part URLs
    page.on(
        "request",
        lambda r: r.method == "POST" and r.url.endswith("/parts") and signed.append(r.post_data_json["part_numbers"]),
    )
    open_files_page(tab, user)
    tab.throttle(None)

    tab.choose(path)

    transfer = page.locator(TRANSFERS)
    expect(transfer.locator('[data-role="message"]')).to_have_text(
        "Part 2 failed: Storage refused the bytes (500). Trying again in 1 s…"
    )
    expect(transfer).to_have_attribute("data-state", "available", timeout=VERDICT_TIMEOUT)
    assert outcomes_by_part(storage) == {
        1: ["stored"],
        2: ["failed", "stored"],
        3: ["failed", "stored"],
        4: ["stored"],
    }
    assert signed == [[1, 2, 3, 4], [3]]  # the 403 had part 3 signed again; the 500 was just retried
    assert_stored_intact(user, data)
    assert_bars_only_moved_forward(tab, final=len(data))
    assert_only_refusals_from(tab, storage.url)


def test_part_failing_five_times_fails_the_file_and_retry_resumes_it(worker, tab, user, storage, big_file):
    path, data = big_file
    page = tab.page
    storage.fail_part(2, 500, 500, 500, 500, 500)
    open_files_page(tab, user)
    tab.throttle(None)
    tab.choose(path)
    transfer = page.locator(TRANSFERS)

    # Five tries, 1 + 2 + 4 + 8 seconds apart, then the file fails but keeps its upload.
    expect(transfer).to_have_attribute("data-state", "failed", timeout=30_000)
    expect(transfer.locator('[data-role="message"]')).to_have_text("Storage refused the bytes (500).")
    expect(transfer.get_by_role("button", name="Retry")).to_be_visible()
    expect(transfer.get_by_role("button", name="Cancel")).to_be_visible()
    assert outcomes_by_part(storage) == {1: ["stored"], 2: ["failed"] * 5, 3: ["stored"], 4: ["stored"]}
    [pending] = stored_uploads(user)
    assert pending.status == "pending"
    assert pending.id in saved_for_resume(page)

    transfer.get_by_role("button", name="Retry").click()

    expect(transfer).to_have_attribute("data-state", "available", timeout=VERDICT_TIMEOUT)
    assert outcomes_by_part(storage) == {1: ["stored"], 2: ["failed"] * 5 + ["stored"], 3: ["stored"], 4: ["stored"]}
    assert_stored_intact(user, data, pending.id)
    assert_bars_only_moved_forward(tab, final=len(data))
    assert_only_refusals_from(tab, storage.url)
