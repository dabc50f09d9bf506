"""A threaded HTTP/1.1 origin server for integration tests.

One thread accepts, one thread per connection serves requests in order (keep-alive and pipelining work).
What a response looks like is chosen by query parameters (which survive routing and prefix rewrites),
falling back to the ``defaults`` given to the constructor:

=====================  =============================================================================
``status=N``           response status (default 200)
``sleep=S``            wait S seconds (float) after reading the request, before answering
``bytes=N``            answer N bytes of :mod:`pattern` instead of the JSON echo
``chunked=1``          with ``bytes``: use ``Transfer-Encoding: chunked`` (else Content-Length)
``trailer=k:v``        with ``chunked``: send this trailer field after the last chunk (repeatable)
``unframed=1``         with ``bytes``: neither Content-Length nor chunked; the body ends when the
                       upstream closes the connection
``garbage=1``          answer bytes that are not an HTTP/1.1 response, then close
``chunk=N``            with ``bytes``: write size (default 256 KiB)
``pause=S``            with ``bytes``: wait S seconds after the first write (to observe streaming)
``close=before_headers``  read the request, then close the connection without answering
``close=mid_body``     send headers announcing ``bytes`` (default 100000) bytes, half the body, then close
``close=after_response``  answer normally (no ``Connection: close``), then close the connection
``resp_header=k:v``    add a response header (repeatable)
``body=TEXT``          answer TEXT (text/plain) instead of the JSON echo
``first=N``            apply the other parameters to the first N requests this upstream receives only;
                       later requests get the default echo (an upstream that fails, then recovers)
``switch=PROTO``       answer ``101 Switching Protocols`` with ``Upgrade: PROTO`` (none when empty), then
                       keep reading requests on the connection, so bytes a tunnel would carry show up
                       as requests
=====================  =============================================================================

The default answer is a JSON echo: ``upstream`` (server name), ``method``, ``target`` (raw request target),
``path`` (without query), ``query``, ``version``, ``headers`` (list of ``[name, value]`` as received),
``body_length``, ``body_sha256``, ``body`` (latin-1 text of the body when it is at most 64 KiB),
``connection`` (0-based index of the TCP connection) and ``request_on_connection``.
Request bodies (Content-Length or chunked) are streamed through SHA-256 and never held whole.
"""
from __future__ import annotations

import hashlib
import json
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import pattern

MAX_HEAD = 1 << 20
KEEP_BODY = 64 * 1024

