"""Benchmark: what hostile PDFs and ZIPs of about 1 MiB cost the worker's parsers (check_pdf, check_zip).

For each shape: its size, the verdict, the wall time of one check, the peak of Python's memory during a
second check (tracemalloc), and for ZIPs the reads of the file (each one ranged GET to S3 in production).
Limits are the defaults (PDF_MAX_OBJECTS, PDF_CHECK_SECONDS, ZIP_*).

    python -m bench.parser_worst_case
"""

import io
import time
import tracemalloc
from functools import partial

from tests import hostile_pdfs as pdfs
from tests import hostile_zips as zips
from webapp.config import load_config
from webapp.scanning.archives import ArchiveRejected, check_zip
from webapp.scanning.pdfs import PdfRejected, check_pdf

MiB = 1024 * 1024

PDF_SHAPES = [
    ("plain one-page PDF", pdfs.document),
    ("object stream inflating to 1 GiB", pdfs.flate_bomb_object_stream),
    ("100 object streams of 8 MiB", pdfs.object_stream_bombs),
    ("content stream inflating to 1 GiB", pdfs.flate_bomb_content),
    ("26,000 tiny objects", pdfs.many_objects),
    ("object stream declaring 300,000 objects", partial(pdfs.many_packed_objects, 300_000)),
    ("arrays nested 500,000 deep", pdfs.nested),
    ("dictionaries nested 150,000 deep", partial(pdfs.nested, 150_000, b"<< /A ", b">>")),
    ("ring of 20,000 references", pdfs.reference_cycles),
]

ZIP_SHAPES = [
    ("10,000 entries of 100 bytes", partial(zips.many_entries, 10_000, b"x" * 100)),
    ("20,000 entries (over the limit)", partial(zips.many_entries, 20_000)),
    ("20,000 entries, end record claims 1", lambda: zips.claiming(zips.many_entries(20_000), entries=1)),
    ("ZIP64 record claiming 5,000,000 entries", lambda: zips.as_zip64(zips.make_zip([("a", b"a")]), 5_000_000)),
    ("directory of 4.5 MB (comments)", zips.commented),
    ("1 GiB of zeros in one entry", partial(zips.bomb, 1024 * MiB)),
    ("gzip named notes.txt", partial(zips.hiding, "gzip", "notes.txt")),
]


class CountingReader(io.BytesIO):
    """Counts reads: storage.RangedReader turns each into one ranged GET."""

    reads = 0

    def read(self, size=-1):
        self.reads += 1
        return super().read(size)


def verdict(check, data):
    """Run check on data: (the refusal reason or "passes", reads made)."""
    reader = CountingReader(data)
    try:
        check(reader)
    except (PdfRejected, ArchiveRejected) as exc:
        return exc.reason, reader.reads
    return "passes", reader.reads


def measure(check, data):
    """(reason, reads, seconds, peak bytes)."""
    started = time.perf_counter()
    reason, reads = verdict(check, data)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    try:
        verdict(check, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return reason, reads, seconds, peak


def main():
    config = load_config("testing")  # the limits as configured, without a deployment around them

    def pdf(reader):
        check_pdf(reader.getvalue(), config["PDF_MAX_OBJECTS"], config["PDF_CHECK_SECONDS"])

    def archive(reader):
        check_zip(
            reader,
            config["ZIP_MAX_ENTRIES"],
            config["ZIP_MAX_TOTAL_BYTES"],
            config["ZIP_MAX_RATIO"],
            max_directory_bytes=config["ZIP_MAX_DIRECTORY_BYTES"],
        )

    print(f"{'shape':44} {'bytes':>10} {'verdict':28} {'seconds':>8} {'peak MiB':>9} {'reads':>6}")
    for shapes, check in ((PDF_SHAPES, pdf), (ZIP_SHAPES, archive)):
        for name, make in shapes:
            data = make()
            reason, reads, seconds, peak = measure(check, data)
            reads = reads if check is archive else ""
            print(f"{name:44} {len(data):>10,} {reason:28} {seconds:>8.2f} {peak / MiB:>9.1f} {reads:>6}", flush=True)


if __name__ == "__main__":
    main()
