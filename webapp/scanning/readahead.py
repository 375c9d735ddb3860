"""Reading ahead: a stream read in a thread of its own, so reading and using it overlap."""

import queue
import threading

#: Seconds between the reading thread's looks at whether the consumer went away.
_POLL = 0.1


class _Failed:
    def __init__(self, exc):
        self.exc = exc


_END = object()


def read_ahead(chunks, depth=8, join_timeout=5.0):
    """Yield what the iterator chunks yields, read by a thread of its own up to depth chunks ahead.

    A scan reads the object from S3 while it sends what it has read to clamd: with the two
    overlapped, it runs at the slower one's pace instead of the sum of both. At most depth chunks
    wait in memory. An exception raised by chunks reaches the consumer where it would have; a
    consumer that stops early (clamd hung up, the job timed out) stops the reading thread, which
    closes chunks.
    """
    waiting = queue.Queue(depth)
    stop = threading.Event()

    def hand_over(item):
        while not stop.is_set():
            try:
                waiting.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def read():
        try:
            for chunk in chunks:
                if not hand_over(chunk):
                    return
            hand_over(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            hand_over(_Failed(exc))
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()

    thread = threading.Thread(target=read, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = waiting.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        # A read stuck on the network ends with its own timeout; the consumer need not wait for it.
        thread.join(join_timeout)
