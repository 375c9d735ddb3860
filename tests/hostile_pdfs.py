"""PDFs made in code for the hostile corpus and the parser tests: written by pypdf, or by hand object by object.

`pdf()` writes objects with a correct cross-reference table, or packs some of them into a flate-compressed
object stream indexed by a cross-reference stream, as modern writers do. `document()` is a one-page PDF
with extra objects from number 4 on.
"""

import functools
import io
import zlib

from pypdf import PdfWriter
from pypdf.actions import JavaScript
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

MiB = 1024 * 1024
EVIL_URL = b"(https://evil.example/collect)"


# --- Written by pypdf ---


def written(mutate=None):
    """A one-page PDF from pypdf, changed by mutate(writer) first."""
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    if mutate:
        mutate(writer)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def with_javascript(writer):
    writer.add_open_action(JavaScript("app.alert('hi');"))


def with_launch(writer):
    writer._root_object[NameObject("/OpenAction")] = DictionaryObject(
        {NameObject("/S"): NameObject("/Launch"), NameObject("/F"): TextStringObject("calc.exe")}
    )


def with_password(writer):
    writer.encrypt("secret", algorithm="RC4-128")


# --- Written by hand ---


def stream(data, extra=b"", compress=False):
    """An object body holding a stream of data (flate-compressed if asked)."""
    if compress:
        data, extra = zlib.compress(data, 9), extra + b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n%s\nendstream" % (len(data), extra, data)


