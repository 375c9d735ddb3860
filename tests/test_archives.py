"""ZIP archives are judged from their central directory before anything is extracted."""
import io

import pytest

from tests.hostile_corpus import bomb, make_zip, nested_eicar, symlink_zip
from webapp.scanning import ArchiveRejected, check_zip

LIMITS = {"max_entries": 10_000, "max_total_bytes": 1024 * 1024 * 1024, "max_ratio": 100}


@pytest.mark.parametrize("data", [
    make_zip([("a.txt", b"hello"), ("dir/b.csv", b"x,y\n1,2\n")]),
    make_zip([("photo.png", b"\x89PNG" + b"\0" * 100)]),
], ids=["text", "image"])
def test_ordinary_archives_pass(data):
    check_zip(io.BytesIO(data), **LIMITS)


@pytest.mark.parametrize("data, reason", [
    (make_zip([("../../etc/passwd", b"x")]), "zip_path_traversal"),
    (make_zip([("/etc/passwd", b"x")]), "zip_path_traversal"),
    (make_zip([("dir/../../x", b"x")]), "zip_path_traversal"),
    (make_zip([("C:/Windows/x.dll", b"x")]), "zip_path_traversal"),
    (make_zip([("..\\evil.txt", b"x")]), "zip_path_traversal"),
    (symlink_zip(), "zip_symlink"),
    (make_zip([("inner.zip", make_zip([("a", b"a")]))]), "zip_nested_archive"),
    (nested_eicar(), "zip_nested_archive"),
    (b"PK\x03\x04 not really a zip at all", "zip_corrupt"),
    (make_zip([("a.txt", b"hello")])[:-30], "zip_corrupt"),
], ids=["dotdot", "absolute", "inner-dotdot", "drive", "backslash", "symlink", "nested", "nested-eicar",
        "garbage", "truncated"])
def test_hostile_archives_are_refused(data, reason):
    with pytest.raises(ArchiveRejected) as info:
        check_zip(io.BytesIO(data), **LIMITS)
    assert info.value.reason == reason


# --- Through the worker, reading the central directory from S3 with ranged GETs ---
# (every hostile archive above also runs end to end in the corpus, tests/hostile_corpus.py)

def test_clean_zip_becomes_available(app, api, run_worker):
    data = make_zip([("notes.txt", b"hello"), ("data/people.csv", b"a,b\n")])
    upload_id = api.upload(data, filename="bundle.zip", content_type="application/zip")
    run_worker()
    assert api.status(upload_id)["status"] == "available"


def test_bomb_upload_is_rejected_before_clamd_sees_it(app, api, run_worker):
    upload_id = api.upload(bomb(300 * 1024 * 1024), filename="big.zip", content_type="application/zip")
    app.config["CLAMD_URL"] = "tcp://127.0.0.1:9"  # the archive check comes first: clamd is never asked
    run_worker()
    assert api.status(upload_id)["reason"] == "zip_compression_ratio"
