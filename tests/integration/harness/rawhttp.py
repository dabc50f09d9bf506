"""A minimal HTTP/1.1 client over a raw socket.

httpx normalises what it sends and hides the connection; these tests need to send exactly the bytes they
mean (pipelining, malformed requests, hop-by-hop headers, slow headers), to see whether a response body was
cut short, and to move a GiB without per-chunk overhead.
"""
from __future__ import annotations

import hashlib
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from .upstream import ConnectionClosed, HeaderLookup, SocketReader

Headers = Sequence[tuple[str, str]] | Mapping[str, str]


def _header_list(headers: Headers | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def format_request(method: str, target: str, headers: Headers | None = None, body: bytes | None = None,
                   *, host: str | None = "gatehouse.test", content_length: bool = True) -> bytes:
    """Serialises one request. ``host=None`` omits Host unless ``headers`` has one."""
    items = _header_list(headers)
    names = {k.lower() for k, _ in items}
    if host is not None and "host" not in names:
        items.insert(0, ("Host", host))
    if body is not None and content_length and "content-length" not in names and "transfer-encoding" not in names:
        items.append(("Content-Length", str(len(body))))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    return head.encode("latin-1") + (body or b"")


@dataclass
class Response(HeaderLookup):
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    body_length: int = 0
    body_sha256: str | None = None
    #: False when the connection closed before the announced body (or the last chunk) arrived.
    complete: bool = True
    elapsed: float = 0.0
    #: Trailer fields of a chunked response, as received.
    trailers: list[tuple[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class RawConnection:
    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.host = host
        self.port = port
        self._adopt(socket.create_connection((host, port), timeout=timeout))

    def _adopt(self, sock: socket.socket) -> None:
        """Uses ``sock`` (plain or TLS-wrapped) for this connection."""
        self.sock = sock
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = SocketReader(self.sock)

    @property
    def local_address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def send(self, data: bytes | memoryview) -> None:
        self.sock.sendall(data)

    def send_stream(self, chunks: Iterable[bytes | memoryview]) -> int:
        total = 0
        for chunk in chunks:
            self.sock.sendall(chunk)
            total += len(chunk)
        return total

    def request(self, method: str, target: str, headers: Headers | None = None, body: bytes | None = None,
                *, host: str | None = "gatehouse.test", **read: Any) -> Response:
        self.send(format_request(method, target, headers, body, host=host))
        return self.read_response(method=method, **read)

    def read_response(self, *, method: str = "GET", keep_body: bool = True, hash_body: bool = False,
                      on_chunk: Callable[[bytes], None] | None = None, max_keep: int = 64 << 20) -> Response:
        """Reads one response. A connection closed mid-body gives ``complete=False`` instead of an error."""
        started = time.monotonic()
        head = self.reader.read_until(b"\r\n\r\n")
        if head is None:
            raise ConnectionClosed("connection closed before a response")
        text = head.decode("latin-1")
        lines = text.split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        response = Response(status=int(code), reason=reason, version=version, headers=headers)

        digest = hashlib.sha256() if hash_body else None
        kept = bytearray()

        def take(data: bytes) -> None:
            if digest is not None:
                digest.update(data)
            if keep_body and len(kept) < max_keep:
                kept.extend(data)
            if on_chunk is not None:
                on_chunk(data)
            response.body_length += len(data)

        no_body = method == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        encoding = (response.header("transfer-encoding") or "").lower()
        try:
            if no_body:
                pass
            elif "chunked" in encoding:
                while True:
                    line = self.reader.read_until(b"\r\n", limit=4096)
                    if line is None:
                        raise ConnectionClosed("EOF in chunk size")
                    size = int(line.split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        while True:
                            trailer = self.reader.read_until(b"\r\n", limit=65536)
                            if trailer in (None, b"\r\n"):
                                break
                            name, _, value = trailer.decode("latin-1").partition(":")
                            response.trailers.append((name.strip(), value.strip()))
                        break
                    remaining = size
                    while remaining:
                        data = self.reader.read_some(min(remaining, 1 << 20))
                        take(data)
                        remaining -= len(data)
                    self.reader.read_exact(2)
            elif response.header("content-length") is not None:
                remaining = int(response.header("content-length") or 0)
                while remaining:
                    data = self.reader.read_some(min(remaining, 1 << 20))
                    take(data)
                    remaining -= len(data)
            else:  # close-delimited
                while True:
                    try:
                        data = self.reader.read_some(1 << 20)
                    except ConnectionClosed:
                        break
                    take(data)
        except (ConnectionClosed, ConnectionResetError):
            response.complete = False
        response.body = bytes(kept)
        response.body_sha256 = digest.hexdigest() if digest is not None else None
        response.elapsed = time.monotonic() - started
        return response

    def is_closed_by_peer(self, timeout: float = 2.0) -> bool:
        """True if the peer closes the connection (EOF or reset) within ``timeout`` with no more data."""
        self.sock.settimeout(timeout)
        try:
            if self.reader.buf:
                return False
            data = self.sock.recv(1)
            return data == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
