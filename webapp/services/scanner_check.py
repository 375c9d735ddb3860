"""The scanner check: prove that clamd reads a file of SCANNER_MAX_BYTES whole, and says so when
it does not read something, and remember it."""

import io
import time
import zipfile

from flask import current_app
from sqlalchemy import select

from webapp.extensions import db
from webapp.models.scanner import ScannerCheck
from webapp.scanning.clamd import (
    EICAR,
    ClamdClient,
    ScanAborted,
    ScanIncomplete,
    ScanLimitsExceeded,
    ScannerUnavailable,
    parse_instream_reply,
)

#: Bytes of filler handed to clamd at a time: the test archive is never held whole.
BLOCK = 1024 * 1024
FILLER_NAME = "filler.bin"
EICAR_NAME = "eicar.com"
#: ZIPs around ZIPs around EICAR in the alert probe: deeper than clamd's MaxRecursion (17 by default).
ALERT_DEPTH = 64


class _Spool:
    """A write-only file that keeps what the ZIP writer wrote until it is taken."""

    def __init__(self):
        self.parts, self.written = [], 0

    def write(self, data):
        self.parts.append(bytes(data))
        self.written += len(data)
        return len(data)

    def tell(self):
        return self.written

    def flush(self):
        pass

    def take(self):
        data, self.parts = b"".join(self.parts), []
        return data


def _archive_chunks(filler_bytes):
    """Chunks of the test archive with a filler entry of filler_bytes zeros."""
    spool = _Spool()
    # Written to an unseekable file, so entries carry data descriptors; clamd reads them from the
    # central directory, which comes last: the whole stream must be read to find EICAR.
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_STORED) as archive:
        filler = zipfile.ZipInfo(FILLER_NAME)
        filler.file_size = filler_bytes  # fixes the header layout (ZIP64 or not) before writing
        block = bytes(BLOCK)
        with archive.open(filler, "w") as entry:
            for start in range(0, filler_bytes, BLOCK):
                entry.write(block[: min(BLOCK, filler_bytes - start)])
                yield spool.take()
        archive.writestr(EICAR_NAME, EICAR)
    yield spool.take()


def padded_archive(total_bytes):
    """Chunks of a stored ZIP of exactly total_bytes: a filler entry, then the EICAR test file."""
    # Below ZIP64 sizes (clamd reads nothing past 2 GiB anyway) the headers do not depend on the
    # filler's size, so an archive with an empty filler measures them.
    overhead = sum(len(chunk) for chunk in _archive_chunks(0))
    if not overhead <= total_bytes < 2**31:
        raise ValueError(f"a test archive takes {overhead} to {2**31 - 1} bytes, not {total_bytes}")
    return _archive_chunks(total_bytes - overhead)


def nested_archive(depth=ALERT_DEPTH):
    """The EICAR test file inside depth levels of stored ZIPs (a few KiB)."""
    data, name = EICAR, EICAR_NAME
    for level in range(depth):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(name, data)
        data, name = out.getvalue(), f"level-{level}.zip"
    return data


def judge_alert_reply(reply):
    """True when clamd either found EICAR deep down or said it stopped short (AlertExceedsMax)."""
    try:
        parse_instream_reply(reply)
    except ScanLimitsExceeded:
        return True
    except (ScanIncomplete, ScanAborted):
        return False
    return judge_reply(reply)


def judge_reply(reply):
    """True only when clamd reported the test signature (not a limit alert, not OK, not an error)."""
    try:
        name = parse_instream_reply(reply)
    except (ScanIncomplete, ScanAborted):
        return False
    return name is not None and "eicar" in name.lower()


def check_scanner():
    """Stream a test archive of SCANNER_MAX_BYTES to clamd, record the outcome as a ScannerCheck
    row and return it."""
    config = current_app.config
    size = config["SCANNER_MAX_BYTES"]
    client = ClamdClient(config["CLAMD_URL"], timeout=config["CLAMD_TIMEOUT"])
    version, started = None, time.monotonic()
    try:
        version = client.version()
        started = time.monotonic()
        reply = client.instream(padded_archive(size))
        ok = judge_reply(reply)
        if ok:
            # Limits the size probe cannot reach (recursion, file counts, scan time): clamd must say
            # when it stops short, or whatever hides past a limit would pass as clean.
            alert = client.instream([nested_archive()])
            if not judge_alert_reply(alert):
                ok, reply = False, f"{alert} for EICAR {ALERT_DEPTH} archives deep (AlertExceedsMax is off)"
    except (ScannerUnavailable, ScanAborted, ValueError) as exc:
        ok, reply = False, str(exc)
    check = ScannerCheck(
        ok=ok,
        max_bytes=size,
        reply=reply[:255],
        version=version and version[:255],
        seconds=round(time.monotonic() - started, 3),
    )
    db.session.add(check)
    db.session.commit()
    return check


def last_scanner_check():
    """The latest scanner check as a dict (None if there was none); "covers_setting" is False when
    it proved a smaller size than SCANNER_MAX_BYTES is now."""
    check = db.session.scalar(
        select(ScannerCheck).order_by(ScannerCheck.checked_at.desc(), ScannerCheck.id.desc()).limit(1)
    )
    if check is None:
        return None
    return {
        "ok": check.ok,
        "checked_at": check.checked_at.isoformat(),
        "max_bytes": check.max_bytes,
        "covers_setting": check.max_bytes >= current_app.config["SCANNER_MAX_BYTES"],
        "reply": check.reply,
        "version": check.version,
        "seconds": check.seconds,
    }
