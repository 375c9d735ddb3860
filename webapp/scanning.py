"""Content checks: libmagic sniffing, the clamd INSTREAM client, image sanity. No Flask, no DB."""
import io
import socket
import struct
import warnings
import zipfile
from urllib.parse import urlparse

import magic
from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PdfReadError, PdfStreamError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

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


#: Archive formats an entry may not be (no archives inside archives).
_NESTED_ARCHIVES = (".zip", ".jar", ".war", ".apk", ".7z", ".rar", ".gz", ".tgz", ".bz2", ".xz", ".tar", ".zst")


class ArchiveRejected(Exception):
    """The archive is unsafe to hand out; .reason is the code."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def check_zip(fileobj, max_entries, max_total_bytes, max_ratio):
    """Judge a ZIP from its central directory alone, extracting nothing.

    Refuses: too many entries, too much uncompressed data or too high a compression ratio (bombs),
    archives inside the archive, absolute or ``..`` paths (zip slip), symlinks, unreadable archives.
    """
    try:
        with zipfile.ZipFile(fileobj) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise ArchiveRejected("zip_corrupt") from None
    if len(entries) > max_entries:
        raise ArchiveRejected("zip_too_many_entries")
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
        if name.lower().endswith(_NESTED_ARCHIVES):
            raise ArchiveRejected("zip_nested_archive")


#: Keys and action types that make a PDF run something when opened or clicked.
_PDF_ACTIVE_KEYS = {"/JS", "/JavaScript", "/Launch"}
_PDF_ACTIVE_ACTIONS = {"/JavaScript", "/Launch"}


class PdfRejected(Exception):
    """The PDF cannot be served; .reason is the code."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def check_pdf(data):
    """Refuse PDFs with JavaScript or launch actions anywhere in their object graph.

    pypdf resolves object streams and #-escaped names, so hidden or obfuscated actions count too.
    """
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise PdfRejected("pdf_encrypted")  # an encrypted object graph cannot be inspected
        stack, seen = [reader.trailer], set()
        while stack:
            obj = stack.pop()
            if isinstance(obj, IndirectObject):
                key = (obj.idnum, obj.generation)
                if key in seen:
                    continue
                seen.add(key)
                obj = obj.get_object()
            if isinstance(obj, DictionaryObject):
                if _PDF_ACTIVE_KEYS & set(obj.keys()) or obj.get("/S") in _PDF_ACTIVE_ACTIONS:
                    raise PdfRejected("pdf_active_content")
                stack.extend(obj.values())
            elif isinstance(obj, ArrayObject):
                stack.extend(obj)
    except PdfRejected:
        raise
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, AttributeError, RecursionError,
            OSError, EOFError):
        raise PdfRejected("pdf_corrupt") from None
