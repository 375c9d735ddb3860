"""Content checks: libmagic sniffing, the clamd INSTREAM client, image sanity. No Flask, no DB."""
import io
import logging
import signal
import socket
import struct
import threading
import time
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from urllib.parse import urlparse

import magic
from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader, apply_configuration
from pypdf.errors import LimitReachedError, PdfReadError, PdfStreamError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

# A hostile PDF makes pypdf log a warning for every token it recovers from: tens of thousands of lines.
logging.getLogger("pypdf").setLevel(logging.ERROR)

#: Bytes libmagic sees; enough for every allowed type's signature.
SNIFF_BYTES = 8192

#: libmagic's names for types we know under another name.
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "application/x-zip-compressed": "application/zip",
    "application/x-pdf": "application/pdf",
    "audio/mp3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
    "application/csv": "text/csv",
    "text/x-csv": "text/csv",
}

#: Declared types libmagic may legitimately report as another allowed type.
_COMPATIBLE = {
    "text/csv": {"text/plain", "text/csv"},
    "text/plain": {"text/plain", "text/csv"},
}

RASTER_IMAGES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


class ScannerUnavailable(Exception):
    """clamd could not be reached or did not answer in time: retry later."""


class ScanIncomplete(Exception):
    """clamd could not finish this stream (a garbage reply): never treated as clean."""


class ScanLimitsExceeded(ScanIncomplete):
    """clamd stopped reading at one of its limits (stream length, file or scan size, files, depth)."""


class ScanAborted(Exception):
    """clamd took the stream but timed out or dropped the connection before its verdict (it may
    have crashed on these bytes): a failed scan of this file, unlike ScannerUnavailable."""


#: What clamd calls a file it did not read whole (with AlertExceedsMax), and its INSTREAM overflow.
_LIMITS_FOUND = "Heuristics.Limits.Exceeded"
_STREAM_OVERFLOW = "INSTREAM size limit exceeded"


def normalize_type(mime):
    """Lower-case mime without parameters, with known aliases folded."""
    mime = (mime or "").split(";")[0].strip().lower()
    return _ALIASES.get(mime, mime)


def sniff_type(head):
    """The MIME type libmagic finds in the first bytes of a file."""
    return normalize_type(magic.from_buffer(head, mime=True))


def types_consistent(declared, detected):
    """True when the declared type is what libmagic found (allowing text/csv ~ text/plain)."""
    declared, detected = normalize_type(declared), normalize_type(detected)
    return declared == detected or detected in _COMPATIBLE.get(declared, ())


def effective_type(declared, detected):
    """The type to serve: the detected one, except CSV that libmagic calls plain text."""
    declared, detected = normalize_type(declared), normalize_type(detected)
    if declared == "text/csv" and detected == "text/plain":
        return "text/csv"
    return detected


class ClamdClient:
    """A minimal clamd client speaking INSTREAM over TCP or a Unix socket."""

    def __init__(self, url, timeout=30.0, chunk_size=64 * 1024):
        self.url = url
        self.timeout = timeout
        self.chunk_size = chunk_size

    def _connect(self):
        parsed = urlparse(self.url)
        try:
            if parsed.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(parsed.path)
            elif parsed.scheme == "tcp":
                sock = socket.create_connection((parsed.hostname, parsed.port or 3310), self.timeout)
            else:
                raise ScannerUnavailable(f"unsupported CLAMD_URL scheme {parsed.scheme!r}")
        except OSError as exc:
            raise ScannerUnavailable(f"clamd unreachable: {exc}") from exc
        return sock

    def _command(self, command):
        sock = self._connect()
        try:
            sock.sendall(b"z" + command + b"\0")
            return _read_reply(sock)
        except OSError as exc:
            raise ScannerUnavailable(f"clamd failed: {exc}") from exc
        finally:
            sock.close()

    def ping(self):
        """True when clamd answers PONG."""
        return self._command(b"PING") == "PONG"

    def version(self):
        """clamd's engine and signature version line."""
        return self._command(b"VERSION")

    def scan_stream(self, chunks):
        """Send chunks through INSTREAM; returns None when clean or the signature name."""
        return parse_instream_reply(self.instream(chunks))

    def instream(self, chunks):
        """Send chunks through INSTREAM; returns clamd's reply as it came (never empty).

        Refused connections raise ScannerUnavailable (clamd is down: wait); a timeout or a dropped
        connection once connected raises ScanAborted (clamd choked on these bytes: count it).
        The chunks' source raises its own errors (the storage adapter's are never OSError).
        """
        sock = self._connect()
        try:
            try:
                sock.sendall(b"zINSTREAM\0")
                for chunk in chunks:
                    for start in range(0, len(chunk), self.chunk_size):
                        piece = chunk[start:start + self.chunk_size]
                        sock.sendall(struct.pack("!L", len(piece)) + piece)
                sock.sendall(struct.pack("!L", 0))
            except (BrokenPipeError, ConnectionResetError):
                # clamd closes the socket after "INSTREAM size limit exceeded": read its reply.
                pass
            reply = _read_reply(sock)
        except TimeoutError as exc:
            raise ScanAborted(f"clamd did not answer within {self.timeout:g}s") from exc
        except OSError as exc:
            raise ScanAborted(f"clamd failed mid-stream: {exc}") from exc
        finally:
            sock.close()
        if not reply:
            raise ScanAborted("clamd closed the connection without a verdict")
        return reply


