"""A signature-checking front for moto's S3 server, for the tests about presigned URLs.

moto accepts any signature, and s3rver 3.7.1 checks the expiry of a SigV4 presigned URL but not its
signature ("Signature version 4 calculation is unimplemented" in its authentication middleware). This
gateway does what S3 does with a presigned (query-string) request before it forwards it to moto:

- the URL must not have expired (X-Amz-Date + X-Amz-Expires, at most a week);
- the signature must match the canonical request rebuilt from what actually arrived: the method,
  the path (so a URL for one key cannot be used for another), every query parameter (part numbers,
  response-content-type ...) and the value of every header named in X-Amz-SignedHeaders (so a
  changed Content-Type or Content-Length is refused).

Refusals are S3's XML errors with S3's codes. Requests signed in the Authorization header (the app's
own server-side calls) are forwarded unchecked: they are not what these tests are about.
"""

import hmac
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit

import requests
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

MAX_EXPIRES = 7 * 24 * 3600
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


class Refusal(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def s3_error(status, code, message):
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(body, status=status, content_type="application/xml")


def expected_signature(request, raw_path, raw_query, secrets):
    """Check a presigned request's expiry and return (provided, expected) signatures."""
    params = dict(parse_qsl(raw_query, keep_blank_values=True))
    try:
        credential = params["X-Amz-Credential"]
        amz_date = params["X-Amz-Date"]
        expires = int(params["X-Amz-Expires"])
        signed_headers = params["X-Amz-SignedHeaders"].split(";")
        provided = params["X-Amz-Signature"]
        access_key, day, region, service, _ = credential.split("/")
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError) as exc:
        raise Refusal("AuthorizationQueryParametersError", f"malformed presigned URL: {exc}") from exc
    if not 0 < expires <= MAX_EXPIRES:
        raise Refusal("AuthorizationQueryParametersError", "X-Amz-Expires out of range")
    if datetime.now(UTC) > signed_at + timedelta(seconds=expires):
        raise Refusal("AccessDenied", "Request has expired")
    if access_key not in secrets or day != amz_date[:8]:
        raise Refusal("InvalidAccessKeyId", "unknown access key or credential scope")

    # Rebuild the request as it arrived, minus the signature, with only the signed headers; the query
    # is decoded and re-encoded the way SigV4 canonicalises it.
    unsigned_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in parse_qsl(raw_query, keep_blank_values=True)
        if k != "X-Amz-Signature"
    )
    headers = {}
    for name in signed_headers:
        value = request.headers.get(name)
        if value is None:
            raise Refusal("SignatureDoesNotMatch", f"signed header {name} is missing")
        headers[name] = value
    rebuilt = AWSRequest(
        method=request.method, url=f"http://{request.host}{raw_path}?{unsigned_query}", headers=headers
    )
    rebuilt.context["timestamp"] = amz_date
    signer = S3SigV4QueryAuth(Credentials(access_key, secrets[access_key]), service, region, expires=expires)
    canonical = signer.canonical_request(rebuilt)
    return provided, signer.signature(signer.string_to_sign(rebuilt, canonical), rebuilt)


class Gateway:
    """A threaded HTTP server on 127.0.0.1 that checks presigned requests and forwards to upstream."""

    def __init__(self, upstream, secrets):
        self.upstream = upstream.rstrip("/")
        self.secrets = secrets
        self.refusals = []
        self.session = requests.Session()
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.session.close()

    def wsgi(self, environ, start_response):
        request = Request(environ)
        raw = urlsplit(environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.full_path)
        if "X-Amz-Signature=" in raw.query:
            try:
                provided, expected = expected_signature(request, raw.path, raw.query, self.secrets)
                if not hmac.compare_digest(provided, expected):
                    raise Refusal(
                        "SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature you provided.",
                    )
            except Refusal as refusal:
                self.refusals.append((request.method, raw.path, refusal.code))
                return s3_error(
                    403 if refusal.code != "AuthorizationQueryParametersError" else 400, refusal.code, refusal.message
                )(environ, start_response)
        return self.forward(request, raw)(environ, start_response)

    def forward(self, request, raw):
        url = f"{self.upstream}{raw.path}" + (f"?{raw.query}" if raw.query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = self.session.request(
            request.method, url, headers=headers, data=request.get_data(), allow_redirects=False, timeout=60
        )
        response = Response(upstream.content, status=upstream.status_code)
        # Set after the body, so that a HEAD keeps the object's length rather than its empty body's.
        for name, value in upstream.headers.items():
            if name.lower() not in HOP_BY_HOP | {"server", "date", "content-encoding"}:
                response.headers[name] = value
        return response
