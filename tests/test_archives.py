"""ZIP archives are judged from their end record, central directory and each entry's first bytes, before
anything is extracted or scanned."""

import io
import tracemalloc
import zipfile

import pytest

from tests import hostile_zips as zips
from tests.hostile_zips import bomb, make_zip, many_entries, nested_eicar, symlink_zip
from webapp import storage as store
from webapp.scanning.archives import ZIP_READ_AHEAD_BYTES, ArchiveRejected, check_zip

LIMITS = {"max_entries": 10_000, "max_total_bytes": 1024 * 1024 * 1024, "max_ratio": 100}
MiB = 1024 * 1024


def refusal(data, **limits):
    """The reason check_zip refuses data for (None when it passes)."""
    try:
        check_zip(io.BytesIO(data), **{**LIMITS, **limits})
    except ArchiveRejected as exc:
        return exc.reason
    return None


@pytest.mark.parametrize(
    "data",
    [
        make_zip([("a.txt", b"hello"), ("dir/b.csv", b"x,y\n1,2\n")]),
        make_zip([("photo.png", b"\x89PNG" + b"\0" * 100)]),
        make_zip([("notes.zip", zips.TEXT), ("old.tar.gz", zips.TEXT), ("x.7z", zips.TEXT), ("y.rar", b"")]),
        make_zip([("docs/", b""), ("docs/a.txt", zips.TEXT)]),
        make_zip([("codes.csv", b"070707,Paris\n"), ("who.txt", b"BZhang wrote this\n"), ("b.bin", b"\x60\xea\0")]),
        make_zip([]),
        zips.as_zip64(make_zip([("a.txt", b"hello"), ("b.txt", b"world")])),
        many_entries(10_000),
    ],
    ids=["text", "image", "text-named-as-archives", "folder", "archive-like-text", "empty", "zip64", "10000-entries"],
)
def test_ordinary_archives_pass(data):
    check_zip(io.BytesIO(data), **LIMITS)


@pytest.mark.parametrize(
    "data, reason",
    [
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
    ],
    ids=[
        "dotdot",
        "absolute",
        "inner-dotdot",
        "drive",
        "backslash",
        "symlink",
        "nested",
        "nested-eicar",
        "garbage",
        "truncated",
    ],
)
def test_hostile_archives_are_refused(data, reason):
    with pytest.raises(ArchiveRejected) as info:
        check_zip(io.BytesIO(data), **LIMITS)
    assert info.value.reason == reason


@pytest.mark.parametrize("kind", sorted(zips.HIDDEN))
@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_archives_inside_are_known_by_their_bytes_not_their_names(kind, compression):
    """Before, only names were looked at: a gzip called notes.txt passed."""
    assert refusal(zips.hiding(kind, "notes.txt", compression)) == "zip_nested_archive"


SMALL = make_zip([("a.txt", b"a"), ("b.txt", b"b")])


@pytest.mark.parametrize(
    "data, reason",
    [
        (zips.claiming(SMALL, entries=1), "zip_corrupt"),
        (zips.claiming(SMALL, entries=3), "zip_corrupt"),
        (zips.claiming(SMALL, entries=65535), "zip_too_many_entries"),
        (zips.claiming(SMALL, directory_bytes=0xFFFFFFF0), "zip_directory_too_large"),
        (zips.as_zip64(SMALL, entries=5_000_000), "zip_too_many_entries"),
        (zips.as_zip64(SMALL, directory_bytes=2**40), "zip_directory_too_large"),
        (zips.as_zip64(SMALL, entries=1), "zip_corrupt"),
        (zips.commented(), "zip_directory_too_large"),
        (zips.encrypted(), "zip_encrypted"),
        (zips.encrypted(method=zipfile.ZIP_DEFLATED), "zip_encrypted"),
        (zips.aes_encrypted(), "zip_encrypted"),
        (make_zip([("a.txt", zips.TEXT)], zipfile.ZIP_BZIP2), "zip_unsupported_compression"),
        (make_zip([("a.txt", zips.TEXT)], zipfile.ZIP_LZMA), "zip_unsupported_compression"),
        (zips.overlapping(), "zip_overlapping_entries"),
    ],
    ids=[
        "claims-fewer",
        "claims-more",
        "claims-65535",
        "directory-4gib",
        "zip64-millions",
        "zip64-directory-1tib",
        "zip64-claims-fewer",
        "directory-4.5mb",
        "zipcrypto",
        "zipcrypto-deflated",
        "aes",
        "bzip2",
        "lzma",
        "overlapping",
    ],
)
def test_lies_and_what_cannot_be_checked_are_refused(data, reason):
    assert refusal(data) == reason