REASONS = {200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found",
           400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class HeaderLookup:
    """Case-insensitive access to ``self.headers`` (a list of name/value pairs), shared by requests,
    responses and echoes."""

    headers: list[tuple[str, str]]

    def header(self, name: str, default: str | None = None) -> str | None:
        values = self.header_values(name)
        return values[0] if values else default

    def header_values(self, name: str) -> list[str]:
        lower = name.lower()
        return [v for k, v in self.headers if k.lower() == lower]

    def has_header(self, name: str) -> bool:
        return bool(self.header_values(name))


class ConnectionClosed(Exception):
    pass


class SocketReader:
    """Buffered reads from a socket: lines, heads, exact counts and streamed chunks."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self, size: int = 65536) -> bool:
        data = self.sock.recv(max(size, 65536))
        if not data:
            return False
        self.buf += data
        return True

    def read_until(self, delimiter: bytes, limit: int = MAX_HEAD) -> bytes | None:
        """Bytes up to and including ``delimiter``; None on a clean EOF before any byte."""
        start = 0
        while True:
            index = self.buf.find(delimiter, start)
            if index >= 0:
                end = index + len(delimiter)
                out = bytes(self.buf[:end])
                del self.buf[:end]
                return out
            if len(self.buf) > limit:
                raise ValueError("line or head too long")
            start = max(0, len(self.buf) - len(delimiter) + 1)
            if not self._fill():
                if not self.buf:
                    return None
                raise ConnectionClosed("EOF in the middle of a line")

    def read_some(self, limit: int) -> bytes:
        if self.buf:
            size = min(limit, len(self.buf))
            out = bytes(self.buf[:size])
            del self.buf[:size]
            return out
        data = self.sock.recv(limit)
        if not data:
            raise ConnectionClosed("EOF in a body")
        return data

    def read_exact(self, size: int) -> bytes:
        parts = []
        while size > 0:
            data = self.read_some(min(size, 1 << 20))
            parts.append(data)
            size -= len(data)
        return b"".join(parts)


@dataclass
class Request(HeaderLookup):
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body_length: int = 0
    body_sha256: str = ""
    body_prefix: bytes = b""
    #: Trailer fields of a chunked request body.
    trailers: list[tuple[str, str]] = field(default_factory=list)
    #: The request head exactly as received (request line to blank line), for checks of canonical form.
    raw_head: bytes = b""
    connection: int = 0
    index_on_connection: int = 0
    received_at: float = field(default_factory=time.monotonic)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.target).query, keep_blank_values=True)



def parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    lower = name.lower()
    for key, value in headers:
        if key.lower() == lower:
            return value
    return None


class Upstream:
    """Use as a context manager or call :meth:`start`/:meth:`stop`."""

    def __init__(self, name: str = "upstream", defaults: Mapping[str, Any] | None = None,
                 host: str = "127.0.0.1", port: int = 0, tls: "ssl.SSLContext | None" = None):
        self.name = name
        #: A server-side context: connections are TLS, and the echo says who the peer was (``tls``).
        self.tls = tls
        #: Handshakes that failed, as ``ssl`` described them (a refused client is not a harness error).
        self.tls_failures: list[str] = []
        if tls is not None:
            def remember_sni(sock: Any, name: str | None, _context: Any) -> None:
                sock.gatehouse_sni = name
            tls.sni_callback = remember_sni
        self.defaults = {k: [str(v)] if not isinstance(v, list) else [str(x) for x in v]
                         for k, v in (defaults or {}).items()}
        self.host = host
        #: 0: an ephemeral port, known after :meth:`start`.
        self.port = port
        self._listener: socket.socket | None = None
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.accepted = 0
        self.requests: list[Request] = []
        self.errors: list[str] = []
        self.active_requests = 0
        #: Request heads parsed so far (counted before the body is read, unlike ``requests``).
        self.heads = 0

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> "Upstream":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(256)
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        thread = threading.Thread(target=self._accept_loop, name=f"upstream-{self.name}-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _hard_close(conn)
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> "Upstream":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ----------------------------------------------------------------------------------- inspection

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"upstream {self.name}: {len(self.requests)} of {count} requests arrived")
                self._lock.wait(remaining)
            return list(self.requests)

    def wait_for_heads(self, count: int, timeout: float = 5.0) -> None:
        """Waits until ``count`` request heads have arrived (bodies may still be in flight)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.heads < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"upstream {self.name}: {self.heads} of {count} request heads arrived")
                self._lock.wait(remaining)

    def wait_for_active(self, count: int = 1, timeout: float = 5.0) -> None:
        """Waits until ``count`` requests have been read and are still being answered."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.active_requests < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"upstream {self.name}: {self.active_requests} active requests")
                self._lock.wait(remaining)

    def wait_for_open_connections(self, count: int, timeout: float = 5.0) -> None:
        """Waits until exactly ``count`` connections are open (the peer closing one counts at once)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._connections) != count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"upstream {self.name}: {len(self._connections)} connections open")
                self._lock.wait(remaining)

    def reset_counters(self) -> None:
        with self._lock:
            self.accepted = 0
            self.requests.clear()

    # ---------------------------------------------------------------------------------------- serving

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                index = self.accepted
                self.accepted += 1
                self._connections.append(conn)
                self._lock.notify_all()
            thread = threading.Thread(target=self._serve, args=(conn, index),
                                      name=f"upstream-{self.name}-{index}", daemon=True)
            thread.start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        if self.tls is not None:
            try:
                plain = conn
                conn = self.tls.wrap_socket(conn, server_side=True)
                with self._lock:
                    self._connections = [conn if c is plain else c for c in self._connections]
            except (ssl.SSLError, OSError) as error:
                with self._lock:
                    self.tls_failures.append(str(error))
                    self._lock.notify_all()
                _hard_close(conn)
                return
        reader = SocketReader(conn)
        served = 0
        try:
            while not self._stopping.is_set():
                head = reader.read_until(b"\r\n\r\n")
                if head is None:
                    return
                keep_open = self._handle(conn, reader, head, index, served)
                served += 1
                if not keep_open:
                    return
        except (ConnectionClosed, OSError):
            return
        except Exception as error:  # a bug in the harness: keep it visible to tests
            self.errors.append(f"{type(error).__name__}: {error}")
        finally:
            _hard_close(conn, graceful=True)
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
                self._lock.notify_all()

    def _read_body(self, reader: SocketReader,
                   headers: list[tuple[str, str]]) -> tuple[int, str, bytes, list[tuple[str, str]]]:
        digest = hashlib.sha256()
        kept = bytearray()
        trailers: list[tuple[str, str]] = []
        total = 0

        def take(data: bytes) -> None:
            nonlocal total
            digest.update(data)
            if len(kept) < KEEP_BODY + 1:
                kept.extend(data[:KEEP_BODY + 1 - len(kept)])
            total += len(data)

        encoding = (_header(headers, "transfer-encoding") or "").lower()
        if "chunked" in encoding:
            while True:
                line = reader.read_until(b"\r\n", limit=4096)
                if line is None:
                    raise ConnectionClosed("EOF in chunk size")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:  # trailers
                        trailer = reader.read_until(b"\r\n", limit=65536)
                        if trailer in (None, b"\r\n"):
                            break
                        name, _, value = trailer.decode("latin-1").partition(":")
                        trailers.append((name.strip(), value.strip()))
                    break
                remaining = size
                while remaining:
                    data = reader.read_some(min(remaining, 1 << 20))
                    take(data)
                    remaining -= len(data)
                reader.read_exact(2)
        else:
            remaining = int(_header(headers, "content-length") or "0")
            while remaining:
                data = reader.read_some(min(remaining, 1 << 20))
                take(data)
                remaining -= len(data)
        return total, digest.hexdigest(), bytes(kept), trailers

    def _handle(self, conn: socket.socket, reader: SocketReader, head: bytes, index: int, served: int) -> bool:
        request_line, headers = parse_head(head)
        method, target, version = (request_line.split(" ") + ["", "", ""])[:3]
        with self._lock:
            self.heads += 1
            self._lock.notify_all()
        length, sha, prefix, trailers = self._read_body(reader, headers)
        request = Request(method=method, target=target, version=version, headers=headers,
                          body_length=length, body_sha256=sha, body_prefix=prefix, trailers=trailers,
                          connection=index, index_on_connection=served, raw_head=head)
        params = dict(self.defaults)
        params.update(request.query)

        def param(name: str, default: str | None = None) -> str | None:
            values = params.get(name)
            return values[-1] if values else default

        with self._lock:
            number = len(self.requests)
            self.requests.append(request)
            self.active_requests += 1
            self._lock.notify_all()
        first = param("first")
        if first is not None and number >= int(first):
            params = {}
        try:
            delay = float(param("sleep", "0") or 0)
            if delay > 0:
                self._stopping.wait(delay)
            close = param("close")
            if close == "before_headers":
                _hard_close(conn, graceful=True)
                return False
            status = int(param("status", "200") or 200)
            extra = []
            for item in params.get("resp_header", []):
                name, _, value = item.partition(":")
                extra.append((name.strip(), value.strip()))
            client_wants_close = (_header(headers, "connection") or "").lower() == "close"
            common = [("x-upstream-name", self.name)] + extra
            if client_wants_close:
                common.append(("Connection", "close"))

            switch = param("switch")
            if switch is not None:
                upgrade = f"Upgrade: {switch}\r\n" if switch else ""
                conn.sendall(f"HTTP/1.1 101 Switching Protocols\r\n{upgrade}Connection: upgrade\r\n\r\n".encode())
                return True

            if param("garbage") is not None:
                conn.sendall(b"HTTP/1.1 200 OK\r\nThis is not a header line\r\n\r\n")
                time.sleep(0.05)
                _hard_close(conn, graceful=True)
                return False

            if close == "mid_body":
                total = int(param("bytes", "100000") or 100000)
                self._send_head(conn, status, common + [("Content-Type", "application/octet-stream"),
                                                        ("Content-Length", str(total))])
                for chunk in pattern.chunks(total // 2, 65536):
                    conn.sendall(chunk)
                time.sleep(0.05)
                _hard_close(conn, graceful=True)
                return False

            if param("bytes") is not None:
                total = int(param("bytes") or 0)
                chunk_size = int(param("chunk", str(256 * 1024)) or 262144)
                pause = float(param("pause", "0") or 0)
                chunked = param("chunked", "0") in ("1", "true", "yes")
                unframed = param("unframed", "0") in ("1", "true", "yes")
                framing = [("Transfer-Encoding", "chunked")] if chunked else [] if unframed \
                    else [("Content-Length", str(total))]
                self._send_head(conn, status, common + [("Content-Type", "application/octet-stream")] + framing)
                if method != "HEAD":
                    for number, chunk in enumerate(pattern.chunks(total, chunk_size)):
                        if chunked:
                            conn.sendall(b"%x\r\n" % len(chunk))
                            conn.sendall(chunk)
                            conn.sendall(b"\r\n")
                        else:
                            conn.sendall(chunk)
                        if number == 0 and pause > 0:
                            self._stopping.wait(pause)
                    if chunked:
                        trailers = "".join(f"{item}\r\n" for item in params.get("trailer", []))
                        conn.sendall(b"0\r\n" + trailers.encode("latin-1") + b"\r\n")
                if unframed:
                    _hard_close(conn, graceful=True)
                    return False
                return not client_wants_close

            text = param("body")
            if text is not None:
                body = text.encode()
                content_type = "text/plain"
            else:
                echo = {
                    "upstream": self.name,
                    "method": method,
                    "target": target,
                    "path": request.path,
                    "query": request.query,
                    "version": version,
                    "headers": [[k, v] for k, v in headers],
                    "body_length": length,
                    "body_sha256": sha,
                    "body": prefix.decode("latin-1") if length <= KEEP_BODY else None,
                    "connection": index,
                    "request_on_connection": served,
                    "tls": self._tls_facts(conn),
                }
                body = json.dumps(echo).encode()
                content_type = "application/json"
            no_body = method == "HEAD" or status in (204, 304)
            head_headers = common + [("Content-Type", content_type)]
            if status != 204:
                head_headers.append(("Content-Length", str(len(body))))
            self._send_head(conn, status, head_headers)
            if not no_body:
                conn.sendall(body)
            if close == "after_response":
                _hard_close(conn, graceful=True)
                return False
            return not client_wants_close
        finally:
            with self._lock:
                self.active_requests -= 1
                self._lock.notify_all()

    @staticmethod
    def _tls_facts(conn: socket.socket) -> dict[str, Any] | None:
        """Who connected over TLS: the client certificate's first URI SAN, the SNI, ALPN and version."""
        if not isinstance(conn, ssl.SSLSocket):
            return None
        cert = conn.getpeercert() or {}
        uris = [value for kind, value in cert.get("subjectAltName", ()) if kind == "URI"]
        return {"peer": uris[0] if uris else None, "sni": getattr(conn, "gatehouse_sni", None),
                "alpn": conn.selected_alpn_protocol(), "version": conn.version()}

    @staticmethod
    def _send_head(conn: socket.socket, status: int, headers: list[tuple[str, str]]) -> None:
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in headers]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def _hard_close(conn: socket.socket, graceful: bool = False) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR if not graceful else socket.SHUT_WR)
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass


class Echo(HeaderLookup):
    """A parsed JSON echo with case-insensitive header access."""

    def __init__(self, data: Mapping[str, Any]):
        self.data = dict(data)
        self.headers: list[tuple[str, str]] = [(k, v) for k, v in data.get("headers", [])]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def path(self) -> str:
        return self.data["path"]

    @property
    def target(self) -> str:
        return self.data["target"]

    @property
    def upstream(self) -> str:
        return self.data["upstream"]


    def header_names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}

    def __repr__(self) -> str:
        return f"Echo({self.data!r})"


def echo_of(response: Any) -> Echo:
    """Parses an echo from an httpx response or a :class:`rawhttp.Response`."""
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    content = getattr(response, "content", None)
    if content is None:
        content = response.body
    try:
        return Echo(json.loads(content))
    except ValueError as error:
        raise AssertionError(f"not an upstream echo (status {status}): {content[:300]!r}") from error
