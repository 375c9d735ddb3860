"""Every outbound HTTP request Satchel makes (webhook deliveries), guarded against reaching inside.

A URL given by a user may name, or resolve to, an address on this host or its private network (a
metadata service, a database, the admin port of something). Such addresses are refused twice: when
the URL is registered (`check_url`, which resolves it), and when a connection is actually made, by
looking at the address the socket connected to (`post`), so a name that resolved to a public address
at registration and to 127.0.0.1 now (DNS rebinding) is still refused. An admin may allow an
endpoint private addresses.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

USER_AGENT = "Satchel-Webhooks/1"
#: How much of a receiver's answer is read (the status is what counts).
MAX_RESPONSE = 4096


class AddressRefused(Exception):
    """The URL resolves, or connected, to an address Satchel does not send to."""


class DeliveryError(Exception):
    """No answer: the connection failed, timed out, or TLS did not verify (the message says which)."""


def allowed_address(address, allow_private=False):
    """True for a globally routable unicast address, or for any address when allow_private."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if allow_private:
        return not ip.is_unspecified
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local)


def check_url(url, allow_private=False):
    """Refuse (ValueError) a URL that is not https://host[:port]/..., and (AddressRefused) one whose
    host resolves to an address that is not allowed; returns the URL."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise ValueError("Give an https:// URL with a host name (and no user name or password).")
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise ValueError("The URL's port is not valid.") from exc
    try:
        found = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"{parts.hostname} does not resolve.") from exc
    refused = sorted(address for address in found if not allowed_address(address, allow_private))
    if refused:
        raise AddressRefused(f"{parts.hostname} resolves to {refused[0]}, which is not a public address.")
    return url


class _GuardedConnection(urllib3.connection.HTTPSConnection):
    """An HTTPS connection that, once its socket connects, refuses it unless the peer is a public address."""

    def _new_conn(self):
        sock = super()._new_conn()
        peer = sock.getpeername()[0]
        if not allowed_address(peer):
            sock.close()
            raise AddressRefused(f"{self.host} connected to {peer}, which is not a public address.")
        return sock


class _GuardedPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _GuardedConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": _GuardedPool}


def _session(allow_private):
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: the peer must be the receiver itself
    if not allow_private:
        session.mount("https://", _GuardedAdapter(max_retries=0))
    return session


def post(url, body, headers, timeout, allow_private=False, verify=True):
    """POST body to url; returns (status code, the answer's first bytes). Raises AddressRefused for an
    address that is not allowed (checked on the connected socket), DeliveryError when no answer came
    within timeout (connect, then each read). Redirects are not followed."""
    check_url(url, allow_private)
    with _session(allow_private) as session:
        try:
            response = session.post(
                url,
                data=body,
                headers={"User-Agent": USER_AGENT, **headers},
                timeout=timeout,
                allow_redirects=False,
                stream=True,
                verify=verify,
            )
        except AddressRefused:
            raise
        except requests.exceptions.ConnectionError as exc:
            reason = exc.args[0] if exc.args else exc
            inner = getattr(reason, "reason", None)
            if isinstance(inner, AddressRefused) or isinstance(reason, AddressRefused):
                raise AddressRefused(str(inner or reason)) from None
            if "AddressRefused" in repr(reason):
                raise AddressRefused(str(reason)) from None
            raise DeliveryError(_describe(exc)) from None
        except requests.exceptions.RequestException as exc:
            raise DeliveryError(_describe(exc)) from None
        try:
            answer = response.raw.read(MAX_RESPONSE, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError):
            answer = b""
        finally:
            response.close()
        return response.status_code, answer


def _describe(exc):
    if isinstance(exc, requests.exceptions.Timeout):
        return "timeout: no answer in time"
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls: the certificate did not verify"
    return f"connection failed: {type(exc).__name__}"
