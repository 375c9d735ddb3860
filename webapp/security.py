"""Response headers that every page carries, the client's address behind proxies, and a guard against NUL bytes."""

import ipaddress
from urllib.parse import urlsplit

from flask import abort, request
from werkzeug.middleware.proxy_fix import ProxyFix


def trust_proxies(app):
    """Believe X-Forwarded-For/-Proto/-Host/-Port from TRUSTED_PROXY_HOPS reverse proxies, and no one else.

    With 0 hops the headers are ignored: anyone can send them, so believing them would let a client pick
    the address its rate limits and audit events are filed under, or pass plain HTTP off as TLS.
    """
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)


def client_address():
    """The client's IP address (as the trusted proxies report it), or None when it is not an address.

    Every rate-limit key and audit event takes the address from here. A value that is not an IP address
    (a proxy sending "host:port", a Unix socket) is not stored, so it cannot overflow the audit column.
    """
    try:
        address = str(ipaddress.ip_address(request.remote_addr or ""))
    except ValueError:
        return None
    return address if len(address) <= 45 else None  # an IPv6 zone id can make it longer


def client_key():
    """The rate-limit key for the client's address: an IPv6 client counts as its /64, which one
    subscriber usually holds whole, so hopping between its addresses does not buy fresh limits."""
    address = client_address()
    if address and ":" in address:
        return str(ipaddress.ip_network(f"{address.split('%')[0]}/64", strict=False))
    return address or "unknown"


def storage_origin(config):
    """The origin browsers PUT to and load previews from."""
    endpoint = config.get("S3_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        return f"{parts.scheme}://{parts.netloc}"
    return "https://*.amazonaws.com"


def content_security_policy(config, form_to_storage=False):
    """The pages' CSP: no inline script or style; forms post to the app only, or also to storage
    where form_to_storage (the upload form for browsers without JavaScript)."""
    origin = storage_origin(config)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' {origin}",
            f"connect-src 'self' {origin}",
            "object-src 'none'",
            "base-uri 'none'",
            f"form-action 'self' {origin}" if form_to_storage else "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def register_security_headers(app):
    """Content-Security-Policy without inline script or style, and friends."""
    csp = content_security_policy(app.config)

    @app.after_request
    def headers(response):
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Referrer-Policy", "same-origin")  # share pages set no-referrer
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
