"""PDFs that run code, send data or open something by themselves are refused; plain documents and links pass;
a hostile PDF costs a bounded amount of memory and time."""

import threading
import tracemalloc

import pytest
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from tests import hostile_pdfs as pdfs
from tests.conftest import RESOURCES
from tests.hostile_corpus import ACTIONS
from tests.hostile_pdfs import obfuscated, with_javascript, with_launch, written
from webapp.scanning.pdfs import PdfRejected, check_pdf

MiB = 1024 * 1024
SLOW = pytest.mark.slow


def with_page_action(writer):
    page = writer.pages[0]
    page[NameObject("/AA")] = DictionaryObject(
        {
            NameObject("/O"): DictionaryObject(
                {NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert(2)")}
            )
        }
    )


def refusal(data, **budget):
    """The reason check_pdf refuses data for (None when it passes)."""
    try:
        check_pdf(data, **budget)
    except PdfRejected as exc:
        return exc.reason
    return None


@pytest.mark.parametrize(
    "data",
    [
        written(),
        (RESOURCES / "tiny.pdf").read_bytes(),
        pdfs.document(packed=(2, 3)),
        pdfs.link(pdfs.uri(b"(https://example.com/)")),
        pdfs.link(b"5 0 R", b"<< /S 6 0 R /URI (https://example.com/) >>", b"/URI"),
        pdfs.link(pdfs.uri(b"(https://example.com/)", extra=b"/Next " + pdfs.uri(b"(https://example.org/)"))),
        pdfs.open_action(b"<< /S /GoTo /D [3 0 R /Fit] >>"),
        pdfs.document(b"/OpenAction [3 0 R /FitH 200]"),
        pdfs.document(b"/URI << /Base (https://example.com/) >>"),
    ],
    ids=[
        "pypdf",
        "resource",
        "object-stream",
        "link-uri",
        "link-indirect-uri",
        "link-next-uri",
        "open-goto",
        "open-destination",
        "base-uri",
    ],
)
def test_plain_pdfs_and_links_pass(data):
    assert refusal(data) is None


@pytest.mark.parametrize(
    "data, reason",
    [
        (written(with_javascript), "pdf_active_content"),
        (written(with_launch), "pdf_active_content"),
        (written(with_page_action), "pdf_active_content"),
        (obfuscated(), "pdf_active_content"),
        (pdfs.open_action(b"<< /S /Launc#68 /F (calc.exe) >>"), "pdf_active_content"),
        (b"%PDF-1.4\n garbage that is not a pdf", "pdf_corrupt"),
    ],
    ids=["javascript", "launch", "page-action", "obfuscated-names", "escaped-launch", "garbage"],
)
def test_active_or_broken_pdfs_are_refused(data, reason):
    assert refusal(data) == reason


@pytest.mark.parametrize("action", [action for _, _, action in ACTIONS], ids=[key for key, _, _ in ACTIONS])
def test_every_active_open_action_is_refused(action):
    assert refusal(pdfs.open_action(action, b"/Launch")) == "pdf_active_content"


@pytest.mark.parametrize(
    "data",
    [
        pdfs.open_action(b"<< /S 5 0 R /F (calc.exe) >>", b"/Launch"),
        pdfs.open_action(b"<< /S 5 0 R /F (calc.exe) >>", b"/Launch", packed=(4, 5)),
        pdfs.open_action(b"<< /S 5 0 R /URI (https://evil.example/) >>", b"/URI"),
        pdfs.document(b"", b"/Annots [4 0 R]", b"<< /Type /Annot /Subtype 5 0 R /Rect [0 0 9 9] >>", b"/RichMedia"),
        pdfs.document(b"/AcroForm 4 0 R", b"", b"<< /Fields [] /XFA 5 0 R >>", pdfs.stream(b"<xdp/>")),
        pdfs.document(b"", b"/AA 4 0 R", b"<< /PO 5 0 R >>", pdfs.uri()),
    ],
    ids=["launch", "launch-packed", "uri-open-action", "richmedia-subtype", "xfa", "aa-uri"],
)
def test_indirect_values_are_resolved_before_they_are_compared(data):
    """pypdf's .get() returns references: `/S 5 0 R` where object 5 is `/Launch` passed the old check."""
    assert refusal(data) == "pdf_active_content"


@pytest.mark.parametrize(
    "data",
    [
        pdfs.page_triggers(b"/O " + pdfs.uri()),
        pdfs.document(b"/AA << /WC 4 0 R >>", b"", pdfs.uri()),
        pdfs.link(pdfs.uri(b"(https://example.com/)"), annotation=b"/AA << /E " + pdfs.uri() + b" >>"),
        pdfs.open_action(b"<< /S /GoTo /D [3 0 R /Fit] /Next 5 0 R >>", pdfs.uri()),
        pdfs.open_action(
            b"<< /S /GoTo /D [3 0 R /Fit] /Next [5 0 R 6 0 R] >>",
            b"<< /S /GoTo /D [3 0 R /Fit] >>",
            b"<< /S /GoTo /D [3 0 R /Fit] /Next 7 0 R >>",
            pdfs.uri(),
        ),
        pdfs.document(
            b"/OpenAction 5 0 R",
            b"/Annots [4 0 R]",
            b"<< /Type /Annot /Subtype /Link /Rect [10 10 90 30] /A 5 0 R >>",
            pdfs.uri(),
        ),
    ],
    ids=["page-open", "document-close", "link-mouse-enter", "next", "next-chain", "shared-with-a-link"],
)
def test_web_pages_opened_unasked_are_refused(data):
    assert refusal(data) == "pdf_active_content"


def test_active_content_anywhere_is_found():
    assert refusal(pdfs.document(b"/AcroForm << /Fields [] /XFA (x) >>")) == "pdf_active_content"
    assert refusal(pdfs.document(b"/Names << /JavaScript << /Names [] >> >>")) == "pdf_active_content"
    assert refusal(pdfs.document(b"/Extra << /RichMediaContent << >> >>")) == "pdf_active_content"
    # An object no page refers to, listed only in the cross-reference, still counts.
    assert refusal(pdfs.document(b"", b"", b"<< /S /Launch /F (calc.exe) >>")) == "pdf_active_content"


# --- Cost: hostile shapes of about 1 MiB ---


def peak_memory(data, **budget):
    """The reason check_pdf gives, and the most memory Python held while it ran."""
    tracemalloc.start()
    try:
        reason = refusal(data, **budget)
        return reason, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "make, reason, limit",
    [  # the bombs take seconds to deflate: slow
        pytest.param(pdfs.flate_bomb_object_stream, "pdf_too_complex", 24 * MiB, id="object-stream-bomb", marks=SLOW),
        pytest.param(pdfs.object_stream_bombs, "pdf_too_complex", 64 * MiB, id="100-object-stream-bombs", marks=SLOW),
        pytest.param(pdfs.flate_bomb_content, None, 8 * MiB, id="content-bomb", marks=SLOW),
        pytest.param(pdfs.nested, "pdf_corrupt", 8 * MiB, id="nested-arrays"),
    ],
)
def test_hostile_shapes_cost_bounded_memory(make, reason, limit):
    """Before, the object-stream bomb escaped as LimitReachedError after holding 145 MiB."""
    data = make()
    assert MiB * 0.7 < len(data) < 2 * MiB
    found, peak = peak_memory(data)
    assert (found, peak < limit) == (reason, True), peak


