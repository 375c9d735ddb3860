"""An HTTP proxy in front of moto's S3 server that counts, slows, fails or holds back part uploads.

The browser upload tests point the app's S3_ENDPOINT_URL at it, so every presigned URL the browser
PUTs to goes through it (the app's and the worker's own calls do too, and pass untouched). What it
records is what reached storage, not what the browser says it sent:

- every part PUT (`?partNumber=&uploadId=`) as a `PartPut`: stored (forwarded and accepted by moto),
  failed (answered with an injected error), held then dropped, or broken (the browser hung up before
  the whole body arrived), with the most part PUTs that were in the proxy at once;
- `fail_part(n, 500)` answers the next PUT of part n with that S3 error instead of forwarding it;
- `hold_after(n)` lets n part PUTs through, then holds every later one, body received, until
  `release()`: those are dropped (answered 503, never forwarded), as bytes lost to a reload are;
- `delay` seconds spent on each part PUT before it is forwarded, so that parallel ones overlap.

Injected errors carry the CORS headers S3 sends, so the page sees the status rather than a network
error. Like tests/sigv4_gateway.py, it reads the raw request URI so the signed query is untouched.
"""

import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import requests
import requests.adapters
from werkzeug.exceptions import ClientDisconnected
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


@dataclass
class PartPut:
    upload_id: str
    part_number: int
    outcome: str  # "stored", "refused" (by moto), "failed", "dropped" or "broken"
    size: int


def s3_error(status, code, origin):
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{code}</Message></Error>'
    response = Response(body, status=status, content_type="application/xml")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "ETag"
        response.headers["Vary"] = "Origin"
    return response


class StorageProxy:
    """A threaded HTTP server on 127.0.0.1 forwarding to upstream; use as a context manager."""

    def __init__(self, upstream):
        self.upstream = upstream.rstrip("/")
        self.lock = threading.Lock()
        self.puts = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.failures = {}  # part number -> [status, ...] still to inject
        self.admit_limit = None  # when set, part PUTs past this many are held
        self.admitted = 0
        self.released = threading.Event()
        self.holding = 0
        self.session = requests.Session()
        self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="storage-proxy", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self.session.close()

    # --- what a test asks for

    def fail_part(self, part_number, *statuses):
        """Answer the next len(statuses) PUTs of part_number with these statuses, unforwarded."""
        with self.lock:
            self.failures.setdefault(part_number, []).extend(statuses)

    def hold_after(self, count):
        """Let `count` more part PUTs through, then hold the rest until release()."""
        with self.lock:
            self.admit_limit, self.admitted = count, 0
            self.released.clear()

    def release(self):
        """Drop the held part PUTs (never forwarded) and let every later one through."""
        with self.lock:
            self.admit_limit = None
            self.released.set()

    def part_puts(self, outcome=None):
        """The part PUTs handled so far (of that outcome), in the order they finished."""
        with self.lock:
            return [put for put in self.puts if outcome is None or put.outcome == outcome]

    def stored_parts(self):
        """Part numbers moto accepted, in order (a part stored twice appears twice)."""
        return [put.part_number for put in self.part_puts("stored")]

    def held(self):
        """How many part PUTs are being held now."""
        with self.lock:
            return self.holding

    # --- serving

    def wsgi(self, environ, start_response):
        request = Request(environ)
        raw = urlsplit(environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.full_path)
        query = dict(parse_qsl(raw.query))
        if request.method == "PUT" and "partNumber" in query and "uploadId" in query:
            response = self.part(request, raw, query["uploadId"], int(query["partNumber"]))
        else:
            response = self.forward(request, raw, request.get_data())
        return response(environ, start_response)

    def part(self, request, raw, upload_id, number):
        origin = request.headers.get("Origin")
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            try:
                body = request.get_data()
            except (ClientDisconnected, OSError):
                body = None
            if body is None or len(body) != (request.content_length or 0):
                return self.record(upload_id, number, "broken", 0, Response(status=400))
            time.sleep(self.delay)
            with self.lock:
                injected = self.failures.get(number)
                status = injected.pop(0) if injected else None
                hold = status is None and self.admit_limit is not None and self.admitted >= self.admit_limit
                if status is None and not hold:
                    self.admitted += 1
            if status is not None:
                code = "AccessDenied" if status == 403 else "InternalError"
                return self.record(upload_id, number, "failed", len(body), s3_error(status, code, origin))
            if hold:
                with self.lock:
                    self.holding += 1
                self.released.wait(120)
                with self.lock:
                    self.holding -= 1
                return self.record(upload_id, number, "dropped", len(body), s3_error(503, "SlowDown", origin))
            response = self.forward(request, raw, body)
            outcome = "stored" if 200 <= response.status_code < 300 else "refused"
            return self.record(upload_id, number, outcome, len(body), response)
        finally:
            with self.lock:
                self.in_flight -= 1

    def record(self, upload_id, number, outcome, size, response):
        with self.lock:
            self.puts.append(PartPut(upload_id, number, outcome, size))
        return response

    def forward(self, request, raw, body):
        url = f"{self.upstream}{raw.path}" + (f"?{raw.query}" if raw.query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = self.session.request(
            request.method, url, headers=headers, data=body, allow_redirects=False, timeout=60
        )
        response = Response(upstream.content, status=upstream.status_code)
        # Set after the body, so that a HEAD keeps the object's length rather than its empty body's.
        for name, value in upstream.headers.items():
            if name.lower() not in HOP_BY_HOP | {"server", "date", "content-encoding"}:
                response.headers[name] = value
        return response
