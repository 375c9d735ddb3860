"""clamd's limits fail closed: what clamd does not read whole is never served, SCANNER_MAX_BYTES is
enforced before a byte is sent, and `flask scanner check` proves the configured clamd reads that much.

Each clamd here is real (EICAR-only signatures); the 101 MiB archive is past clamd's default
MaxFileSize (100M), the size at which an unconfigured clamd answers OK without reading it.
"""

import io
import re
import zipfile

import pytest
from sqlalchemy import func, select

from devtools import localservices
from devtools.localservices import clamd_limits
from tests.conftest import Api, bucket_keys
from tests.test_flow import row
from webapp.extensions import db
from webapp.models import Upload
from webapp.models.scanner import ScannerCheck
from webapp.scanning.clamd import EICAR
from webapp.services.scanner_check import last_scanner_check

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
BIG = 101 * MiB


@pytest.fixture
def app_config():
    return {"MULTIPART_THRESHOLD": 256 * MiB}  # the 101 MiB archive goes up in one PUT


@pytest.fixture(scope="module")
def eicar_after_filler():
    """A stored ZIP of just over 101 MiB: a filler entry, then the EICAR test file."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("filler.bin", bytes(BIG))
        archive.writestr("eicar.com", EICAR)
    return out.getvalue()


@pytest.fixture
def admin_api(app, make_user):
    return Api(app.test_client(user=make_user(admin=True)))


def own_clamd(tmp_path_factory, name, limits):
    process, port = localservices.start_clamd(tmp_path_factory.mktemp(name), limits=limits)
    return process, f"tcp://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def default_clamd(tmp_path_factory):
    """clamd with its own default limits, StreamMaxLength alone raised (the old configuration)."""
    process, url = own_clamd(tmp_path_factory, "default-clamd", {"StreamMaxLength": "1024M"})
    yield url
    localservices.stop(process)


@pytest.fixture(scope="module")
def small_clamd(tmp_path_factory):
    """clamd that takes long streams but reads files of 64 MiB at most, and says so."""
    process, url = own_clamd(tmp_path_factory, "small-clamd", {**clamd_limits(64 * MiB), "StreamMaxLength": "1024M"})
    yield url
    localservices.stop(process)


@pytest.fixture(scope="module")
def silent_clamd(tmp_path_factory):
    """clamd whose sizes cover every file but which skips what passes its other limits in silence."""
    process, url = own_clamd(tmp_path_factory, "silent-clamd", {**clamd_limits(BIG), "AlertExceedsMax": "no"})
    yield url
    localservices.stop(process)


def upload_zip(api, data):
    return api.upload(data, filename="archive.zip", content_type="application/zip")


# --- What clamd did not read whole is never served ---


def test_large_zip_with_eicar_last_is_quarantined_by_a_clamd_that_reads_it(app, api, run_worker, eicar_after_filler):
    upload_id = upload_zip(api, eicar_after_filler)
    run_worker()
    info = api.status(upload_id)
    assert (info["status"], info["reason"]) == ("quarantined", "malware")
    assert row(upload_id).signature == "Eicar-Test-Signature.UNOFFICIAL"
    assert api.get(f"/files/{upload_id}/download").status_code == 404  # held for moderation, unserved


def test_large_zip_past_clamd_limits_is_rejected_not_served_nor_malware(
    app, api, run_worker, small_clamd, eicar_after_filler
):
    app.config["CLAMD_URL"] = small_clamd
    upload_id = upload_zip(api, eicar_after_filler)
    run_worker()
    info = api.status(upload_id)
    assert (info["status"], info["reason"]) == ("rejected", "scan_limits_exceeded")
    assert "could not read all of this file" in info["message"]
    assert row(upload_id).signature is None  # a limit alert is no malware verdict
    assert bucket_keys(app) == []  # never promoted, and the refused bytes are gone
    assert api.get(f"/files/{upload_id}/download").status_code == 404


# --- SCANNER_MAX_BYTES: refused before presigning, and before streaming ---


def test_presign_refuses_sizes_past_what_clamd_reads(app, api):
    app.config["SCANNER_MAX_BYTES"] = 10 * MiB
    body = {"filename": "big.txt", "content_type": "text/plain"}
    response = api.post("/api/uploads", json={**body, "size": 10 * MiB + 1})
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "too_large_to_scan"
    assert error["message"] == "The file is larger than the 10485760 bytes the virus scanner can check."
    over = api.post("/api/uploads", json={**body, "size": app.config["MAX_UPLOAD_BYTES"] + 1})
    assert (over.status_code, over.get_json()["error"]["code"]) == (413, "file_too_large")
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 0
    assert api.post("/api/uploads", json={**body, "size": 10 * MiB}).status_code == 201


def test_upload_widget_shows_the_smaller_of_the_two_limits(app, api):
    app.config["SCANNER_MAX_BYTES"] = 10 * MiB
    html = api.get("/files").get_data(as_text=True)
    assert 'data-max-bytes="10485760"' in html and "Up to 10.0 MB each" in html
    app.config["SCANNER_MAX_BYTES"] = 2 * app.config["MAX_UPLOAD_BYTES"]
    html = api.get("/files").get_data(as_text=True)
    assert f'data-max-bytes="{app.config["MAX_UPLOAD_BYTES"]}"' in html


def test_worker_rejects_an_object_past_the_scanner_limit_without_streaming_it(app, api, run_worker):
    upload_id = api.upload(b"x" * (2 * MiB), filename="big.txt")
    # Lowered after the upload was granted; clamd unreachable, so streaming would leave it waiting.
    app.config.update(SCANNER_MAX_BYTES=1 * MiB, CLAMD_URL="tcp://127.0.0.1:9")
    run_worker()
    info = api.status(upload_id)
    assert (info["status"], info["reason"]) == ("rejected", "too_large_to_scan")
    assert info["message"] == "The file is larger than the virus scanner can check."
    assert bucket_keys(app) == []


# --- flask scanner check ---


def run_check(app, clamd_url, size=BIG):
    app.config.update(CLAMD_URL=clamd_url, SCANNER_MAX_BYTES=size)
    result = app.test_cli_runner().invoke(args=["scanner", "check"])
    db.session.expire_all()
    return result, db.session.scalars(select(ScannerCheck).order_by(ScannerCheck.id.desc())).first()


def test_check_fails_on_a_clamd_that_answers_ok_without_reading_the_file(app, default_clamd):
    result, check = run_check(app, default_clamd)
    assert result.exit_code == 1, result.output
    assert f"FAIL  clamd answered 'stream: OK' for a ZIP of {BIG} bytes" in result.output
    assert (check.ok, check.reply, check.max_bytes) == (False, "stream: OK", BIG)


def test_check_fails_on_a_limit_alert(app, small_clamd):
    result, check = run_check(app, small_clamd)
    assert result.exit_code == 1
    assert check.reply == "stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND" and not check.ok


def test_check_fails_on_a_clamd_that_reads_the_size_but_hides_its_other_limits(app, silent_clamd):
    # The attack it stands for: EICAR past MaxRecursion (or MaxFiles, MaxScanTime) would pass as clean.
    from webapp.scanning.clamd import ClamdClient
    from webapp.services.scanner_check import nested_archive

    assert ClamdClient(silent_clamd).instream([nested_archive()]) == "stream: OK"
    result, check = run_check(app, silent_clamd)
    assert result.exit_code == 1, result.output
    assert not check.ok
    assert check.reply == "stream: OK for EICAR 64 archives deep (AlertExceedsMax is off)"


def test_check_fails_when_clamd_is_unreachable(app):
    result, check = run_check(app, "tcp://127.0.0.1:9")
    assert result.exit_code == 1
    assert not check.ok and check.reply.startswith("clamd unreachable")


def test_check_passes_on_a_clamd_that_reads_the_whole_file(app, services):
    result, check = run_check(app, services["clamd"])
    assert result.exit_code == 0, result.output
    assert re.search(
        rf"OK    clamd answered 'stream: Eicar-Test-Signature.UNOFFICIAL FOUND' for a ZIP of {BIG} "
        r"bytes \(EICAR after a filler entry\) in \d+\.\d s",
        result.output,
    )
    assert check.ok and check.version.startswith("ClamAV") and check.seconds > 0


def test_dashboard_shows_the_last_check_and_warns_until_one_passes(app, admin_api, services, default_clamd):
    html = admin_api.get("/admin").get_data(as_text=True)
    assert last_scanner_check() is None
    assert "No scanner check yet" in html.split('id="scanner-check"')[1]

    run_check(app, default_clamd)
    section = admin_api.get("/admin").get_data(as_text=True).split('id="scanner-check"')[1].split("</div>")[0]
    assert 'class="error"' in section and "Scanner check FAILED" in section and "101.0 MB" in section
    assert "<code>stream: OK</code>" in section

    run_check(app, services["clamd"])
    section = admin_api.get("/admin").get_data(as_text=True).split('id="scanner-check"')[1].split("</div>")[0]
    assert re.search(r'<p class="ok">\s*Scanner check passed on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC', section)
    assert "Eicar-Test-Signature.UNOFFICIAL FOUND" in section and 'class="error"' not in section
    last = last_scanner_check()
    assert (last["ok"], last["max_bytes"], last["covers_setting"]) == (True, BIG, True)

    app.config["SCANNER_MAX_BYTES"] = BIG + 1  # raised since: the check no longer proves it
    assert last_scanner_check()["covers_setting"] is False
    section = admin_api.get("/admin").get_data(as_text=True).split('id="scanner-check"')[1].split("</div>")[0]
    assert "more than the check proved" in section
