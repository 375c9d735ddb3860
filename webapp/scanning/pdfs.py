"""PDFs that run, send or open something, or cost too much to inspect, are refused."""

import io
import logging
import signal
import threading
import time
from contextlib import contextmanager

from pypdf import PdfReader, apply_configuration
from pypdf.errors import LimitReachedError, PdfReadError, PdfStreamError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

# A hostile PDF makes pypdf log a warning for every token it recovers from: tens of thousands of lines.
logging.getLogger("pypdf").setLevel(logging.ERROR)

#: Keys that hold scripts, XFA forms or embedded rich media, refused wherever they appear.
_PDF_ACTIVE_KEYS = {"/JS", "/JavaScript", "/XFA", "/RichMediaContent", "/RichMediaSettings"}
#: Actions that run code, send data, or open other files or programs, refused wherever they appear.
_PDF_ACTIVE_ACTIONS = {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToR", "/GoToE", "/RichMediaExecute"}
#: Annotations that play embedded content.
_PDF_ACTIVE_SUBTYPES = {"/RichMedia"}
#: Actions refused only where the viewer runs them unasked (open and additional actions): a link the
#: reader clicks may open a web page, a document may not open one by itself.
_PDF_UNASKED_ACTIONS = {"/URI"}

#: Where an object sits: anywhere, in an action's place, or as an additional-actions (/AA) dictionary.
_ANYWHERE, _ACTION, _TRIGGERS = "anywhere", "action", "triggers"

#: pypdf's own limits, tightened for one upload: what one stream may inflate to, how many filters and
#: elements it may hold, and no external JBIG2 decoder run on uploaded bytes.
_PYPDF_LIMITS = {
    **{
        name: 8 * 1024 * 1024
        for name in (
            "maximum_declared_stream_length",
            "array_based_stream_maximum_output_length",
            "jbig2_maximum_output_length",
            "lzw_maximum_output_length",
            "run_length_maximum_output_length",
            "zlib_maximum_output_length",
            "brotli_maximum_output_length",
            "image_maximum_buffer_size",
            "xmp_maximum_input_length",
        )
    },
    "zlib_maximum_recovery_input_length": 1024 * 1024,
    "stream_filters_maximum_length": 4,
    "stream_decoding_work_maximum_length": 32 * 1024 * 1024,
    "jbig2dec_binary": None,
}
#: What all object streams of one PDF may inflate to together (each is inflated once and kept).
PDF_MAX_INFLATED_BYTES = 32 * 1024 * 1024


class PdfRejected(Exception):
    """The PDF cannot be served; .reason is the code."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class _OutOfTime(BaseException):
    """The CPU timer went off inside pypdf: not an Exception, so pypdf's recovery cannot swallow it."""


@contextmanager
def _cpu_deadline(seconds):
    """Interrupt the block after seconds of CPU time; one pypdf call can outlast the walk's own clock.

    Signals reach only the main thread (a worker's job): elsewhere the walk's clock is all there is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise _OutOfTime()

    previous = signal.signal(signal.SIGVTALRM, expire)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


class _PdfBudget:
    """Objects, inflated bytes and seconds one check may spend; refuses the PDF when one runs out."""

    def __init__(self, max_objects, max_seconds):
        self.objects, self.inflated = max_objects, PDF_MAX_INFLATED_BYTES
        self.deadline = time.monotonic() + max_seconds

    def spend(self, objects=1, inflated=0):
        """Count work done; raise pdf_too_complex once any allowance is exceeded."""
        self.objects -= objects
        self.inflated -= inflated
        if self.objects < 0 or self.inflated < 0 or time.monotonic() > self.deadline:
            raise PdfRejected("pdf_too_complex")


def check_pdf(data, max_objects=200_000, max_seconds=10.0):
    """Refuse PDFs that run scripts, launch or submit anything, embed XFA or rich media, or open a
    link by themselves, anywhere in their object graph; and PDFs too costly to inspect.

    pypdf resolves object streams and #-escaped names, so hidden or obfuscated actions count too.
    """
    budget = _PdfBudget(max_objects, max_seconds)
    try:
        with _cpu_deadline(max_seconds), apply_configuration(**_PYPDF_LIMITS):
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                raise PdfRejected("pdf_encrypted")  # an encrypted object graph cannot be inspected
            _inflate_object_streams(reader, budget)
            _walk_pdf(reader, budget)
    except PdfRejected:
        raise
    except (LimitReachedError, _OutOfTime):
        raise PdfRejected("pdf_too_complex") from None
    except (
        PdfReadError,
        PdfStreamError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
        OSError,
        EOFError,
        AssertionError,
    ):
        raise PdfRejected("pdf_corrupt") from None


def _inflate_object_streams(reader, budget):
    """Inflate every object stream the cross-reference lists, once, counting its objects and bytes first.

    pypdf parses all of a stream's objects when one of them is read and keeps them: counted here, no
    walk can make it inflate more than the budget allows.
    """
    for number in sorted({container for container, _ in reader.xref_objStm.values()}):
        container = IndirectObject(number, 0, reader).get_object()
        declared = _resolved(container.get("/N")) if isinstance(container, StreamObject) else None
        if not isinstance(declared, int) or declared < 0:
            raise PdfRejected("pdf_corrupt")
        budget.spend(objects=1 + declared)
        budget.spend(inflated=len(container.get_data()))


def _walk_pdf(reader, budget):
    """Visit every object reachable from the trailer or listed in the cross-reference, judging each."""
    listed = [
        (IndirectObject(number, generation, reader), _ANYWHERE)
        for generation, numbers in reader.xref.items()
        for number in numbers
    ]
    listed += [(IndirectObject(number, 0, reader), _ANYWHERE) for number in reader.xref_objStm]
    stack, seen = [*listed, (reader.trailer, _ANYWHERE)], set()
    while stack:
        obj, place = stack.pop()
        budget.spend()
        if isinstance(obj, IndirectObject):
            # An object reached both as a link's action and as an open action is judged in both places.
            key = (obj.idnum, obj.generation, place)
            if key in seen:
                continue
            seen.add(key)
            stack.append((obj.get_object(), place))
        elif isinstance(obj, DictionaryObject):
            _judge_pdf_dictionary(obj, place)
            stack.extend((value, _place_of(key, place)) for key, value in obj.items())
        elif isinstance(obj, ArrayObject):
            stack.extend((item, _ACTION if place == _ACTION else _ANYWHERE) for item in obj)


def _place_of(key, place):
    """Where the value under key sits, given where its dictionary sits."""
    if key == "/OpenAction" or place == _TRIGGERS or (place == _ACTION and key == "/Next"):
        return _ACTION
    return _TRIGGERS if key == "/AA" else _ANYWHERE


def _judge_pdf_dictionary(obj, place):
    """Raise pdf_active_content for a dictionary that is, or holds, active content."""
    action = _resolved(obj.get("/S"))
    if (
        _PDF_ACTIVE_KEYS.intersection(obj.keys())
        or action in _PDF_ACTIVE_ACTIONS
        or _resolved(obj.get("/Subtype")) in _PDF_ACTIVE_SUBTYPES
        or (place == _ACTION and action in _PDF_UNASKED_ACTIONS)
    ):
        raise PdfRejected("pdf_active_content")


def _resolved(value, hops=32):
    """value with indirect references followed (a bounded number of them: they may form a cycle)."""
    for _ in range(hops):
        if not isinstance(value, IndirectObject):
            return value
        value = value.get_object()
    raise PdfRejected("pdf_corrupt")
