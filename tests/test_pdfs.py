"""PDFs that run code when opened are refused; plain documents pass."""
import pytest
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from tests.conftest import RESOURCES
from tests.hostile_corpus import obfuscated, with_javascript, with_launch, written
from webapp.scanning import PdfRejected, check_pdf


def with_page_action(writer):
    page = writer.pages[0]
    page[NameObject("/AA")] = DictionaryObject({NameObject("/O"): DictionaryObject({
        NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert(2)")})})


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


def test_active_pdfs_can_be_allowed_by_configuration(app, api, run_worker):
    app.config["PDF_ACTIVE_CONTENT"] = "allow"
    upload_id = api.upload(written(with_javascript), filename="form.pdf", content_type="application/pdf")
    run_worker()
    assert api.status(upload_id)["status"] == "available"
