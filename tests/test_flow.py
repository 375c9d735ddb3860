"""The scan pipeline end to end: real S3 (moto), real clamd, real Redis, the real RQ job code."""

import hashlib
import re

import pytest
import requests
from sqlalchemy import select

from tests.conftest import RESOURCES, bucket_keys
from tests.hostile_corpus import png
from webapp.extensions import db
from webapp.models import Upload
from webapp.models.base import utcnow
from webapp.queue import SCAN_BACKLOG, SCANS, get_queue, scan_job_id
from webapp.scanning.clamd import EICAR
from webapp.services import maintenance
from webapp.services.scans import VERSION_MAX_AGE, scanner_version
from webapp.storage import get_storage


def download(api, upload_id):
    response = api.get(f"/files/{upload_id}/download")
    assert response.status_code == 302, response.status_code
    return requests.get(response.headers["Location"], timeout=10)


def row(upload_id):
    db.session.expire_all()
    return db.session.get(Upload, upload_id)


def test_text_file_becomes_available_and_downloads_identical(app, api, run_worker, user):
    data = b"line one\nline two\n" * 100
    upload_id = api.upload(data, filename="Résumé notes.txt")
    run_worker()
    info = api.status(upload_id)
    assert info["status"] == "available"
    assert info["detected_type"] == "text/plain"
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    got = download(api, upload_id)
    assert got.content == data
    assert got.headers["Content-Type"] == "text/plain"
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Resume notes.txt"')
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20notes.txt" in disposition
    assert bucket_keys(app, "incoming/") == []
    [key] = bucket_keys(app, "files/")
    assert re.fullmatch(rf"files/{user.id}/{re.escape(upload_id)}-[0-9a-f]{{16}}\.txt", key)
    assert row(upload_id).file_key == key


@pytest.mark.parametrize(
    "name, content_type, ext",
    [
        ("tiny.png", "image/png", "png"),
        ("tiny.jpg", "image/jpeg", "jpg"),
        ("tiny.pdf", "application/pdf", "pdf"),
        ("people.csv", "text/csv", "csv"),
    ],
)
def test_allowed_samples_become_available(app, api, run_worker, user, name, content_type, ext):
    data = (RESOURCES / name).read_bytes()
    upload_id = api.upload(data, filename=name, content_type=content_type)
    run_worker()
    info = api.status(upload_id)
    assert info["status"] == "available", info
    assert info["detected_type"] == content_type
    assert re.fullmatch(rf"files/{user.id}/{re.escape(upload_id)}-[0-9a-f]{{16}}\.{ext}", row(upload_id).file_key)
    assert download(api, upload_id).content == data


def test_pixel_flood_is_rejected(app, api, run_worker):
    app.config["MAX_IMAGE_PIXELS"] = 10_000
    upload_id = api.upload(png((200, 200), "L"), filename="big.png", content_type="image/png")
    run_worker()
    assert api.status(upload_id)["reason"] == "image_too_many_pixels"


def test_bytes_rewritten_after_scan_are_never_served(app, api, run_worker):
    original = b"the scanned, clean content"
    grant = api.begin(size=len(original))
    requests.put(grant["url"], data=original, headers=grant["headers"], timeout=10)
    upload_id = grant["upload"]["id"]
    assert api.post(f"/api/uploads/{upload_id}/complete").status_code == 202
    run_worker()
    assert api.status(upload_id)["status"] == "available"
    # The upload URL is still valid: an attacker rewrites the bytes after the scan.
    evil = b"X" * len(original)
    assert requests.put(grant["url"], data=evil, headers=grant["headers"], timeout=10).status_code == 200
    assert download(api, upload_id).content == original


def test_scan_job_is_idempotent(app, api, run_worker):
    upload_id = api.upload(b"run me twice")
    run_worker()
    first = row(upload_id)
    assert first.status == "available"
    scanned_at = first.scanned_at
    # A duplicate delivery of the same job changes nothing.
    get_queue().enqueue("webapp.jobs.scan_upload", upload_id)
    run_worker()
    again = row(upload_id)
    assert again.status == "available"
    assert again.scanned_at == scanned_at
    assert download(api, upload_id).content == b"run me twice"


