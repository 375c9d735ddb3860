"""The bytes served are exactly the bytes scanned, and late writes through a valid upload URL go away."""

import hashlib

import pytest
import requests

from tests.conftest import bucket_keys
from webapp.extensions import db
from webapp.models import Upload
from webapp.scanning.clamd import EICAR
from webapp.services.maintenance import run_task
from webapp.storage import Storage

SCANNED = b"an honest, ordinary text file." * 4
SWAPPED = b"<html>swapped in after the scan" + b"." * (len(SCANNED) - 31)


def md5_etag(data):
    return f'"{hashlib.md5(data).hexdigest()}"'  # noqa: S324 (S3's ETag of a single PUT)


def put(grant, data):
    response = requests.put(grant["url"], data=data, headers=grant["headers"], timeout=10)
    assert response.status_code == 200, response.text
    return response


def upload_with_grant(api, data, filename="notes.txt"):
    grant = api.begin(filename, len(data), "text/plain")
    put(grant, data)
    assert api.post(f"/api/uploads/{grant['upload']['id']}/complete").status_code == 202
    return grant["upload"]["id"], grant


def served(api, upload_id):
    response = api.get(f"/files/{upload_id}/download")
    assert response.status_code == 302, response.status_code
    return requests.get(response.headers["Location"], timeout=10).content


def test_a_same_length_md5_collision_written_after_the_scan_is_never_served(app, api, run_worker, monkeypatch):
    # The attack: once the scan has read the file, the uploader writes other bytes of the same length
    # through the still-valid URL, whose MD5, and so whose ETag, collides with the scanned one. The
    # store stands in for that collision by reporting the scanned ETag for the swapped bytes.
    assert len(SWAPPED) == len(SCANNED)
    upload_id, grant = upload_with_grant(api, SCANNED)
    collision = {md5_etag(SWAPPED): md5_etag(SCANNED)}
    real_iter, real_head, real_copy = Storage.iter_chunks, Storage.head, Storage.copy
    swapped = []

    def iter_then_swap(self, key, etag=None, **kwargs):
        yield from real_iter(self, key, etag=etag, **kwargs)
        if not swapped:
            swapped.append(put(grant, SWAPPED))

    def head(self, key):
        found = real_head(self, key)
        return {**found, "etag": collision.get(found["etag"], found["etag"])}

    def copy(self, *args):
        etag = real_copy(self, *args)
        return collision.get(etag, etag)

    monkeypatch.setattr(Storage, "iter_chunks", iter_then_swap)
    monkeypatch.setattr(Storage, "head", head)
    monkeypatch.setattr(Storage, "copy", copy)
    run_worker()
    monkeypatch.undo()
    assert swapped, "the swap was never written"
    upload = db.session.get(Upload, upload_id)
    assert upload.status == "available"
    assert served(api, upload_id) == SCANNED
    assert upload.sha256 == hashlib.sha256(SCANNED).hexdigest()


@pytest.mark.parametrize("outcome", ["available", "deleted", "quarantined"])
def test_a_late_write_through_a_valid_url_is_removed_within_one_maintenance_run(app, api, run_worker, outcome):
    upload_id, grant = upload_with_grant(api, EICAR if outcome == "quarantined" else SCANNED)
    run_worker()
    incoming_key = db.session.get(Upload, upload_id).incoming_key
    if outcome == "deleted":
        assert api.delete(f"/api/uploads/{upload_id}").status_code == 204
        assert db.session.get(Upload, upload_id) is None  # no row is left to say whose the key was
    else:
        assert db.session.get(Upload, upload_id).status == outcome
    assert incoming_key not in bucket_keys(app, "incoming/")

    put(grant, SWAPPED if outcome != "quarantined" else EICAR)  # the URL is still valid
    assert incoming_key in bucket_keys(app, "incoming/")
    run = run_task("remove_late_writes")
    assert run.counts == {"late_writes_removed": 1}
    assert incoming_key not in bucket_keys(app, "incoming/")
    if outcome == "available":
        assert served(api, upload_id) == SCANNED


def test_objects_still_on_their_way_are_left_alone(app, api, run_worker):
    grant = api.begin("notes.txt", len(SCANNED), "text/plain")
    put(grant, SCANNED)  # uploaded, not completed yet: still pending
    assert run_task("remove_late_writes").counts == {"late_writes_removed": 0}
    upload = db.session.get(Upload, grant["upload"]["id"])
    assert upload.incoming_key in bucket_keys(app, "incoming/")


def test_a_quarantined_file_keeps_its_scanned_copy_and_not_the_browsers_object(app, api, quarantined):
    upload = db.session.get(Upload, quarantined)
    assert bucket_keys(app, "files/") == [upload.file_key]
    assert bucket_keys(app, "incoming/") == []
    assert api.get(f"/files/{quarantined}/download").status_code == 404  # kept, never served
    run_task("sweep_orphans")
    assert bucket_keys(app, "files/") == [upload.file_key]
