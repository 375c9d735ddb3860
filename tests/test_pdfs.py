"""PDFs that run code when opened are refused; plain documents pass."""
import io

import pytest
from pypdf import PdfWriter
from pypdf.actions import JavaScript
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from tests.conftest import RESOURCES
from webapp.scanning import PdfRejected, check_pdf


def written(mutate=None):
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


def with_page_action(writer):
    page = writer.pages[0]
    page[NameObject("/AA")] = DictionaryObject({NameObject("/O"): DictionaryObject({
        NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert(2)")})})


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


def test_plain_pdfs_pass():
    check_pdf(written())
    check_pdf((RESOURCES / "tiny.pdf").read_bytes())


@pytest.mark.parametrize("data, reason", [
    (written(with_javascript), "pdf_active_content"),
    (written(with_launch), "pdf_active_content"),
    (written(with_page_action), "pdf_active_content"),
    (obfuscated(), "pdf_active_content"),
    (b"%PDF-1.4\n garbage that is not a pdf", "pdf_corrupt"),
], ids=["javascript", "launch", "page-action", "obfuscated-names", "garbage"])
def test_active_or_broken_pdfs_are_refused(data, reason):
    with pytest.raises(PdfRejected) as info:
        check_pdf(data)
    assert info.value.reason == reason


def test_worker_rejects_an_openaction_javascript_pdf(app, api, run_worker):
    upload_id = api.upload(written(with_javascript), filename="invoice.pdf", content_type="application/pdf")
    run_worker()
    info = api.status(upload_id)
    assert (info["status"], info["reason"]) == ("rejected", "pdf_active_content")


def test_active_pdfs_can_be_allowed_by_configuration(app, api, run_worker):
    app.config["PDF_ACTIVE_CONTENT"] = "allow"
    upload_id = api.upload(written(with_javascript), filename="form.pdf", content_type="application/pdf")
    run_worker()
    assert api.status(upload_id)["status"] == "available"
