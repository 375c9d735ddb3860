"""Response headers that every page carries, and a guard against NUL bytes in requests."""
from urllib.parse import urlsplit

from flask import abort, request


def storage_origin(config):
    """The origin browsers PUT to and load previews from."""
    endpoint = config.get("S3_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        return f"{parts.scheme}://{parts.netloc}"
    return "https://*.amazonaws.com"


def register_security_headers(app):
    """Content-Security-Policy without inline script or style, and friends."""
    origin = storage_origin(app.config)
    csp = "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src 'self' {origin}",
        f"connect-src 'self' {origin}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])

    @app.after_request
    def headers(response):
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        if request.is_secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return response


def register_input_guards(app):
    """Refuse NUL characters anywhere in the URL or form: no database stores them (PostgreSQL errors)."""

    @app.before_request
    def refuse_nul():
        values = [request.path, *request.args.keys(), *request.args.values()]
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            values += [*request.form.keys(), *request.form.values()]
        if any("\x00" in value for value in values):
            abort(400, "The request contains a NUL character.")
