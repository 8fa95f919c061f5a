"""The HTTPS machinery the fakes share (Key Vault, Kubernetes API, TokenReview): stdlib,
TLS from ``ssl`` with a throw-away ``trustme`` CA.

- :class:`TLSHTTPServer`: a ThreadingHTTPServer doing the handshake per connection;
- :class:`TestCA`: the CA, a certificate for loopback and the server's SSL context, the
  CA's PEM in a directory of its own (``ca_path``) for clients to trust;
- :class:`ServingThread`: serve a server in a daemon thread, stop it with every
  keep-alive connection dropped;
- :class:`QuietHandler`: a request handler that logs nothing, reads a body (with
  ``Content-Length`` or chunked) and sends one;
- :class:`RequestLog`: what a fake saw, in order, thread safe.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Generic, TypeVar

import trustme

__all__ = ["QuietHandler", "RequestLog", "ServingThread", "TLSHTTPServer", "TestCA"]

Entry = TypeVar("Entry")


class TLSHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that does the TLS handshake in the per-connection thread and can
    drop every open keep-alive connection (:meth:`close_connections`) when it stops."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 context: ssl.SSLContext, *, socket_timeout: float = 30.0) -> None:
        self.ssl_context = context
        self.socket_timeout = socket_timeout
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.socket_timeout)
        # headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK
        # add ~40 ms to every keep-alive request
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self._conns_lock:
            self._conns.add(conn)
        try:
            self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]
        except (ssl.SSLError, OSError):
            pass
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class TestCA:
    """A throw-away CA, a server certificate for `names` and the server's SSL context; the
    CA's PEM is written to ``ca_path`` in a new directory, removed by :meth:`remove`."""

    __test__ = False  # a helper, not a test class

    def __init__(self, *names: str, prefix: str = "fake-tls-") -> None:
        self.ca = trustme.CA()
        cert = self.ca.issue_cert(*(names or ("127.0.0.1", "localhost")))
        self.directory = Path(tempfile.mkdtemp(prefix=prefix))
        self.ca_path = self.directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.context)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class ServingThread:
    """`server` serving in a daemon thread named `name` until :meth:`stop`."""

    def __init__(self, server: TLSHTTPServer, name: str) -> None:
        self.server = server
        self.port: int = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"{name}:{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, drop open keep-alive connections, free the port."""
        self.server.shutdown()
        self.server.close_connections()
        self.server.server_close()
        self._thread.join(timeout=5)


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, no access log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        """The request body, sent with Content-Length or chunked (read whole, whatever the
        answer will be: keep-alive framing depends on it)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_body(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
        """Status, `headers`, Content-Length and `payload` (no payload to a HEAD)."""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class RequestLog(Generic[Entry]):
    """The requests a fake answered, oldest first (bodies are never recorded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Entry] = []

    def append(self, entry: Entry) -> None:
        with self._lock:
            self._entries.append(entry)

    def snapshot(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def count(self, matches: Callable[[Entry], bool]) -> int:
        with self._lock:
            return sum(1 for entry in self._entries if matches(entry))
