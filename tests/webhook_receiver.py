"""A real HTTPS server for webhook tests: its certificate comes from a throwaway CA (trustme), which
the app is told to trust (WEBHOOK_CA_BUNDLE); it records every POST and answers as told."""

import http.server
import ssl
import threading
import time
from dataclasses import dataclass, field

import trustme


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class Receiver:
    port: int
    ca_path: str
    received: list = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    #: seconds between the bytes of the answer's status line and headers (0: all at once)
    drip: float = 0.0

    def url(self, path="/hook", host="localhost"):
        return f"https://{host}:{self.port}{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's spelling)
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        receiver.received.append(Received(self.path, dict(self.headers), body))
        if receiver.delay:
            time.sleep(receiver.delay)
        if receiver.drip:
            try:
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 60 + b"\r\n\r\n":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(receiver.drip)
            except OSError:
                pass  # cut off, as it should be
            return
        try:
            self.send_response(receiver.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass  # the sender gave up waiting

    def log_message(self, *args):
        pass


def serve(tmp_path):
    """Start a receiver on 127.0.0.1 (as https://localhost:<port>); returns (receiver, stop)."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_path = tmp_path / "webhook-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.receiver = Receiver(server.server_address[1], str(ca_path))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()

    return server.receiver, stop


def drip_proxy(target_port, delay):
    """A TCP proxy on 127.0.0.1 that passes the client's bytes on at once and the server's one byte
    every delay seconds (a TLS handshake at a crawl); returns (its port, stop)."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    stopped = threading.Event()

    def pump(source, sink, pause):
        try:
            while not stopped.is_set():
                data = source.recv(1 if pause else 65536)
                if not data:
                    return
                sink.sendall(data)
                if pause:
                    time.sleep(pause)
        except OSError:
            return
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass

    def accept():
        while not stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", target_port))
            threading.Thread(target=pump, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, client, delay), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()

    def stop():
        stopped.set()
        listener.close()

    return listener.getsockname()[1], stop
