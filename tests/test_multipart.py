"""Multipart uploads against moto's S3 server: resuming from the parts storage holds, the checks
`complete` makes, abandoned uploads finished or aborted by maintenance, and promotion past the
single-copy limit."""

import hashlib
from datetime import timedelta

import pytest
import requests
from rq.registry import FinishedJobRegistry

from tests.conftest import bucket_keys
from webapp.extensions import db
from webapp.models import Upload, User
from webapp.models.base import utcnow
from webapp.queue import get_queue
from webapp.services.maintenance import run_task
from webapp.storage import MAX_PART, MAX_PARTS, MIN_PART, ObjectMissing, get_storage, part_plan

MiB = 1024 * 1024
PART = 5 * MiB
DATA = (b"multipart resume line\n" * 700_000)[: 2 * PART + 12_345]  # three parts, the last one short


@pytest.fixture
def app_config():
    return {"MULTIPART_THRESHOLD": 6 * MiB, "MULTIPART_PART_SIZE": PART}


def row(upload_id):
    db.session.expire_all()
    return db.session.get(Upload, upload_id)


def part_bytes(number, data=DATA):
    return data[(number - 1) * PART : number * PART]


class Transfer:
    """One multipart upload through the API, part by part."""

    def __init__(self, api, data=DATA, filename="big.txt"):
        self.api, self.data = api, data
        grant = api.begin(filename, len(data), "text/plain")
        assert grant["multipart"] == {"part_size": PART, "part_count": -(-len(data) // PART)}
        self.id = grant["upload"]["id"]
        self.etags = {}

    def urls(self, *numbers):
        response = self.api.post(f"/api/uploads/{self.id}/parts", json={"part_numbers": list(numbers)})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["parts"]

    def send(self, *numbers, body=None):
        for number, url in self.urls(*numbers).items():
            put = requests.put(url, data=part_bytes(int(number), self.data) if body is None else body, timeout=30)
            assert put.status_code == 200, put.text
            self.etags[int(number)] = put.headers["ETag"]

    def held(self):
        response = self.api.get(f"/api/uploads/{self.id}/parts")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["parts"]

    def complete(self, parts="claimed"):
        if parts == "claimed":
            parts = [{"part_number": n, "etag": e} for n, e in sorted(self.etags.items())]
        return self.api.post(f"/api/uploads/{self.id}/complete", json=None if parts is None else {"parts": parts})


def scans_run():
    """Scan jobs that ran to the end."""
    return FinishedJobRegistry(queue=get_queue()).count


def download(api, upload_id):
    response = api.get(f"/files/{upload_id}/download")
    assert response.status_code == 302, response.status_code
    return requests.get(response.headers["Location"], timeout=30).content


def test_resume_lists_held_parts_then_sends_only_the_rest(app, api, run_worker):
    transfer = Transfer(api)
    assert transfer.held() == []
    transfer.send(1, 3)  # the tab closed with part 2 in flight
    held = transfer.held()
    assert [(p["part_number"], p["size"]) for p in held] == [(1, PART), (3, len(DATA) - 2 * PART)]
    assert [p["etag"] for p in held] == [transfer.etags[1], transfer.etags[3]]

    missing = sorted(set(range(1, 4)) - {p["part_number"] for p in held})
    transfer.send(*missing)
    response = transfer.complete()
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["upload"]["status"] == "uploaded"
    run_worker()
    assert row(transfer.id).status == "available"
    assert hashlib.sha256(download(api, transfer.id)).digest() == hashlib.sha256(DATA).digest()
    assert api.get(f"/api/uploads/{transfer.id}/parts").status_code == 409  # no longer a pending multipart upload


def test_complete_without_a_part_list_uses_what_storage_holds(app, api, run_worker):
    transfer = Transfer(api)
    transfer.send(1, 2, 3)
    assert transfer.complete(parts=None).status_code == 202
    run_worker()
    assert row(transfer.id).status == "available"


def test_missing_part_is_refused_and_the_upload_stays_resumable(app, api, user):
    transfer = Transfer(api)
    transfer.send(1, 3)
    transfer.etags[2] = transfer.etags[1]  # a client that believes part 2 went up
    response = transfer.complete()
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "part_missing"
    assert "Part 2" in response.get_json()["error"]["message"]
    assert row(transfer.id).status == "pending"
    assert db.session.get(User, user.id).bytes_reserved == len(DATA)  # still held for the resume
    transfer.send(2)
    assert transfer.complete().status_code == 202


def test_part_of_the_wrong_size_is_refused_until_sent_again(app, api):
    transfer = Transfer(api)
    transfer.send(1, 3)
    transfer.send(2, body=part_bytes(2)[:-1])  # one byte short
    response = transfer.complete()
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "part_size_mismatch" and f"holds {PART - 1} bytes; it must hold {PART}" in error["message"]
    assert [p["size"] for p in transfer.held()] == [PART, PART - 1, len(DATA) - 2 * PART]
    transfer.send(2)
    assert transfer.complete().status_code == 202


def test_a_claimed_etag_that_storage_does_not_hold_is_refused(app, api):
    transfer = Transfer(api)
    transfer.send(1, 2, 3)
    forged = '"0123456789abcdef0123456789abcdef"'
    parts = [{"part_number": n, "etag": forged if n == 2 else e} for n, e in sorted(transfer.etags.items())]
    response = transfer.complete(parts)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "part_changed"
    assert row(transfer.id).status == "pending"


def test_completing_twice_queues_one_scan(app, api, run_worker):
    transfer = Transfer(api)
    transfer.send(1, 2, 3)
    first, second = transfer.complete(), transfer.complete()
    assert (first.status_code, second.status_code) == (202, 202)
    assert second.get_json()["upload"]["status"] == "uploaded"
    assert get_queue().count == 1
    run_worker()
    assert scans_run() == 1
    assert transfer.complete().get_json()["upload"]["status"] == "available"  # and once more, after the verdict


def test_aborting_releases_the_quota_and_the_parts(app, api, user):
    transfer = Transfer(api)
    transfer.send(1)
    assert api.delete(f"/api/uploads/{transfer.id}").status_code == 204
    assert not get_storage().client.list_multipart_uploads(Bucket=app.config["S3_BUCKET"]).get("Uploads")
    assert db.session.get(User, user.id).bytes_reserved == 0
    assert api.get(f"/api/uploads/{transfer.id}/parts").status_code == 404
    assert transfer.complete().status_code == 404


@pytest.mark.parametrize("numbers", [[0], [4], [-1], [10_001], ["1"], [True], [], list(range(1, 1002))])
def test_parts_refuses_numbers_out_of_range(app, api, numbers):
    transfer = Transfer(api)
    response = api.post(f"/api/uploads/{transfer.id}/parts", json={"part_numbers": numbers})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_parts"


def test_another_users_upload_has_no_parts(app, api, other_api):
    transfer = Transfer(api)
    transfer.send(1)
    assert other_api.get(f"/api/uploads/{transfer.id}/parts").status_code == 404
    assert other_api.post(f"/api/uploads/{transfer.id}/parts", json={"part_numbers": [2]}).status_code == 404
    assert other_api.post(f"/api/uploads/{transfer.id}/complete", json={"parts": []}).status_code == 404
    assert other_api.get("/api/uploads/not-an-id!/parts").status_code == 404
    assert row(transfer.id).status == "pending"


def test_a_single_put_upload_has_no_parts(app, api):
    grant = api.begin(size=11)
    response = api.get(f"/api/uploads/{grant['upload']['id']}/parts")
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "not_multipart"


def test_parts_answer_when_storage_dropped_the_upload(app, api):
    transfer = Transfer(api)
    upload = row(transfer.id)
    get_storage().abort_multipart(upload.incoming_key, upload.multipart_upload_id)  # its lifecycle rule, say
    response = api.get(f"/api/uploads/{transfer.id}/parts")
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "upload_gone"


def test_list_parts_reads_past_a_thousand(app):
    storage = get_storage()
    upload_id = storage.create_multipart("incoming/1/many-parts", "text/plain")
    for number in range(1, 1003):  # parts may be small until the upload is completed
        storage.client.upload_part(
            Bucket=storage.bucket, Key="incoming/1/many-parts", UploadId=upload_id, PartNumber=number, Body=b"x"
        )
    parts = storage.list_parts("incoming/1/many-parts", upload_id)
    assert [p["part_number"] for p in parts] == list(range(1, 1003))


def test_part_plans_follow_s3_rules():
    GiB = 1024**3
    for size in (1, PART, 6 * MiB, 5 * GiB + 1, 2 * GiB, 48 * GiB + 7, 5 * 1024 * GiB):
        for preferred in (1, 16 * MiB, 10 * GiB):
            part_size, count = part_plan(size, preferred)
            assert MIN_PART <= part_size <= MAX_PART and count <= MAX_PARTS, (size, preferred)
            assert (count - 1) * part_size < size <= count * part_size, (size, preferred)
    assert part_plan(100 * MiB, 16 * MiB) == (16 * MiB, 7)


def test_uploads_past_five_gib_are_always_multipart(app, api):
    app.config.update(MULTIPART_THRESHOLD=10 * 1024**4, MAX_UPLOAD_BYTES=6 * 1024**3, SCANNER_MAX_BYTES=6 * 1024**3)
    app.config["DEFAULT_QUOTA_BYTES"] = 7 * 1024**3
    grant = api.begin("disk.img", 5 * 1024**3 + 1, "text/plain")
    assert "url" not in grant and grant["multipart"]["part_count"] >= 2
    assert api.begin("small.img", 5 * MiB, "text/plain")["url"]


class TestAbandoned:
    """A tab that closed after its last part, or never finished: maintenance's job."""

    def settle(self, app, upload_id):
        """As if the client went quiet UPLOAD_URL_TTL ago (storage's own part times cannot be aged)."""
        upload = row(upload_id)
        upload.created_at = utcnow() - timedelta(hours=1)
        db.session.commit()
        app.config["UPLOAD_URL_TTL"] = -5

    def test_all_parts_held_is_completed_and_scanned_once(self, app, api, run_worker):
        transfer = Transfer(api)
        transfer.send(1, 2, 3)
        assert run_task("promote_pending").counts == {"promoted": 0}  # its parts are fresh: the client may complete
        self.settle(app, transfer.id)
        assert run_task("promote_pending").counts == {"promoted": 1}
        assert run_task("promote_pending").counts == {"promoted": 0}
        assert row(transfer.id).status == "uploaded"
        assert transfer.complete().status_code == 202  # the browser came back after all: harmless
        run_worker()
        assert scans_run() == 1
        assert row(transfer.id).status == "available"
        assert hashlib.sha256(download(api, transfer.id)).digest() == hashlib.sha256(DATA).digest()

    def test_assembled_in_storage_but_never_marked_is_promoted(self, app, api, run_worker):
        transfer = Transfer(api)
        transfer.send(1, 2, 3)
        upload = row(transfer.id)
        # complete's call to storage went through, then its process died before the commit
        get_storage().complete_multipart(
            upload.incoming_key, upload.multipart_upload_id, sorted(transfer.etags.items())
        )
        self.settle(app, transfer.id)
        assert run_task("promote_pending").counts == {"promoted": 1}
        run_worker()
        assert row(transfer.id).status == "available"

    def test_promotion_reaches_past_a_batch_of_older_waiting_uploads(self, app, api, monkeypatch):
        monkeypatch.setattr("webapp.services.maintenance.BATCH", 2)
        waiting = [Transfer(api, filename=f"waiting-{n}.txt") for n in range(3)]  # their parts never came
        arrived = Transfer(api, filename="arrived.txt")
        arrived.send(1, 2, 3)
        for transfer in [*waiting, arrived]:
            self.settle(app, transfer.id)
        assert run_task("promote_pending").counts == {"promoted": 1}
        assert row(arrived.id).status == "uploaded"

    def test_a_planned_upload_storage_never_began_expires(self, app, api, user):
        transfer = Transfer(api)
        upload = row(transfer.id)
        get_storage().abort_multipart(upload.incoming_key, upload.multipart_upload_id)
        upload.multipart_upload_id = None  # as a process that died before recording storage's id leaves it
        db.session.commit()
        assert run_task("expire_pending").counts == {"expired": 0}  # it may be recording it right now
        self.settle(app, transfer.id)
        assert run_task("expire_pending").counts == {"expired": 1}
        db.session.expire_all()
        assert db.session.get(User, user.id).bytes_reserved == 0

    def test_missing_or_short_parts_wait_for_expiry(self, app, api, user):
        short = Transfer(api, filename="short.txt")
        short.send(1, 3)
        short.send(2, body=b"too short")
        partial = Transfer(api, filename="partial.txt")
        partial.send(1)
        for transfer in (short, partial):
            self.settle(app, transfer.id)
        assert run_task("promote_pending").counts == {"promoted": 0}
        assert {row(short.id).status, row(partial.id).status} == {"pending"}
        for transfer in (short, partial):
            row(transfer.id).expires_at = utcnow() - timedelta(seconds=1)
            db.session.commit()
        assert run_task("expire_pending").counts == {"expired": 2}
        assert db.session.get(User, user.id).bytes_reserved == 0
        assert not get_storage().client.list_multipart_uploads(Bucket=app.config["S3_BUCKET"]).get("Uploads")

    def test_orphan_multipart_uploads_are_aborted(self, app, api):
        storage = get_storage()
        orphan = storage.create_multipart("incoming/999/no-row", "text/plain")
        storage.client.upload_part(
            Bucket=storage.bucket, Key="incoming/999/no-row", UploadId=orphan, PartNumber=1, Body=b"lost"
        )
        owned = Transfer(api)
        owned.send(1)
        expired = Transfer(api, filename="expired.txt")
        row(expired.id).status = "expired"  # as if expire_pending had failed to reach storage
        db.session.commit()
        assert run_task("abort_orphan_multipart").counts == {"multipart_aborted": 2}
        left = storage.client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", [])
        assert [u["UploadId"] for u in left] == [row(owned.id).multipart_upload_id]
        assert run_task("abort_orphan_multipart").counts == {"multipart_aborted": 0}


class TestLargeCopy:
    """Objects past the single-copy limit (5 GiB on S3; 5 MiB here) are promoted by a multipart copy."""

    @pytest.fixture
    def app_config(self):
        return {"MULTIPART_THRESHOLD": 6 * MiB, "MULTIPART_PART_SIZE": PART, "S3_MAX_SINGLE_COPY": PART}

    def test_promotion_copies_in_parts(self, app, api, run_worker):
        transfer = Transfer(api)
        transfer.send(1, 2, 3)
        assert transfer.complete().status_code == 202
        run_worker()
        upload = row(transfer.id)
        assert upload.status == "available"
        assert hashlib.sha256(download(api, transfer.id)).digest() == hashlib.sha256(DATA).digest()
        assert bucket_keys(app, "files/") == [upload.file_key]
        assert not get_storage().client.list_multipart_uploads(Bucket=app.config["S3_BUCKET"]).get("Uploads")

    def test_a_copy_that_fails_midway_leaves_no_parts(self, app, api):
        storage = get_storage()
        with pytest.raises(ObjectMissing):
            storage.copy("incoming/1/never-written", "files/1/dest.txt", '"abc"', "text/plain", len(DATA))
        assert not storage.client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads")
        assert not storage.exists("files/1/dest.txt")