class CountingReader(io.BytesIO):
    """A BytesIO that counts its reads (storage.RangedReader makes one GET per read)."""

    reads = 0

    def read(self, size=-1):
        self.reads += 1
        return super().read(size)


def test_a_huge_directory_is_refused_from_the_end_record_without_parsing_it():
    """20,000 entries claimed as 20,000: refused after one read of the tail, with little memory."""
    data = many_entries(20_000)
    reader = CountingReader(data)
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveRejected) as info:
            check_zip(reader, **LIMITS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.reason == "zip_too_many_entries"
    assert reader.reads == 1 and peak < 512 * 1024, (reader.reads, peak)


def test_the_directory_size_limit_is_a_setting():
    data = make_zip([(f"f{n}.txt", b"") for n in range(100)])
    assert refusal(data, max_directory_bytes=1024) == "zip_directory_too_large"
    assert refusal(data, max_directory_bytes=64 * 1024) is None


def test_reads_are_bounded_by_the_archive_size_not_its_entries():
    """10,000 small entries: 2 reads (tail + directory, then the entries in offset order)."""
    data = many_entries(10_000, b"x" * 100)
    reader = CountingReader(data)
    check_zip(reader, **LIMITS)
    assert len(data) > ZIP_READ_AHEAD_BYTES and reader.reads <= 2 + len(data) // ZIP_READ_AHEAD_BYTES + 1, reader.reads


# --- Through the worker, reading the central directory from S3 with ranged GETs ---
# (every hostile archive above also runs end to end in the corpus, tests/hostile_corpus.py)


def test_clean_zip_becomes_available(app, api, run_worker):
    data = make_zip([("notes.txt", b"hello"), ("data/people.csv", b"a,b\n")])
    upload_id = api.upload(data, filename="bundle.zip", content_type="application/zip")
    run_worker()
    assert api.status(upload_id)["status"] == "available"


def test_a_10000_entry_archive_costs_a_handful_of_ranged_gets(app, monkeypatch):
    """Each read of storage.RangedReader is a GET to S3 (moto here): count them."""
    data = many_entries(10_000, b"x" * 100)
    with app.app_context():
        storage = store.get_storage()
        storage.put("incoming/test/archive", data, "application/zip")
        etag = storage.head("incoming/test/archive")["etag"]
        gets = []
        read_range = storage.read_range
        monkeypatch.setattr(
            storage, "read_range", lambda *args, **kwargs: gets.append(args) or read_range(*args, **kwargs)
        )
        check_zip(storage.open_ranged("incoming/test/archive", len(data), etag), **LIMITS)
    assert 2 <= len(gets) <= 4, len(gets)


def test_nested_archive_upload_under_an_innocent_name_is_rejected(app, api, run_worker):
    upload_id = api.upload(zips.hiding("gzip", "notes.txt"), filename="bundle.zip", content_type="application/zip")
    run_worker()
    assert (api.status(upload_id)["status"], api.status(upload_id)["reason"]) == ("rejected", "zip_nested_archive")


def test_bomb_upload_is_rejected_before_clamd_sees_it(app, api, run_worker):
    upload_id = api.upload(bomb(300 * 1024 * 1024), filename="big.zip", content_type="application/zip")
    app.config["CLAMD_URL"] = "tcp://127.0.0.1:9"  # the archive check comes first: clamd is never asked
    run_worker()
    assert api.status(upload_id)["reason"] == "zip_compression_ratio"
