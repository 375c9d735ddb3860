"""read_ahead: the scan's S3 reader runs ahead of its clamd writer, and neither outlives the other."""

import threading

import pytest

from webapp.scanning.readahead import read_ahead


def test_yields_everything_in_order():
    assert list(read_ahead(iter(range(100)), depth=3)) == list(range(100))


def test_reads_ahead_while_the_consumer_is_busy():
    third_read = threading.Event()

    def source():
        for i in range(5):
            if i == 3:
                third_read.set()
            yield i

    stream = read_ahead(source(), depth=4)
    assert next(stream) == 0
    # The consumer holds the first chunk; the source has meanwhile gone on reading.
    assert third_read.wait(5), "the source did not read ahead of its consumer"
    assert list(stream) == [1, 2, 3, 4]


def test_the_sources_error_reaches_the_consumer_after_what_came_before_it():
    def source():
        yield b"first"
        raise ConnectionError("the object's stream broke")

    stream = read_ahead(source())
    assert next(stream) == b"first"
    with pytest.raises(ConnectionError, match="stream broke"):
        next(stream)


def test_a_consumer_that_stops_early_stops_and_closes_the_source():
    closed = threading.Event()
    produced = []

    def source():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    stream = read_ahead(source(), depth=2)
    assert next(stream) == 0
    stream.close()  # clamd hung up, or the job timed out
    assert closed.wait(5)
    assert len(produced) < 10  # at most depth chunks ahead, not the whole object
