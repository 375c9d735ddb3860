"""Pure logic: filename rules, download names, type consistency, the clamd reply parser, images,
clamd's limits and the scanner check's test archive."""

import io
import socket
import threading
import zipfile

import pytest
from PIL import Image

from devtools.localservices import LaunchError, clamd_limits
from tests.hostile_corpus import png
from webapp.scanning.clamd import (
    EICAR,
    ClamdClient,
    ScanAborted,
    ScanIncomplete,
    ScanLimitsExceeded,
    ScannerUnavailable,
    parse_instream_reply,
)
from webapp.scanning.filetypes import effective_type, types_consistent
from webapp.scanning.images import ImageRejected, check_image
from webapp.services.names import clean_filename, content_disposition, download_name
from webapp.services.refusals import InvalidInput
from webapp.services.scanner_check import judge_reply, padded_archive


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("report.pdf", "report.pdf"),
        ("Cafe\u0301.txt", "Café.txt"),  # NFC
        ("notes.txt. . ", "notes.txt"),
        ("  spaced name.txt", "spaced name.txt"),
        ("日本語のファイル.txt", "日本語のファイル.txt"),
    ],
)
def test_clean_filename_accepts(raw, clean):
    assert clean_filename(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "...",
        ".env",
        "-rf.txt",
        "a/b.txt",
        "a\\b.txt",
        "nul\x00.txt",
        "tab\there.txt",
        "line\nbreak.txt",
        "bidi\u202egnp.exe",
        "iso\u2066late.txt",
        "zero\u200bwidth.txt",
        "x" * 256,
        "é" * 128,
        42,
        None,
    ],
)
def test_clean_filename_refuses(raw):
    with pytest.raises(InvalidInput) as info:
        clean_filename(raw)
    assert info.value.code == "invalid_filename"


@pytest.mark.parametrize(
    "name, ext, expected",
    [
        ("photo.jpeg", "jpg", "photo.jpg"),
        ("archive.tar", "zip", "archive.zip"),
        ("noext", "txt", "noext.txt"),
        ("CON.txt", "txt", "_CON.txt"),
        ("com1.report.txt", "txt", "_com1.report.txt"),
        ('say "hi".txt', "txt", "say hi.txt"),
    ],
)
def test_download_name(name, ext, expected):
    assert download_name(name, ext) == expected


def test_content_disposition_encodes_and_cannot_inject():
    header = content_disposition('naïve "résumé"\r\n.txt')
    assert header.startswith('attachment; filename="naive _resume___.txt"')
    assert "filename*=UTF-8''na%C3%AFve%20%22r%C3%A9sum%C3%A9%22%0D%0A.txt" in header
    assert "\r" not in header and "\n" not in header
    assert content_disposition("日本.txt") == (
        "attachment; filename=\"download.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"
    )


@pytest.mark.parametrize(
    "declared, detected, ok",
    [
        ("image/png", "image/png", True),
        ("image/jpg", "image/jpeg", True),
        ("text/csv", "text/plain", True),
        ("text/plain", "text/csv", True),
        ("image/png", "text/html", False),
        ("application/pdf", "image/png", False),
        ("application/zip", "application/x-zip-compressed", True),
    ],
)
def test_types_consistent(declared, detected, ok):
    assert types_consistent(declared, detected) is ok


def test_effective_type_keeps_csv():
    assert effective_type("text/csv", "text/plain") == "text/csv"
    assert effective_type("text/plain", "text/plain") == "text/plain"


@pytest.mark.parametrize(
    "reply, result",
    [
        ("stream: OK", None),
        ("stream: Eicar-Test-Signature FOUND", "Eicar-Test-Signature"),
        ("stream: Win.Test.EICAR_HDB-1 FOUND", "Win.Test.EICAR_HDB-1"),
    ],
)
def test_parse_instream_reply(reply, result):
    assert parse_instream_reply(reply) == result


@pytest.mark.parametrize(
    "reply",
    [
        "INSTREAM size limit exceeded. ERROR",
        "stream: OK extra",
        "OK",
        "stream:  FOUND",
        "stream: Something ERROR",
        "garbage",
    ],
)
def test_parse_instream_reply_refuses_anything_else(reply):
    with pytest.raises(ScanIncomplete):
        parse_instream_reply(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND",
        "stream: Heuristics.Limits.Exceeded.MaxScanSize FOUND",
        "stream: Heuristics.Limits.Exceeded.MaxFiles FOUND",
        "stream: Heuristics.Limits.Exceeded.MaxRecursion FOUND",
        "stream: Heuristics.Limits.Exceeded.MaxScanTime FOUND",
        "INSTREAM size limit exceeded. ERROR",
    ],
)
def test_a_limit_reply_is_not_a_verdict(reply):
    # Neither malware nor clean: clamd stopped reading before the end of the file.
    with pytest.raises(ScanLimitsExceeded):
        parse_instream_reply(reply)


