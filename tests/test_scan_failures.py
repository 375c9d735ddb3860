"""Job policy: a dependency being down is waited out; a scan that keeps failing on one file ends it."""

import pytest
from sqlalchemy import update

from tests.conftest import RESOURCES, bucket_keys
from tests.test_flow import row
from webapp.extensions import db
from webapp.models import Upload, UploadStatus
from webapp.queue import get_queue
from webapp.services import scans
from webapp.services.scans import scan_upload

PDF = (RESOURCES / "tiny.pdf").read_bytes()


@pytest.fixture
def crashing_parser(monkeypatch):
    """The PDF checker fails on this file the way a parser bug would (not a dependency: it counts)."""

    def crash(data, *budget):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(scans, "check_pdf", crash)


def test_a_scan_that_keeps_failing_ends_rejected_not_looping(app, api, run_worker, crashing_parser):
    upload_id = api.upload(PDF, filename="doc.pdf", content_type="application/pdf")
    run_worker()  # the job's first run fails: counted, back in line, RQ retries it later
    assert (row(upload_id).status, row(upload_id).scan_failures) == ("uploaded", 1)
    assert get_queue().fetch_job(f"scan-{upload_id}").get_status() == "scheduled"
    with pytest.raises(RuntimeError):
        scan_upload(upload_id)
    assert (row(upload_id).status, row(upload_id).scan_failures) == ("uploaded", 2)
    # The third failure is the last: the upload is refused with a reason, its bytes deleted.
    assert scan_upload(upload_id) == UploadStatus.REJECTED
    upload = api.status(upload_id)
    assert (upload["status"], upload["reason"]) == ("rejected", "scan_failed")
    assert "could not be checked" in upload["message"]
    assert bucket_keys(app) == []
    # Later runs (the scheduled retry, the reconciler) find nothing to do.
    assert scan_upload(upload_id) is None
    assert api.get(f"/files/{upload_id}/download").status_code == 404


def test_a_run_that_died_counts_when_the_next_one_claims_it(app, api):
    upload_id = api.upload(b"the worker died while scanning this")
    # What a killed worker leaves: the row claimed by a run that will never finish.
    db.session.execute(update(Upload).where(Upload.id == upload_id).values(status="scanning", scan_token="dead"))
    db.session.commit()
    assert scan_upload(upload_id) == UploadStatus.AVAILABLE
    assert row(upload_id).scan_failures == 1


def test_a_file_that_kills_every_run_is_rejected(app, api):
    upload_id = api.upload(b"every run dies on this one")
    db.session.execute(
        update(Upload).where(Upload.id == upload_id).values(status="scanning", scan_token="dead", scan_failures=2)
    )
    db.session.commit()
    assert scan_upload(upload_id) == UploadStatus.REJECTED
    assert (row(upload_id).reason, row(upload_id).scan_failures) == ("scan_failed", 3)
    assert bucket_keys(app) == []


def test_a_dependency_down_never_counts(app, api):
    upload_id = api.upload(b"clamd is away for a while")
    clamd = app.config["CLAMD_URL"]
    app.config["CLAMD_URL"] = "tcp://127.0.0.1:9"
    for _ in range(app.config["MAX_SCAN_FAILURES"] + 2):
        with pytest.raises(scans.ScannerUnavailable):
            scan_upload(upload_id)
    assert (row(upload_id).status, row(upload_id).scan_failures) == ("uploaded", 0)
    app.config["CLAMD_URL"] = clamd
    assert scan_upload(upload_id) == UploadStatus.AVAILABLE