def pdf(*bodies, packed=(), padding=0, version=b"1.7"):
    """A PDF of numbered object bodies (object 1 is the catalog), with a correct cross-reference.

    packed: object numbers to put in one object stream, or several such groups for several streams, each
    followed by padding spaces (deflated as they are made); the cross-reference is then a stream.
    """
    groups = [group for group in (packed if packed and isinstance(packed[0], tuple) else (packed,)) if group]
    inside = {number: (count, index) for count, group in enumerate(groups) for index, number in enumerate(group)}
    out = bytearray(b"%%PDF-%s\n%%\xe2\xe3\xcf\xd3\n" % version)
    offsets = {}
    for number, body in enumerate(bodies, start=1):
        if number not in inside:
            offsets[number] = len(out)
            out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    size = len(bodies) + 1
    if not groups:
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % size
        out += b"".join(b"%010d 00000 n \n" % offsets[number] for number in range(1, size))
        out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
        return bytes(out)
    for count, group in enumerate(groups):
        offsets[size + count] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (
            size + count,
            _object_stream([bodies[n - 1] for n in group], group, padding),
        )
    rows = [b"\0\0\0\0\0\0\0\xff\xff"]
    xref_number = size + len(groups)
    for number in range(1, xref_number):
        if number in inside:
            count, index = inside[number]
            rows.append(b"\2" + (size + count).to_bytes(4, "big") + index.to_bytes(4, "big"))
        else:
            rows.append(b"\1" + offsets[number].to_bytes(4, "big") + b"\0\0\0\0")
    xref = len(out)
    rows.append(b"\1" + xref.to_bytes(4, "big") + b"\0\0\0\0")
    out += b"%d 0 obj\n%s\nendobj\n" % (
        xref_number,
        stream(b"".join(rows), b" /Type /XRef /Size %d /W [1 4 4] /Root 1 0 R" % (xref_number + 1), compress=True),
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _object_stream(bodies, numbers, padding):
    """An object stream body holding bodies as objects numbers, then padding spaces, deflated."""
    index, body = [], b""
    for number, text in zip(numbers, bodies, strict=True):
        index.append(b"%d %d" % (number, len(body)))
        body += text + b"\n"
    head = b" ".join(index) + b"\n"
    packer, spaces = zlib.compressobj(9), b" " * MiB
    data = packer.compress(head + body) + b"".join(packer.compress(spaces) for _ in range(padding // MiB))
    data += packer.compress(b" " * (padding % MiB)) + packer.flush()
    return stream(data, b" /Type /ObjStm /N %d /First %d /Filter /FlateDecode" % (len(numbers), len(head)))


def document(catalog=b"", page=b"", *extra, **options):
    """A one-page PDF: catalog and page entries added, extra bodies numbered from 4."""
    return pdf(
        b"<< /Type /Catalog /Pages 2 0 R %s >>" % catalog,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] %s >>" % page,
        *extra,
        **options,
    )


def open_action(action, *extra, **options):
    """A PDF whose /OpenAction is object 4, the given action dictionary."""
    return document(b"/OpenAction 4 0 R", b"", action, *extra, **options)


def page_triggers(triggers, *extra):
    """A PDF whose page has the additional actions (/AA) given."""
    return document(b"", b"/AA << %s >>" % triggers, *extra)


def link(action, *extra, annotation=b""):
    """A PDF whose page has one link annotation running the given action when clicked."""
    return document(
        b"",
        b"/Annots [4 0 R]",
        b"<< /Type /Annot /Subtype /Link /Rect [10 10 90 30] /Border [0 0 0] /A %s %s >>" % (action, annotation),
        *extra,
    )


def uri(target=EVIL_URL, kind=b"/URI", extra=b""):
    """A /URI action (or another kind) dictionary."""
    return b"<< /Type /Action /S %s /URI %s %s >>" % (kind, target, extra)


def obfuscated():
    """An OpenAction whose names are #-escaped (/J#61vaScript)."""
    return open_action(b"<< /S /J#61vaScript /#4AS (app.alert(3)) >>")


# --- Shapes that cost a parser: each about 1 MiB ---


@functools.cache
def deflated_zeros(size):
    """size zero bytes, deflated (about 1000:1) without ever holding them."""
    packer, zeros = zlib.compressobj(9), bytes(MiB)
    out = [packer.compress(zeros) for _ in range(size // MiB)]
    return b"".join(out) + packer.flush()


def flate_bomb_content(size=1024 * MiB):
    """A page whose content stream inflates to size bytes."""
    data = deflated_zeros(size)
    return document(
        b"", b"/Contents 4 0 R", b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(data), data)
    )


def flate_bomb_object_stream(size=1024 * MiB):
    """The page lives in an object stream that inflates to size bytes: reading the page inflates it."""
    return document(packed=(3,), padding=size)


def object_stream_bombs(count=100, size=8 * MiB - 4096):
    """count object streams, each inflating to size bytes, each holding one object the page refers to."""
    refs = b" ".join(b"%d 0 R" % (4 + n) for n in range(count))
    return document(
        b"", b"/Extra [%s]" % refs, *[b"[]"] * count, packed=tuple((4 + n,) for n in range(count)), padding=size
    )


def many_objects(count=26_000):
    """count tiny objects in plain sight (about 40 bytes each with their cross-reference line)."""
    return document(b"", b"", *[b"[]"] * count)


def many_packed_objects(count=400_000):
    """count tiny objects in one object stream: its /N says how many pypdf would parse."""
    return document(b"", b"", *[b"[]"] * count, packed=tuple(range(4, 4 + count)))


def nested(depth=500_000, open_=b"[", close=b"]"):
    """An object nested depth levels deep (arrays, or dictionaries with open_=b"<< /A ", close=b">>")."""
    return document(b"/Extra 4 0 R", b"", open_ * depth + close * depth)


def reference_cycles(count=20_000):
    """A dictionary that holds itself, and count objects in a ring of references both ways."""
    ring = [b"<< /Next %d 0 R /Prev %d 0 R >>" % (5 + (n + 1) % count, 5 + (n - 1) % count) for n in range(count)]
    return document(b"/Extra 5 0 R /Self 4 0 R", b"", b"<< /Self 4 0 R /Kids [4 0 R 5 0 R] >>", *ring)


def huge_cross_reference(entries=4_000_000):
    """A cross-reference stream listing entries objects in two bytes each (all at offset 0)."""
    rows = zlib.compress(b"\1\0" * entries, 9)
    head = (
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    )
    xref = len(head)
    return (
        head + b"3 0 obj\n<< /Type /XRef /Size %d /W [1 1 0] /Root 1 0 R /Length %d /Filter /FlateDecode >>\n"
        b"stream\n%s\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % (entries, len(rows), rows, xref)
    )
