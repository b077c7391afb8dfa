"""A raw TCP server on 127.0.0.1 for tests that must control the bytes and the timing of an answer (a reply
dripped a byte at a time, TLS and plain HTTP on one port). Each connection carries one request, read up to the
end of its body, logged, then answered by the test's handler, which writes raw bytes to the socket."""
from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]             # lower-case names
    body: bytes
    tls: bool
    raw_headers: list[tuple[str, str]] = field(default_factory=list)


class RawServer:
    """``handler(server, sock, request)`` answers each request. With ``tls``, a connection whose first byte
    opens a TLS handshake is served over TLS, any other one in plain HTTP, on the same port."""

    def __init__(self, handler: Callable[["RawServer", socket.socket, Request], None], host: str = "127.0.0.1",
                 tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.requests: list[Request] = []
        self.connections = 0
        self.stopped = threading.Event()
        self.listener = socket.create_server((host, 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.host = host
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            tls = self.tls is not None and conn.recv(1, socket.MSG_PEEK) == b"\x16"
            if tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, body = data.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            raw = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
            headers = {k.lower(): v for k, v in raw}
            while len(body) < int(headers.get("content-length", 0)):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            request = Request(method, target, headers, body, tls, raw)
            with self._lock:
                self.requests.append(request)
            self.handler(self, conn, request)
        except (OSError, ssl.SSLError, ValueError):
            pass                                    # the client went away (e.g. it timed out)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def drip(self, sock: socket.socket, data: bytes, every: float) -> None:
        """Send ``data`` one byte every ``every`` seconds, until sent or the server stops."""
        for byte in data:
            if self.stopped.wait(every):
                return
            sock.sendall(bytes([byte]))

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()
        self._thread.join(5)


def answer(status: str, body: bytes = b"", headers: list[tuple[str, str]] = ()) -> bytes:
    """The raw bytes of an HTTP/1.1 answer that closes its connection."""
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
