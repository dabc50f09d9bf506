"""A small HTTP/2 client on the ``h2`` library, for what curl cannot show: trailers both ways, several
streams at once, and resets. Works over h2c (prior knowledge) or TLS with ALPN h2."""
from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events


@dataclass
class H2Response:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)
    reset: bool = False

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


class H2Client:
    def __init__(self, port: int, *, tls_ca: Path | None = None, sni: str | None = None, timeout: float = 10.0):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls_ca is not None:
            ctx = ssl.create_default_context(cafile=str(tls_ca))
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname=sni)
            assert sock.selected_alpn_protocol() == "h2", "the gateway did not pick h2 by ALPN"
        self.sock = sock
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.responses: dict[int, H2Response] = {}
        self.ended: set[int] = set()
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method: str, path: str, *, authority: str = "gatehouse.test", headers=(), body: bytes | None = None,
                trailers=None, end: bool = True) -> int:
        stream = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":path", path), (":scheme", "http"), (":authority", authority), *headers]
        no_body = body is None and trailers is None
        self.conn.send_headers(stream, fields, end_stream=no_body and end)
        if body is not None:
            self.conn.send_data(stream, body, end_stream=trailers is None and end)
        if trailers is not None:
            self.conn.send_headers(stream, list(trailers), end_stream=True)
        self.responses[stream] = H2Response()
        self._flush()
        return stream

    def reset(self, stream: int) -> None:
        self.conn.reset_stream(stream)
        self._flush()

    def wait(self, *streams: int, max_bytes: int | None = None) -> list[H2Response]:
        """Reads until every stream has ended (or ``max_bytes`` of body arrived on the first)."""
        while not all(s in self.ended for s in streams):
            if max_bytes is not None and len(self.responses[streams[0]].body) >= max_bytes:
                break
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed")
            for event in self.conn.receive_data(data):
                self._handle(event)
            self._flush()
        return [self.responses[s] for s in streams]

    def _handle(self, event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            response = self.responses[event.stream_id]
            response.headers = [(k, v) for k, v in event.headers]
            response.status = int(response.header(":status"))
        elif isinstance(event, h2.events.DataReceived):
            self.responses[event.stream_id].body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self.responses[event.stream_id].trailers = [(k, v) for k, v in event.headers]
        elif isinstance(event, h2.events.StreamEnded):
            self.ended.add(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self.responses.setdefault(event.stream_id, H2Response()).reset = True
            self.ended.add(event.stream_id)

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self._flush()
        except Exception:
            pass
        self.sock.close()

    def __enter__(self) -> "H2Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