def _read_reply(sock):
    data = b""
    while not data.endswith(b"\0"):
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data.rstrip(b"\0").decode("utf-8", "replace").strip()


def parse_instream_reply(reply):
    """None for exactly 'stream: OK', the name for 'stream: <name> FOUND'; anything else raises.

    A limit alert is not a signature: clamd did not read the whole file, so nothing was found or
    cleared (ScanLimitsExceeded, as for an INSTREAM overflow).
    """
    if reply == "stream: OK":
        return None
    if reply.startswith("stream: ") and reply.endswith(" FOUND"):
        name = reply[len("stream: "):-len(" FOUND")].strip()
        if name.startswith(_LIMITS_FOUND):
            raise ScanLimitsExceeded(name[:200])
        if name and "\n" not in name:
            return name
    if reply.startswith(_STREAM_OVERFLOW):
        raise ScanLimitsExceeded(reply[:200])
    if not reply:
        raise ScanAborted("clamd closed the connection without a verdict")
    raise ScanIncomplete(reply[:200])


class ImageRejected(Exception):
    """The image cannot be decoded safely; .reason is the code."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def check_image(data, max_pixels, thumbnail_size):
    """Decode an image within max_pixels; return a PNG thumbnail rebuilt from its pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
                if width * height > max_pixels:
                    raise ImageRejected("image_too_many_pixels")
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                image.thumbnail((thumbnail_size, thumbnail_size))
                # Only pixels survive: no comments, EXIF, ICC or trailing bytes.
                pixels = Image.new("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB", image.size)
                pixels.paste(image.convert(pixels.mode))
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("image_too_many_pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected("image_corrupt") from None
    out = io.BytesIO()
    pixels.save(out, format="PNG")
    return out.getvalue()


#: Archive formats an entry may not be (no archives inside archives), known by their first bytes:
#: (offset, signature). Names are not trusted: `notes.txt` may be a gzip, `notes.zip` plain text.
#: Formats whose mark is short or printable (ASCII cpio's "070707", lzma-alone, arj) are left out:
#: too many CSV and data files begin that way.
ARCHIVE_SIGNATURES = (
    (0, b"PK\x03\x04"), (0, b"PK\x05\x06"), (0, b"PK\x07\x08"),  # zip, jar, apk, docx ...
    (0, b"\x1f\x8b"),  # gzip
    (0, b"\x1f\x9d"), (0, b"\x1f\xa0"),  # compress (.Z)
    *((0, b"BZh%d" % level) for level in range(1, 10)),  # bzip2, with its block size
    (0, b"\xfd7zXZ\x00"),  # xz
    (0, b"LZIP"),  # lzip
    (0, b"\x04\x22\x4d\x18"),  # lz4
    (0, b"\x28\xb5\x2f\xfd"),  # zstd
    (0, b"7z\xbc\xaf\x27\x1c"),  # 7z
    (0, b"Rar!\x1a\x07"),  # rar 4 and 5
    (0, b"MSCF"),  # Microsoft cabinet
    (0, b"ISc("),  # InstallShield cabinet
    (0, b"!<arch>\n"),  # ar, .deb
    (0, b"xar!"),  # xar, .pkg
    (0, b"\xed\xab\xee\xdb"),  # rpm
    (257, b"ustar"),  # tar
)
#: Decompressed bytes read from each entry: enough for every signature above.
_ENTRY_HEAD_BYTES = max(offset + len(signature) for offset, signature in ARCHIVE_SIGNATURES)
#: Compression methods whose first bytes can be read within bounds: zipfile inflates deflate with a
#: cap on its output, but bzip2 and LZMA entries in one read (a few KiB can inflate to gigabytes).
_ZIP_READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
#: The end of a ZIP: its end record, a comment of up to 64 KiB, and ZIP64's locator and record.
_ZIP_TAIL_BYTES = 22 + 0xFFFF + 20 + 56
#: Bytes fetched per read of the archive: entries read in offset order share one fetch.
ZIP_READ_AHEAD_BYTES = 1024 * 1024


class ArchiveRejected(Exception):
    """The archive is unsafe to hand out; .reason is the code."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class ReadAhead(io.RawIOBase):
    """A seekable file over another that keeps one window of it: each fetch is one read of the inner
    file (one ranged GET for storage.RangedReader), of at least ZIP_READ_AHEAD_BYTES."""

    def __init__(self, inner, size):
        super().__init__()
        self.inner, self.size = inner, size
        self.position, self.start, self.window = 0, 0, b""

    def readable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        # zipfile finds the end record by seeking from the end; it never needs seekable() to say so.
        base = (0, self.position, self.size)[whence]
        if base + offset < 0:
            raise OSError("seek before the start of the archive")
        self.position = base + offset
        return self.position

    def tell(self):
        return self.position

    def fetch(self, start, length):
        """Make [start, start + length) the window, in one read of the inner file."""
        length = min(length, self.size - start)
        self.inner.seek(start)
        self.start, self.window = start, self.inner.read(length) if length > 0 else b""

    def readinto(self, buffer):
        """Fill buffer completely (short only at the end), fetching a new window when it runs out."""
        done = 0
        while done < len(buffer) and self.position < self.size:
            offset = self.position - self.start
            if not 0 <= offset < len(self.window):
                self.fetch(self.position, max(len(buffer) - done, ZIP_READ_AHEAD_BYTES))
                offset = 0
                if not self.window:
                    break
            piece = self.window[offset:offset + len(buffer) - done]
            buffer[done:done + len(piece)] = piece
            done += len(piece)
            self.position += len(piece)
        return done


def _zip_size(fileobj):
    fileobj.seek(0, io.SEEK_END)
    return fileobj.tell()


def check_zip(fileobj, max_entries, max_total_bytes, max_ratio, *, max_directory_bytes=4 * 1024 * 1024):
    """Judge a ZIP from its end record, its central directory and the first bytes of each entry.

    Refuses, before the directory is parsed: more entries or a larger directory than allowed (from the
    end record). Then: too much uncompressed data or too high a compression ratio (bombs), entries that
    overlap, encrypted entries, compression methods that cannot be read within bounds, absolute or
    ``..`` paths (zip slip), symlinks, archives inside the archive (by their bytes), unreadable archives.
    fileobj is read through one window of ZIP_READ_AHEAD_BYTES: a few reads for the directory and one
    per stretch of entries, whatever the number of entries.
    """
    reader = ReadAhead(fileobj, _zip_size(fileobj))
    try:
        reader.fetch(max(0, reader.size - _ZIP_TAIL_BYTES), _ZIP_TAIL_BYTES)
        # zipfile's own reading of the end record, so the count checked is the one zipfile would use.
        end = zipfile._EndRecData(reader)
        if not end:
            raise ArchiveRejected("zip_corrupt")
        entries_claimed, directory_bytes = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
        if entries_claimed > max_entries:
            raise ArchiveRejected("zip_too_many_entries")
        if directory_bytes > max_directory_bytes:
            raise ArchiveRejected("zip_directory_too_large")
        if directory_bytes < 46 * entries_claimed:
            raise ArchiveRejected("zip_corrupt")  # each directory entry takes 46 bytes at least
        directory_start = max(0, end[zipfile._ECD_LOCATION] - directory_bytes - 76)
        if directory_start < reader.start:
            reader.fetch(directory_start, reader.size - directory_start)
        with zipfile.ZipFile(reader) as archive:
            entries = archive.infolist()
            if len(entries) != entries_claimed:
                raise ArchiveRejected("zip_corrupt")  # the end record lies about the directory
            _judge_zip_directory(entries, max_total_bytes, max_ratio)
            _judge_zip_entries(archive, entries)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
            struct.error, zlib.error):
        raise ArchiveRejected("zip_corrupt") from None


def _judge_zip_directory(entries, max_total_bytes, max_ratio):
    """Refuse what the central directory alone shows: sizes, paths, links, encryption, methods."""
    total = sum(entry.file_size for entry in entries)
    packed = sum(entry.compress_size for entry in entries)
    if total > max_total_bytes:
        raise ArchiveRejected("zip_too_large_uncompressed")
    if total > max_ratio * max(packed, 1) and total > 1024 * 1024:
        raise ArchiveRejected("zip_compression_ratio")
    for entry in entries:
        name = entry.filename.replace("\\", "/")
        parts = name.split("/")
        if name.startswith("/") or ".." in parts or (len(parts[0]) == 2 and parts[0][1] == ":"):
            raise ArchiveRejected("zip_path_traversal")
        if (entry.external_attr >> 16) & 0o170000 == 0o120000:
            raise ArchiveRejected("zip_symlink")
        if entry.flag_bits & 0x1:
            raise ArchiveRejected("zip_encrypted")  # clamd cannot see inside
        if entry.compress_type not in _ZIP_READABLE_METHODS:
            raise ArchiveRejected("zip_unsupported_compression")


def _judge_zip_entries(archive, entries):
    """Read the first bytes of each entry, in offset order (so reads share fetches): no archives inside.

    Entries that overlap (one local header inside another entry's data) are refused: they let a small
    archive list the same compressed bytes many times.
    """
    end_of_previous = 0
    for entry in sorted(entries, key=lambda item: item.header_offset):
        if entry.header_offset < end_of_previous:
            raise ArchiveRejected("zip_overlapping_entries")
        # The local header takes 30 bytes at least, before the name, extra field and data.
        end_of_previous = entry.header_offset + 30 + entry.compress_size
        if entry.is_dir():
            continue
        with archive.open(entry) as stream:
            head = stream.read(_ENTRY_HEAD_BYTES)
        if any(head[offset:offset + len(signature)] == signature for offset, signature in ARCHIVE_SIGNATURES):
            raise ArchiveRejected("zip_nested_archive")


#: Keys that hold scripts, XFA forms or embedded rich media, refused wherever they appear.
_PDF_ACTIVE_KEYS = {"/JS", "/JavaScript", "/XFA", "/RichMediaContent", "/RichMediaSettings"}
#: Actions that run code, send data, or open other files or programs, refused wherever they appear.
_PDF_ACTIVE_ACTIONS = {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToR", "/GoToE",
                       "/RichMediaExecute"}
#: Annotations that play embedded content.
_PDF_ACTIVE_SUBTYPES = {"/RichMedia"}
#: Actions refused only where the viewer runs them unasked (open and additional actions): a link the
#: reader clicks may open a web page, a document may not open one by itself.
_PDF_UNASKED_ACTIONS = {"/URI"}

#: Where an object sits: anywhere, in an action's place, or as an additional-actions (/AA) dictionary.
_ANYWHERE, _ACTION, _TRIGGERS = "anywhere", "action", "triggers"

#: pypdf's own limits, tightened for one upload: what one stream may inflate to, how many filters and
#: elements it may hold, and no external JBIG2 decoder run on uploaded bytes.
_PYPDF_LIMITS = {
    **{name: 8 * 1024 * 1024 for name in (
        "maximum_declared_stream_length", "array_based_stream_maximum_output_length",
        "jbig2_maximum_output_length", "lzw_maximum_output_length", "run_length_maximum_output_length",
        "zlib_maximum_output_length", "brotli_maximum_output_length", "image_maximum_buffer_size",
        "xmp_maximum_input_length")},
    "zlib_maximum_recovery_input_length": 1024 * 1024,
    "stream_filters_maximum_length": 4,
    "stream_decoding_work_maximum_length": 32 * 1024 * 1024,
    "jbig2dec_binary": None,
}
#: What all object streams of one PDF may inflate to together (each is inflated once and kept).
PDF_MAX_INFLATED_BYTES = 32 * 1024 * 1024


class PdfRejected(Exception):
    """The PDF cannot be served; .reason is the code."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class _OutOfTime(BaseException):
    """The CPU timer went off inside pypdf: not an Exception, so pypdf's recovery cannot swallow it."""


@contextmanager
def _cpu_deadline(seconds):
    """Interrupt the block after seconds of CPU time; one pypdf call can outlast the walk's own clock.

    Signals reach only the main thread (a worker's job): elsewhere the walk's clock is all there is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise _OutOfTime()

    previous = signal.signal(signal.SIGVTALRM, expire)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


class _PdfBudget:
    """Objects, inflated bytes and seconds one check may spend; refuses the PDF when one runs out."""

    def __init__(self, max_objects, max_seconds):
        self.objects, self.inflated = max_objects, PDF_MAX_INFLATED_BYTES
        self.deadline = time.monotonic() + max_seconds

    def spend(self, objects=1, inflated=0):
        """Count work done; raise pdf_too_complex once any allowance is exceeded."""
        self.objects -= objects
        self.inflated -= inflated
        if self.objects < 0 or self.inflated < 0 or time.monotonic() > self.deadline:
            raise PdfRejected("pdf_too_complex")


def check_pdf(data, max_objects=200_000, max_seconds=10.0):
    """Refuse PDFs that run scripts, launch or submit anything, embed XFA or rich media, or open a
    link by themselves, anywhere in their object graph; and PDFs too costly to inspect.

    pypdf resolves object streams and #-escaped names, so hidden or obfuscated actions count too.
    """
    budget = _PdfBudget(max_objects, max_seconds)
    try:
        with _cpu_deadline(max_seconds), apply_configuration(**_PYPDF_LIMITS):
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                raise PdfRejected("pdf_encrypted")  # an encrypted object graph cannot be inspected
            _inflate_object_streams(reader, budget)
            _walk_pdf(reader, budget)
    except PdfRejected:
        raise
    except (LimitReachedError, _OutOfTime):
        raise PdfRejected("pdf_too_complex") from None
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, AttributeError, RecursionError,
            OSError, EOFError, AssertionError):
        raise PdfRejected("pdf_corrupt") from None


def _inflate_object_streams(reader, budget):
    """Inflate every object stream the cross-reference lists, once, counting its objects and bytes first.

    pypdf parses all of a stream's objects when one of them is read and keeps them: counted here, no
    walk can make it inflate more than the budget allows.
    """
    for number in sorted({container for container, _ in reader.xref_objStm.values()}):
        container = IndirectObject(number, 0, reader).get_object()
        declared = _resolved(container.get("/N")) if isinstance(container, StreamObject) else None
        if not isinstance(declared, int) or declared < 0:
            raise PdfRejected("pdf_corrupt")
        budget.spend(objects=1 + declared)
        budget.spend(inflated=len(container.get_data()))


def _walk_pdf(reader, budget):
    """Visit every object reachable from the trailer or listed in the cross-reference, judging each."""
    listed = [(IndirectObject(number, generation, reader), _ANYWHERE)
              for generation, numbers in reader.xref.items() for number in numbers]
    listed += [(IndirectObject(number, 0, reader), _ANYWHERE) for number in reader.xref_objStm]
    stack, seen = [*listed, (reader.trailer, _ANYWHERE)], set()
    while stack:
        obj, place = stack.pop()
        budget.spend()
        if isinstance(obj, IndirectObject):
            # An object reached both as a link's action and as an open action is judged in both places.
            key = (obj.idnum, obj.generation, place)
            if key in seen:
                continue
            seen.add(key)
            stack.append((obj.get_object(), place))
        elif isinstance(obj, DictionaryObject):
            _judge_pdf_dictionary(obj, place)
            stack.extend((value, _place_of(key, place)) for key, value in obj.items())
        elif isinstance(obj, ArrayObject):
            stack.extend((item, _ACTION if place == _ACTION else _ANYWHERE) for item in obj)


def _place_of(key, place):
    """Where the value under key sits, given where its dictionary sits."""
    if key == "/OpenAction" or place == _TRIGGERS or (place == _ACTION and key == "/Next"):
        return _ACTION
    return _TRIGGERS if key == "/AA" else _ANYWHERE


def _judge_pdf_dictionary(obj, place):
    """Raise pdf_active_content for a dictionary that is, or holds, active content."""
    action = _resolved(obj.get("/S"))
    if (_PDF_ACTIVE_KEYS.intersection(obj.keys()) or action in _PDF_ACTIVE_ACTIONS
            or _resolved(obj.get("/Subtype")) in _PDF_ACTIVE_SUBTYPES
            or (place == _ACTION and action in _PDF_UNASKED_ACTIONS)):
        raise PdfRejected("pdf_active_content")


def _resolved(value, hops=32):
    """value with indirect references followed (a bounded number of them: they may form a cycle)."""
    for _ in range(hops):
        if not isinstance(value, IndirectObject):
            return value
        value = value.get_object()
    raise PdfRejected("pdf_corrupt")