def test_scanner_down_keeps_file_unserved_and_retries(app, api, run_worker):
    clamd = app.config["CLAMD_URL"]
    app.config["CLAMD_URL"] = "tcp://127.0.0.1:9"  # nothing listens on the discard port
    upload_id = api.upload(EICAR, filename="later.txt")
    run_worker()
    # Back in line for a scan; clamd being down does not count against the file.
    assert api.status(upload_id)["status"] == "uploaded"
    assert row(upload_id).scan_failures == 0
    assert api.get(f"/files/{upload_id}/download").status_code == 404
    queue = get_queue()
    job = queue.fetch_job(f"scan-{upload_id}")
    assert job is not None and job.get_status() == "scheduled"  # retried with backoff
    assert bucket_keys(app, "files/") == []
    # clamd is back: the retry scans it (and catches it).
    app.config["CLAMD_URL"] = clamd
    queue.scheduled_job_registry.requeue(job.id)
    run_worker()
    assert api.status(upload_id)["status"] == "quarantined"


def test_object_deleted_before_scan_is_rejected(app, api, run_worker):
    upload_id = api.upload(b"soon gone")
    get_storage().delete(row(upload_id).incoming_key)
    run_worker()
    assert api.status(upload_id)["reason"] == "object_missing"


def test_delete_available_file_removes_objects_and_row(app, api, run_worker):
    upload_id = api.upload((RESOURCES / "tiny.png").read_bytes(), filename="t.png", content_type="image/png")
    run_worker()
    assert len(bucket_keys(app)) == 3  # the file, its preview and its copy for share links
    response = api.form_post(f"/files/{upload_id}/delete")
    assert response.status_code == 302
    assert bucket_keys(app) == []
    assert db.session.scalar(select(Upload).where(Upload.id == upload_id)) is None


def test_delete_while_scan_pending_leaves_nothing(app, api, run_worker):
    upload_id = api.upload(b"delete me before the scan")
    assert api.delete(f"/api/uploads/{upload_id}").status_code == 204
    run_worker()
    assert bucket_keys(app) == []


class TestMultipart:
    """Large files go up in parts."""

    @pytest.fixture
    def app_config(self):
        return {"MULTIPART_THRESHOLD": 6 * 1024 * 1024, "MULTIPART_PART_SIZE": 5 * 1024 * 1024}

    def test_multipart_upload_flow(self, app, api, run_worker):
        data = (b"multipart line\n" * 900_000)[: 12 * 1024 * 1024 + 7]
        grant = api.begin("big.txt", len(data), "text/plain")
        assert "url" not in grant
        assert grant["multipart"] == {"part_size": 5 * 1024 * 1024, "part_count": 3}
        upload_id = grant["upload"]["id"]
        response = api.post(f"/api/uploads/{upload_id}/parts", json={"part_numbers": [1, 2, 3]})
        assert response.status_code == 200
        urls = response.get_json()["parts"]
        parts = []
        size = grant["multipart"]["part_size"]
        for number in (1, 2, 3):
            chunk = data[(number - 1) * size : number * size]
            put = requests.put(urls[str(number)], data=chunk, timeout=30)
            assert put.status_code == 200
            parts.append({"part_number": number, "etag": put.headers["ETag"]})
        bad = api.post(f"/api/uploads/{upload_id}/complete", json={"parts": parts[:2]})
        assert bad.status_code == 422
        assert bad.get_json()["error"]["code"] == "invalid_parts"
        done = api.post(f"/api/uploads/{upload_id}/complete", json={"parts": parts})
        assert done.status_code == 202
        run_worker()
        assert api.status(upload_id)["status"] == "available"
        assert hashlib.sha256(download(api, upload_id).content).digest() == hashlib.sha256(data).digest()

    def test_parts_are_refused_for_out_of_range_numbers(self, app, api):
        grant = api.begin("big.txt", 7 * 1024 * 1024, "text/plain")
        response = api.post(f"/api/uploads/{grant['upload']['id']}/parts", json={"part_numbers": [3]})
        assert response.status_code == 422

    def test_aborting_a_multipart_upload(self, app, api):
        grant = api.begin("big.txt", 7 * 1024 * 1024, "text/plain")
        upload_id = grant["upload"]["id"]
        assert api.delete(f"/api/uploads/{upload_id}").status_code == 204
        uploads = get_storage().client.list_multipart_uploads(Bucket=app.config["S3_BUCKET"])
        assert not uploads.get("Uploads")


