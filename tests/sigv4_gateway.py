"""A signature-checking front for moto's S3 server, for the tests about presigned URLs.

moto accepts any signature, and s3rver 3.7.1 checks the expiry of a SigV4 presigned URL but not its
signature ("Signature version 4 calculation is unimplemented" in its authentication middleware). This
gateway does what S3 does with a presigned (query-string) request before it forwards it to moto:

- the URL must not have expired (X-Amz-Date + X-Amz-Expires, at most a week);
- the signature must match the canonical request rebuilt from what actually arrived: the method,
  the path (so a URL for one key cannot be used for another), every query parameter (part numbers,
  response-content-type ...) and the value of every header named in X-Amz-SignedHeaders (so a
  changed Content-Type or Content-Length is refused).

A browser's form POST under a presigned POST policy (the upload form for browsers without
JavaScript) is checked as S3 checks it: the policy's signature, its expiry, every condition
(exact values, prefixes, the content-length-range against the file) and that no field goes
unmentioned by a condition. As S3 does, ${filename} in a field becomes the name of the file sent.

Refusals are S3's XML errors with S3's codes. Requests signed in the Authorization header (the app's
own server-side calls) are forwarded unchecked: they are not what these tests are about.
"""

import base64
import hashlib
import hmac
import json
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


#: Form fields a POST policy need not mention.
UNCONDITIONED = {"policy", "x-amz-signature", "file", "bucket"}


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def check_post_policy(fields, filename, size, bucket, secrets):
    """Refuse a form POST whose policy is forged, expired or not met; returns the fields with ${filename} filled in."""
    lowered = {name.lower(): value for name, value in fields.items()}
    try:
        policy_b64 = lowered["policy"]
        policy = json.loads(base64.b64decode(policy_b64))
        access_key, day, region, service, _ = lowered["x-amz-credential"].split("/")
        provided = lowered["x-amz-signature"]
        expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    except (KeyError, ValueError, TypeError) as exc:
        raise Refusal("InvalidPolicyDocument", f"malformed POST policy: {exc}") from exc
    if lowered.get("x-amz-algorithm") != "AWS4-HMAC-SHA256" or access_key not in secrets:
        raise Refusal("InvalidAccessKeyId", "unknown access key or algorithm")
    key = _hmac(("AWS4" + secrets[access_key]).encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    if not hmac.compare_digest(provided, hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()):
        raise Refusal("SignatureDoesNotMatch", "The request signature we calculated does not match.")
    if datetime.now(UTC) > expiration:
        raise Refusal("AccessDenied", "Invalid according to Policy: Policy expired.")
    filled = {name: value.replace("${filename}", filename) for name, value in fields.items()}
    values = {name.lower(): value for name, value in filled.items()} | {"bucket": bucket}
    mentioned = set()
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            condition = ["eq", *next(iter(condition.items()))]
            condition[1] = "$" + condition[1]
        operator, *args = condition
        if operator == "content-length-range":
            if not args[0] <= size <= args[1]:
                raise Refusal("EntityTooLarge" if size > args[1] else "EntityTooSmall", "length outside the policy")
            continue
        name, expected = args[0].lstrip("$").lower(), args[1]
        mentioned.add(name)
        actual = values.get(name, "")
        if (operator == "eq" and actual != expected) or (operator == "starts-with" and not actual.startswith(expected)):
            raise Refusal("AccessDenied", f"Invalid according to Policy: Policy Condition failed: {condition}")
    unmentioned = (
        set(values) - mentioned - UNCONDITIONED - {"bucket"} - {n for n in values if n.startswith("x-ignore-")}
    )
    unmentioned -= {"x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-security-token"}
    if unmentioned:
        raise Refusal("AccessDenied", f"Invalid according to Policy: Extra input fields: {sorted(unmentioned)}")
    return filled


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
        if request.method == "POST" and request.mimetype == "multipart/form-data":
            return self.form_post(request, raw)(environ, start_response)
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

    def form_post(self, request, raw):
        """A browser's form POST: the policy checked, ${filename} filled in, then sent on to upstream."""
        upload = request.files.get("file")
        data = upload.read() if upload else b""
        request.close()  # the spooled file werkzeug parsed it into
        try:
            if upload is None:
                raise Refusal("InvalidArgument", "POST requires exactly one file upload per request.")
            fields = check_post_policy(
                dict(request.form), upload.filename or "", len(data), raw.path.strip("/").split("/")[0], self.secrets
            )
        except Refusal as refusal:
            self.refusals.append(("POST", raw.path, refusal.code))
            status = 400 if refusal.code in ("EntityTooLarge", "EntityTooSmall", "InvalidArgument") else 403
            return s3_error(status, refusal.code, refusal.message)
        upstream = self.session.post(
            f"{self.upstream}{raw.path}",
            data=fields,
            files={"file": (upload.filename, data, upload.mimetype)},
            allow_redirects=False,
            timeout=60,
        )
        response = Response(upstream.content, status=upstream.status_code)
        if "Location" in upstream.headers:
            response.headers["Location"] = upstream.headers["Location"]
        return response

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