@pytest.mark.parametrize("make", [pdfs.many_objects, pdfs.reference_cycles], ids=["tiny-objects", "cycles"])
def test_the_object_budget_refuses_what_would_take_long(make):
    data = make()
    assert len(data) > MiB
    assert refusal(data, max_objects=1_000) == "pdf_too_complex"


@pytest.mark.slow  # 300,000 packed objects take seconds to write and to read
def test_an_object_stream_is_counted_before_it_is_inflated():
    found, peak = peak_memory(pdfs.many_packed_objects(300_000), max_objects=200_000)
    assert found == "pdf_too_complex" and peak < 96 * MiB, peak


@pytest.mark.slow
def test_the_clock_stops_one_pypdf_call_that_runs_too_long():
    """Opening this file parses 300,000 cross-reference entries in one call, before any walk."""
    assert refusal(pdfs.many_packed_objects(300_000), max_objects=10**9, max_seconds=0.05) == "pdf_too_complex"


def test_away_from_the_main_thread_the_walk_keeps_its_own_clock():
    found = []
    worker = threading.Thread(target=lambda: found.append(refusal(pdfs.many_objects(), max_seconds=0.01)))
    worker.start()
    worker.join()
    assert found == ["pdf_too_complex"]


# --- Through the worker ---


def test_active_pdfs_can_be_allowed_by_configuration(app, api, run_worker):
    app.config["PDF_ACTIVE_CONTENT"] = "allow"
    upload_id = api.upload(written(with_javascript), filename="form.pdf", content_type="application/pdf")
    run_worker()
    assert api.status(upload_id)["status"] == "available"


def test_the_worker_applies_the_pdf_budget(app, api, run_worker):
    app.config["PDF_MAX_OBJECTS"] = 1_000
    upload_id = api.upload(pdfs.many_objects(2_000), filename="big.pdf", content_type="application/pdf")
    run_worker()
    assert (api.status(upload_id)["status"], api.status(upload_id)["reason"]) == ("rejected", "pdf_too_complex")