def test_empty_reply_means_the_scan_was_cut_off():
    with pytest.raises(ScanAborted):
        parse_instream_reply("")


def test_unreachable_clamd_is_unavailable_not_clean():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ScannerUnavailable):
        ClamdClient(f"tcp://127.0.0.1:{port}", timeout=1).scan_stream([b"data"])


def test_silent_clamd_times_out_and_counts():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    thread.start()
    try:
        with pytest.raises(ScanAborted, match="did not answer within 0.5s"):
            ClamdClient(f"tcp://127.0.0.1:{server.getsockname()[1]}", timeout=0.5).scan_stream([b"x"])
    finally:
        thread.join(2)
        for conn, _ in accepted:
            conn.close()
        server.close()


def test_check_image_makes_a_png_thumbnail():
    thumb = Image.open(io.BytesIO(check_image(png((1000, 500)), 40_000_000, 320)))
    assert thumb.format == "PNG" and thumb.size == (320, 160)


@pytest.mark.parametrize(
    "data, reason",
    [
        (png((300, 300)), "image_too_many_pixels"),
        (png((100, 100))[:60], "image_corrupt"),
        (b"GIF89a" + b"\x00" * 20, "image_corrupt"),
    ],
    ids=["pixel-flood", "truncated-png", "bogus-gif"],
)
def test_check_image_refuses(data, reason):
    with pytest.raises(ImageRejected) as info:
        check_image(data, 50_000, 320)
    assert info.value.reason == reason


MiB = 1024 * 1024


def test_clamd_limits_cover_a_stream_and_what_it_unpacks():
    assert clamd_limits(512 * MiB, 1024 * MiB, 10_000) == {
        "StreamMaxLength": "512M",
        "MaxFileSize": "1024M",
        "MaxScanSize": "1536M",
        "MaxFiles": "10000",
        "MaxRecursion": "17",
        "AlertExceedsMax": "yes",
    }
    # A stored archive unpacks to its own size at least; odd sizes are written in bytes.
    limits = clamd_limits(101 * MiB + 1)
    assert (limits["StreamMaxLength"], limits["MaxFileSize"], limits["MaxScanSize"]) == (
        str(101 * MiB + 1),
        str(101 * MiB + 1),
        str(202 * MiB + 2),
    )


def test_clamd_limits_refuse_what_clamav_cannot_read():
    with pytest.raises(LaunchError, match="cannot read a stream"):
        clamd_limits(1975 * MiB)
    with pytest.raises(LaunchError, match="cannot read a file"):
        clamd_limits(512 * MiB, 2048 * MiB)
    assert clamd_limits(1900 * MiB, 1024 * MiB)["StreamMaxLength"] == "1900M"


@pytest.mark.parametrize("size", [400, 1 * MiB, 3 * MiB + 7])
def test_padded_archive_has_the_exact_size_and_ends_with_eicar(size):
    chunks = list(padded_archive(size))
    assert max(len(chunk) for chunk in chunks) <= MiB + 4096  # streamed, never built whole
    data = b"".join(chunks)
    assert len(data) == size
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = archive.infolist()
        assert [entry.filename for entry in entries] == ["filler.bin", "eicar.com"]
        assert all(entry.compress_type == zipfile.ZIP_STORED for entry in entries)
        assert archive.read("eicar.com") == EICAR
        assert archive.testzip() is None  # CRCs and sizes are right


def test_padded_archive_refuses_impossible_sizes():
    with pytest.raises(ValueError):
        padded_archive(100)
    with pytest.raises(ValueError):
        padded_archive(2**31)


@pytest.mark.parametrize(
    "reply, ok",
    [
        ("stream: Eicar-Test-Signature.UNOFFICIAL FOUND", True),
        ("stream: Win.Test.EICAR_HDB-1 FOUND", True),
        ("stream: OK", False),
        ("stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND", False),
        ("stream: Heuristics.Limits.Exceeded.EICAR FOUND", False),
        ("stream: Win.Trojan.Agent-1 FOUND", False),
        ("INSTREAM size limit exceeded. ERROR", False),
        ("clamd unreachable: [Errno 111] Connection refused", False),
    ],
)
def test_the_scanner_check_passes_only_on_the_test_signature(reply, ok):
    assert judge_reply(reply) is ok
