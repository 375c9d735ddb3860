"""A minimal clamd client (INSTREAM over TCP or a Unix socket) and what its replies mean."""

import socket
import struct
from urllib.parse import urlparse

#: The EICAR test string: every antivirus engine must report it.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class ScannerUnavailable(Exception):
    """clamd could not be reached or did not answer in time: retry later."""


class ScanIncomplete(Exception):
    """clamd could not finish this stream (a garbage reply): never treated as clean."""


class ScanLimitsExceeded(ScanIncomplete):
    """clamd stopped reading at one of its limits (stream length, file or scan size, files, depth)."""


class ScanAborted(Exception):
    """clamd took the stream but timed out or dropped the connection before its verdict (it may
    have crashed on these bytes): a failed scan of this file, unlike ScannerUnavailable."""


#: What clamd calls a file it did not read whole (with AlertExceedsMax), and its INSTREAM overflow.
_LIMITS_FOUND = "Heuristics.Limits.Exceeded"
_STREAM_OVERFLOW = "INSTREAM size limit exceeded"


class ClamdClient:
    """A minimal clamd client speaking INSTREAM over TCP or a Unix socket."""

    def __init__(self, url, timeout=30.0, chunk_size=64 * 1024):
        self.url = url
        self.timeout = timeout
        self.chunk_size = chunk_size

    def _connect(self):
        parsed = urlparse(self.url)
        try:
            if parsed.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(parsed.path)
            elif parsed.scheme == "tcp":
                sock = socket.create_connection((parsed.hostname, parsed.port or 3310), self.timeout)
            else:
                raise ScannerUnavailable(f"unsupported CLAMD_URL scheme {parsed.scheme!r}")
        except OSError as exc:
            raise ScannerUnavailable(f"clamd unreachable: {exc}") from exc
        return sock

    def _command(self, command):
        sock = self._connect()
        try:
            sock.sendall(b"z" + command + b"\0")
            return _read_reply(sock)
        except OSError as exc:
            raise ScannerUnavailable(f"clamd failed: {exc}") from exc
        finally:
            sock.close()

    def ping(self):
        """True when clamd answers PONG."""
        return self._command(b"PING") == "PONG"

    def version(self):
        """clamd's engine and signature version line."""
        return self._command(b"VERSION")

    def scan_stream(self, chunks):
        """Send chunks through INSTREAM; returns None when clean or the signature name."""
        return parse_instream_reply(self.instream(chunks))

    def instream(self, chunks):
        """Send chunks through INSTREAM; returns clamd's reply as it came (never empty).

        Refused connections raise ScannerUnavailable (clamd is down: wait); a timeout or a dropped
        connection once connected raises ScanAborted (clamd choked on these bytes: count it).
        The chunks' source raises its own errors (the storage adapter's are never OSError).
        """
        sock = self._connect()
        try:
            try:
                sock.sendall(b"zINSTREAM\0")
                for chunk in chunks:
                    for start in range(0, len(chunk), self.chunk_size):
                        piece = chunk[start : start + self.chunk_size]
                        sock.sendall(struct.pack("!L", len(piece)) + piece)
                sock.sendall(struct.pack("!L", 0))
            except (BrokenPipeError, ConnectionResetError):
                # clamd closes the socket after "INSTREAM size limit exceeded": read its reply.
                pass
            reply = _read_reply(sock)
        except TimeoutError as exc:
            raise ScanAborted(f"clamd did not answer within {self.timeout:g}s") from exc
        except OSError as exc:
            raise ScanAborted(f"clamd failed mid-stream: {exc}") from exc
        finally:
            sock.close()
        if not reply:
            raise ScanAborted("clamd closed the connection without a verdict")
        return reply


def _read_reply(sock):
    data = b""
    while not data.endswith(b"\0"):
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data.rstrip(b"\0").decode("utf-8", "replace").strip()


def parse_instream_reply(reply):
    """None for exactly 'stream: OK', the name for 'stream: <name> FOUND'; anything else raises.

    A limit alert is not a signature: clamd did not read the whole file, so nothing was found or
    cleared (ScanLimitsExceeded, as for an INSTREAM overflow).
    """
    if reply == "stream: OK":
        return None
    if reply.startswith("stream: ") and reply.endswith(" FOUND"):
        name = reply[len("stream: ") : -len(" FOUND")].strip()
        if name.startswith(_LIMITS_FOUND):
            raise ScanLimitsExceeded(name[:200])
        if name and "\n" not in name:
            return name
    if reply.startswith(_STREAM_OVERFLOW):
        raise ScanLimitsExceeded(reply[:200])
    if not reply:
        raise ScanAborted("clamd closed the connection without a verdict")
    raise ScanIncomplete(reply[:200])
