"""ZIP archives made in code for the hostile corpus and the archive tests, and the archives that hide in them.

The end record of a ZIP (and ZIP64's record and locator) is rewritten here field by field to make it lie.
"""

import bz2
import gzip
import io
import lzma
import stat
import struct
import tarfile
import zipfile

from webapp.scanning.clamd import EICAR

MiB = 1024 * 1024
END = struct.Struct("<4s4H2LH")  # the end-of-central-directory record
END64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64's end record
LOCATOR = struct.Struct("<4sLQL")  # ZIP64's locator of its end record


def make_zip(entries, compression=zipfile.ZIP_DEFLATED):
    """A ZIP of (name, bytes) entries."""
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
            chunk = b"\0" * MiB
            for _ in range(total // len(chunk)):
                entry.write(chunk)
    return buffer.getvalue()


def many_entries(count, data=b""):
    return make_zip([(f"f{n}.txt", data) for n in range(count)], zipfile.ZIP_STORED)


def nested_eicar():
    return make_zip([("eicar.zip", make_zip([("eicar.com", EICAR)]))])


def commented(count=70, comment=b"c" * 65_000):
    """count tiny entries, each with a comment that lives only in the central directory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(count):
            info = zipfile.ZipInfo(f"f{n}.txt")
            info.comment = comment
            archive.writestr(info, b"x")
    return buffer.getvalue()


# --- Lies in the end record ---


def _end(data):
    """The offset of the end record and its fields."""
    at = data.rindex(b"PK\x05\x06")
    return at, list(END.unpack_from(data, at))


def claiming(data, entries=None, directory_bytes=None):
    """data with its end record claiming other numbers of entries or directory bytes."""
    at, fields = _end(data)
    if entries is not None:
        fields[3] = fields[4] = entries
    if directory_bytes is not None:
        fields[5] = directory_bytes
    return data[:at] + END.pack(*fields) + data[at + END.size :]


def as_zip64(data, entries=None, directory_bytes=None):
    """data with ZIP64 end records (claiming entries or directory bytes if given) before its end record,
    whose own fields say "see ZIP64"."""
    at, fields = _end(data)
    count, size, offset = fields[4], fields[5], fields[6]
    record = END64.pack(
        b"PK\x06\x06",
        END64.size - 12,
        45,
        45,
        0,
        0,
        count if entries is None else entries,
        count if entries is None else entries,
        size if directory_bytes is None else directory_bytes,
        offset,
    )
    locator = LOCATOR.pack(b"PK\x06\x07", 0, at, 1)
    end = END.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:at] + record + locator + end


# --- Entries zipfile will not write ---


def encrypted(data=b"secret notes", method=zipfile.ZIP_STORED):
    """A ZIP whose one entry has the encryption flag set (in its local and central headers)."""
    archive = bytearray(make_zip([("notes.txt", data)], method))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = archive.index(signature) + flags_at
        archive[at] |= 0x1
    return bytes(archive)


def aes_encrypted():
    """An entry marked as WinZip AES (method 99, encryption flag set)."""
    archive = bytearray(encrypted())
    for signature, method_at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = archive.index(signature) + method_at
        archive[at : at + 2] = struct.pack("<H", 99)
    return bytes(archive)


def overlapping(copies=3):
    """One deflated entry listed copies times in the central directory, all at the same local header."""
    data = make_zip([("zeros.bin", bytes(1000))])
    at, fields = _end(data)
    directory = data[fields[6] : at]
    entries = [directory.replace(b"zeros.bin", b"zeros%d.bn" % n if n else b"zeros.bin") for n in range(copies)]
    new_directory = b"".join(entries)
    fields[3] = fields[4] = copies
    fields[5] = len(new_directory)
    return data[: fields[6]] + new_directory + END.pack(*fields)


# --- Archives to hide inside ---


def tar_of(name, data):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


TEXT = b"Meeting notes: nothing to see here.\n" * 4
#: An archive of each kind, as bytes (headers written as their tools write them).
HIDDEN = {
    "zip": lambda: make_zip([("a.txt", TEXT)]),
    "gzip": lambda: gzip.compress(TEXT),
    "bzip2": lambda: bz2.compress(TEXT),
    "xz": lambda: lzma.compress(TEXT),
    "tar": lambda: tar_of("a.txt", TEXT),
    "7z": lambda: b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24) + TEXT,
    "rar": lambda: b"Rar!\x1a\x07\x01\x00" + bytes(16) + TEXT,
    "zstd": lambda: b"\x28\xb5\x2f\xfd\x04\x00" + TEXT,
    "cab": lambda: b"MSCF\x00\x00\x00\x00" + bytes(28) + TEXT,
    "empty-zip": lambda: make_zip([]),
}


def hiding(kind, name, compression=zipfile.ZIP_DEFLATED):
    """A ZIP holding a text file and, under name, an archive of the given kind."""
    return make_zip([("readme.txt", TEXT), (name, HIDDEN[kind]())], compression)
