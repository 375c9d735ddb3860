"""Filename rules: what a user may call a file, and how it is named in a download."""

import re
import unicodedata
from urllib.parse import quote

from webapp.services.refusals import InvalidInput

_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{base}{n}" for base in ("COM", "LPT") for n in list("123456789") + ["¹", "²", "³"]
}


def clean_filename(name, max_bytes=255):
    """Return name in NFC with trailing dots/spaces stripped, or raise InvalidInput."""
    if not isinstance(name, str):
        raise InvalidInput("The filename must be text.", "invalid_filename")
    name = unicodedata.normalize("NFC", name)
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            raise InvalidInput("The filename contains control or invisible formatting characters.", "invalid_filename")
    if "/" in name or "\\" in name:
        raise InvalidInput("The filename may not contain / or \\.", "invalid_filename")
    name = name.rstrip(". ").strip()
    if not name or name.startswith((".", "-")):
        raise InvalidInput("The filename is empty or starts with a dot or hyphen.", "invalid_filename")
    if len(name.encode("utf-8")) > max_bytes:
        raise InvalidInput(f"The filename is longer than {max_bytes} bytes.", "invalid_filename")
    return name


def download_name(name, extension):
    """A safe name for a download: the stored name with the detected type's extension."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in '/\\"')
    name = name.strip().rstrip(". ") or "download"
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem = name
    if stem.split(".")[0].upper() in _WINDOWS_DEVICES:
        stem = "_" + stem
    return f"{stem}.{extension}"


def content_disposition(filename):
    """An RFC 6266 attachment header with an ASCII fallback and an RFC 5987 UTF-8 name."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._ ()+-]", "_", ascii_name).strip()
    stem, dot, ext = ascii_name.rpartition(".")
    if not dot:
        stem, ext = ascii_name, ""
    if not stem.strip("._ "):
        # Nothing readable survives (an all-CJK name, say): never hand out a bare ".txt".
        ascii_name = "download" + (f".{ext}" if ext else "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