class TestScanningDisabled:
    """Development without clamd: type checks still run, and every page says scanning is off."""

    @pytest.fixture
    def app_config(self):
        return {"SCANNER": "disabled"}

    def test_files_become_available_and_banner_shows(self, app, api, run_worker):
        upload_id = api.upload(b"unscanned but typed")
        run_worker()
        assert api.status(upload_id)["status"] == "available"
        for url in ("/files", f"/files/{upload_id}"):
            assert "Virus scanning is disabled" in api.get(url).get_data(as_text=True)
        anonymous = app.test_client()
        assert "Virus scanning is disabled" in anonymous.get("/auth/login").get_data(as_text=True)

    def test_types_are_still_checked(self, app, api, run_worker):
        upload_id = api.upload(b"<html><script></script></html>", filename="a.png", content_type="image/png")
        run_worker()
        assert api.status(upload_id)["status"] == "rejected"


def _break_storage(app):
    """Point the app at an S3 endpoint where nothing listens (connection refused at once)."""
    app.config["S3_ENDPOINT_URL"] = "http://127.0.0.1:9"
    app.extensions.pop("satchel.storage", None)


def test_storage_down_at_complete_is_503_and_nothing_changes(app, api):
    grant = api.begin(size=5)
    requests.put(grant["url"], data=b"12345", headers=grant["headers"], timeout=10)
    _break_storage(app)
    response = api.post(f"/api/uploads/{grant['upload']['id']}/complete")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "storage_unavailable"
    assert row(grant["upload"]["id"]).status == "pending"


def test_presigning_works_while_storage_is_down(app, api):
    _break_storage(app)
    grant = api.begin(size=5)  # signing is local
    assert grant["url"].startswith("http://127.0.0.1:9/")


def test_storage_down_during_scan_retries_and_serves_nothing(app, api, run_worker):
    upload_id = api.upload(b"storage goes away")
    endpoint = app.config["S3_ENDPOINT_URL"]
    _break_storage(app)
    run_worker()
    assert (row(upload_id).status, row(upload_id).scan_failures) == ("uploaded", 0)
    queue = get_queue()
    assert queue.fetch_job(f"scan-{upload_id}").get_status() == "scheduled"
    # Storage comes back; the retry (due later) is run now and finishes the upload.
    app.config["S3_ENDPOINT_URL"] = endpoint
    app.extensions.pop("satchel.storage", None)
    queue.scheduled_job_registry.requeue(f"scan-{upload_id}")
    run_worker()
    assert row(upload_id).status == "available"
    assert download(api, upload_id).content == b"storage goes away"


# --- Races: every run of a scan is at-least-once and may overlap with another or with a delete ---


def _claim(upload_id, job_id):
    from webapp.services.scans import _claim as claim

    return claim(upload_id, job_id)


def _run(upload_id, token):
    from webapp.services.scans import _run_pipeline

    return _run_pipeline(row(upload_id), token)


SECOND = b"second version, same size"


def test_a_stale_run_cannot_replace_what_the_winner_promoted(app, api, run_worker):
    original = b"clean bytes that were scanned"
    grant = api.begin(size=len(original))
    requests.put(grant["url"], data=original, headers=grant["headers"], timeout=10)
    upload_id = grant["upload"]["id"]
    api.post(f"/api/uploads/{upload_id}/complete")
    stale_token = _claim(upload_id, "stale-run")  # a run that stalls after claiming the row
    run_worker()  # a second delivery takes the row over and promotes it
    assert row(upload_id).status == "available"
    # The stale run resumes after the bytes were rewritten through the still-valid URL.
    evil = b"Z" * len(original)
    requests.put(grant["url"], data=evil, headers=grant["headers"], timeout=10)
    assert _run(upload_id, stale_token) is None
    assert download(api, upload_id).content == original
    assert row(upload_id).sha256 == hashlib.sha256(original).hexdigest()
    assert bucket_keys(app, "files/") == [row(upload_id).file_key]


