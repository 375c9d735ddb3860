"""The type of a file from its first bytes (libmagic), and which declared types it may stand for."""

import magic

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
