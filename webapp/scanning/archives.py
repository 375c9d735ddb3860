"""ZIP archives judged from their end record, central directory and entries' first bytes, unpacking nothing."""

import io
import struct
import zipfile
import zlib

#: Archive formats an entry may not be (no archives inside archives), known by their first bytes:
#: (offset, signature). Names are not trusted: `notes.txt` may be a gzip, `notes.zip` plain text.
#: Formats whose mark is short or printable (ASCII cpio's "070707", lzma-alone, arj) are left out:
#: too many CSV and data files begin that way.
ARCHIVE_SIGNATURES = (
    (0, b"PK\x03\x04"),
    (0, b"PK\x05\x06"),
    (0, b"PK\x07\x08"),  # zip, jar, apk, docx ...
    (0, b"\x1f\x8b"),  # gzip
    (0, b"\x1f\x9d"),
    (0, b"\x1f\xa0"),  # compress (.Z)
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
            piece = self.window[offset : offset + len(buffer) - done]
            buffer[done : done + len(piece)] = piece
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
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        EOFError,
        NotImplementedError,
        struct.error,
        zlib.error,
    ):
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
        if any(head[offset : offset + len(signature)] == signature for offset, signature in ARCHIVE_SIGNATURES):
            raise ArchiveRejected("zip_nested_archive")