def test_a_scan_that_loses_to_a_delete_removes_its_own_copy(app, api):
    upload_id = api.upload((RESOURCES / "tiny.png").read_bytes(), filename="t.png", content_type="image/png")
    token = _claim(upload_id, "slow-run")
    upload = row(upload_id)
    upload.status = "deleted"  # delete_upload's first step, committed before the scan finishes
    db.session.commit()
    assert _run(upload_id, token) is None
    assert bucket_keys(app, "files/") == [] and bucket_keys(app, "derivatives/") == []


def test_bytes_changed_between_scan_and_copy_are_scanned_again(app, api, run_worker, monkeypatch):
    from webapp.storage import Storage

    first = b"first version of the text"
    assert len(first) == len(SECOND)
    upload_id = api.upload(first)
    url = get_storage().client.generate_presigned_url(
        "put_object", Params={"Bucket": app.config["S3_BUCKET"], "Key": row(upload_id).incoming_key}
    )
    real_copy = Storage.copy
    rewrites = []

    def copy_after_rewrite(self, source, dest, if_match, content_type, size):
        # Someone rewrites the object between the scan and the promotion copy.
        if len(rewrites) < 1:
            rewrites.append(requests.put(url, data=SECOND, timeout=10).status_code)
        return real_copy(self, source, dest, if_match, content_type, size)

    monkeypatch.setattr(Storage, "copy", copy_after_rewrite)
    run_worker()
    assert rewrites == [200]
    info = api.status(upload_id)
    assert info["status"] == "available"
    # What is served is what was scanned last, never the unscanned rewrite of the first pass.
    assert info["sha256"] == hashlib.sha256(SECOND).hexdigest()
    assert download(api, upload_id).content == SECOND
    assert len(bucket_keys(app, "files/")) == 1


def test_bytes_that_keep_changing_are_rejected(app, api, run_worker, monkeypatch):
    # A store that honours CopySourceIfMatch refuses every copy of an object that keeps changing.
    from webapp.storage import PreconditionFailed, Storage

    upload_id = api.upload(b"0123456789")
    url = get_storage().client.generate_presigned_url(
        "put_object", Params={"Bucket": app.config["S3_BUCKET"], "Key": row(upload_id).incoming_key}
    )
    versions = iter(range(100))

    def copy_after_rewrite(self, source, dest, if_match, content_type, size):
        requests.put(url, data=b"%010d" % next(versions), timeout=10)
        raise PreconditionFailed("the source changed")

    monkeypatch.setattr(Storage, "copy", copy_after_rewrite)
    run_worker()
    assert api.status(upload_id)["reason"] == "modified_during_scan"
    assert bucket_keys(app, "files/") == []


def test_bytes_rewritten_before_the_copy_are_the_bytes_scanned_and_served(app, api, run_worker, monkeypatch):
    # moto ignores CopySourceIfMatch: the rewrite is copied, and that copy is what is checked and served.
    from webapp.storage import Storage

    upload_id = api.upload(b"0123456789")
    url = get_storage().client.generate_presigned_url(
        "put_object", Params={"Bucket": app.config["S3_BUCKET"], "Key": row(upload_id).incoming_key}
    )
    real_copy = Storage.copy

    def copy_after_rewrite(self, source, dest, if_match, content_type, size):
        requests.put(url, data=b"abcdefghij", timeout=10)
        return real_copy(self, source, dest, if_match, content_type, size)

    monkeypatch.setattr(Storage, "copy", copy_after_rewrite)
    run_worker()
    upload = row(upload_id)
    assert upload.status == "available"
    served = requests.get(api.get(f"/files/{upload_id}/download").headers["Location"], timeout=10).content
    assert served == b"abcdefghij" and hashlib.sha256(served).hexdigest() == upload.sha256


