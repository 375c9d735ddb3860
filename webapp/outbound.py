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
import threading
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

USER_AGENT = "Satchel-Webhooks/1"
REFUSED_HOST = "The host must resolve to public addresses only (not a private, loopback or link-local one)."
#: How much of a receiver's answer is read (the status is what counts).
MAX_RESPONSE = 4096


class AddressRefused(Exception):
    """The URL resolves, or connected, to an address Satchel does not send to."""


class Unresolvable(Exception):
    """The URL's host does not resolve."""


class DeliveryError(Exception):
    """No answer: the connection failed, timed out, or TLS did not verify (the message says which)."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip):
    """The IPv4 address an IPv6 one carries (IPv4-mapped, 6to4, Teredo's client, NAT64), or None."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def allowed_address(address, allow_private=False):
    """True for a globally routable unicast address (and, for an IPv6 one that carries an IPv4
    address, that one too), or for any address but 0.0.0.0 and :: when allow_private."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if allow_private:
        return not ip.is_unspecified
    inner = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    return all(
        each.is_global and not (each.is_multicast or each.is_reserved or each.is_loopback or each.is_link_local)
        for each in ([ip, inner] if inner is not None else [ip])
    )


def _host_and_port(url):
    """(host, port) of an https://host[:port]/... URL, or ValueError."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise ValueError("Give an https:// URL with a host name (and no user name or password).")
    try:
        return parts.hostname, parts.port or 443
    except ValueError as exc:
        raise ValueError("The URL's port is not valid.") from exc


def check_url(url, allow_private=False):
    """Refuse (ValueError) a URL that is not https://host[:port]/..., and (AddressRefused) one whose
    host resolves to an address that is not allowed, or (Unresolvable) does not resolve; returns the URL."""
    host, port = _host_and_port(url)
    # One answer for a name that does not resolve and one that resolves inward, naming no address:
    # registering endpoints must not be a way to map the internal network's names.
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError, OSError):
        raise Unresolvable(REFUSED_HOST) from None
    if not found or not all(allowed_address(address, allow_private) for address in found):
        raise AddressRefused(REFUSED_HOST)
    return url


#: The deadline of the request this thread is making (see post).
_current = threading.local()


class _Deadline:
    """Shuts the request's sockets down when its time is up: a read timeout alone is per read, and a
    receiver sending a byte now and then would hold the worker for ever."""

    def __init__(self, seconds):
        self.sockets, self.expired = [], False
        self.timer = threading.Timer(seconds, self.expire)
        self.timer.daemon = True

    def expire(self):
        self.expired = True
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Connection(urllib3.connection.HTTPSConnection):
    """An HTTPS connection under the thread's deadline that, once its socket connects, refuses it
    unless the peer is a public address (for endpoints an admin did not allow private addresses)."""

    guard = True

    def _new_conn(self):
        sock = super()._new_conn()
        peer = sock.getpeername()[0]
        if self.guard and not allowed_address(peer):
            sock.close()
            raise AddressRefused(REFUSED_HOST)
        return sock

    def connect(self):
        super().connect()
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            # The TLS socket itself (the plain one is detached by the wrapping): a socket object, not a
            # file descriptor number, so that a late shutdown can never reach a socket reusing it.
            deadline.sockets.append(self.sock)


class _PrivateConnection(_Connection):
    guard = False


class _Adapter(HTTPAdapter):
    def __init__(self, connection):
        self.pool = type("Pool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": connection})
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": self.pool}


def _session(allow_private):
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: the peer must be the receiver itself
    session.mount("https://", _Adapter(_PrivateConnection if allow_private else _Connection))
    return session


def post(url, body, headers, timeout, allow_private=False, verify=True):
    """POST body to url; returns (status code, the answer's first bytes). Raises AddressRefused for an
    address that is not allowed (checked on the connected socket), DeliveryError when no whole answer
    came within timeout (connect, read): each read within the read timeout, and everything within
    their sum. Redirects are not followed."""
    _host_and_port(url)  # the address itself is checked on the connected socket: one lookup, not two
    deadline = _Deadline(sum(timeout))
    _current.deadline = deadline
    deadline.timer.start()
    try:
        return _post(url, body, headers, timeout, allow_private, verify)
    except DeliveryError:
        if deadline.expired:
            raise DeliveryError("timeout: no whole answer in time") from None
        raise
    finally:
        deadline.timer.cancel()
        _current.deadline = None


def _post(url, body, headers, timeout, allow_private, verify):
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
        if _current.deadline is not None and _current.deadline.expired:
            raise DeliveryError("timeout: no whole answer in time")
        return response.status_code, answer


def _describe(exc):
    if isinstance(exc, requests.exceptions.Timeout):
        return "timeout: no answer in time"
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls: the certificate did not verify"
    return f"connection failed: {type(exc).__name__}"