def test_completing_again_requeues_a_lost_scan(app, api, run_worker):
    upload_id = api.upload(b"the enqueue was lost")
    get_queue().empty()  # as if Redis had been down when complete was first called
    run_worker()
    assert row(upload_id).status == "uploaded"
    assert api.post(f"/api/uploads/{upload_id}/complete").status_code == 202
    run_worker()
    assert api.status(upload_id)["status"] == "available"


def test_stream_over_clamd_limit_is_never_clean(app, api, run_worker, services, tmp_path):
    from devtools import localservices

    process, port = localservices.start_clamd(tmp_path / "small-clamd", stream_max="1M")
    try:
        app.config["CLAMD_URL"] = f"tcp://127.0.0.1:{port}"
        upload_id = api.upload(b"a" * (2 * 1024 * 1024), filename="big.txt")
        run_worker()
    finally:
        localservices.stop(process)
    info = api.status(upload_id)
    assert (info["status"], info["reason"]) == ("rejected", "scan_limits_exceeded")


class TestFairShare:
    """One user's flood of uploads must not starve the others' scans."""

    @pytest.fixture
    def app_config(self):
        return {"SCAN_FAIR_SHARE": 3}

    def test_a_flood_waits_behind_other_users_scans(self, app, api, other_api, run_worker):
        flood = [api.upload(b"flood %d\n" % i, filename=f"flood-{i}.txt") for i in range(10)]
        others = [other_api.upload(b"other %d\n" % i, filename=f"other-{i}.txt") for i in range(2)]
        # The flood's first three join the scan queue in turn; the rest wait on the backlog.
        assert get_queue(SCANS).job_ids == [scan_job_id(i) for i in flood[:3] + others]
        assert get_queue(SCAN_BACKLOG).job_ids == [scan_job_id(i) for i in flood[3:]]
        run_worker()
        scanned = sorted(flood + others, key=lambda upload_id: row(upload_id).scanned_at)
        assert {row(upload_id).status for upload_id in scanned} == {"available"}
        assert set(scanned[:5]) == set(flood[:3] + others)
        # Its files scanned, the same user is back in turn.
        again = api.upload(b"one more\n", filename="again.txt")
        assert get_queue(SCANS).job_ids == [scan_job_id(again)]
        assert get_queue(SCAN_BACKLOG).job_ids == []

    def test_the_reconciler_keeps_the_fair_share(self, app, api, run_worker):
        flood = [api.upload(b"flood %d\n" % i, filename=f"flood-{i}.txt") for i in range(5)]
        for name in (SCANS, SCAN_BACKLOG):
            get_queue(name).empty()  # Redis lost the jobs
        assert maintenance.requeue_stuck(utcnow())[0] == {"requeued": 5}
        assert set(get_queue(SCANS).job_ids) | set(get_queue(SCAN_BACKLOG).job_ids) == {scan_job_id(i) for i in flood}
        assert len(get_queue(SCAN_BACKLOG).job_ids) == 2
        run_worker()
        assert {row(upload_id).status for upload_id in flood} == {"available"}


def test_the_verdict_names_the_scanner_and_its_signatures(app, api, run_worker):
    upload_id = api.upload(b"which engine looked at me?\n")
    run_worker()
    version = row(upload_id).scanner_version
    assert re.fullmatch(r"ClamAV [\d.]+(/\d+/.+)?", version), version  # the tests' own signatures have no version
    assert version in api.get(f"/files/{upload_id}").get_data(as_text=True)


def test_scanner_version_is_asked_once_a_minute_and_survives_a_silent_clamd(app):

    config = dict(app.config)
    first = scanner_version(config, now=1000.0)
    assert first.startswith("ClamAV")
    config["CLAMD_URL"] = "tcp://127.0.0.1:9"  # nothing listens: a new address, never answered
    assert scanner_version(config, now=1000.0) is None
    config["CLAMD_URL"] = app.config["CLAMD_URL"]
    assert scanner_version(config, now=1000.0 + VERSION_MAX_AGE + 1) == first
