"""WebSocket over HTTP/2 (RFC 8441): the gateway advertises SETTINGS_ENABLE_CONNECT_PROTOCOL, takes an
extended CONNECT with ``:protocol websocket`` and bridges it to an HTTP/1.1 upgrade on the upstream (a
Python ``websockets`` server, which checks the key the gateway makes). After the 200 the stream's DATA
frames carry WebSocket frames both ways. The client is Python ``h2`` with a minimal frame codec."""
from __future__ import annotations

import os
import struct

import h2.events
import h2.settings
import pytest
from harness import config as cfg
from harness import websocket
from harness.certs import CA
from harness.gateway import free_port
from harness.h2client import H2Client

TEXT, BINARY, CLOSE = 0x1, 0x2, 0x8


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (masked, as RFC 6455 §5.3 requires of clients)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def parse_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Complete server frames (unmasked) taken off the front of ``buffer``."""
    frames = []
    while len(buffer) >= 2:
        opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
        offset = 2
        if length == 126:
            if len(buffer) < 4:
                break
            length, offset = struct.unpack("!H", buffer[2:4])[0], 4
        elif length == 127:
            if len(buffer) < 10:
                break
            length, offset = struct.unpack("!Q", buffer[2:10])[0], 10
        if len(buffer) < offset + length:
            break
        frames.append((opcode, bytes(buffer[offset:offset + length])))
        del buffer[:offset + length]
    return frames


class H2WebSocket:
    """One WebSocket opened with an extended CONNECT on its own HTTP/2 connection."""

    def __init__(self, port: int, path: str, *, authority: str = "ws.test", protocol: str | None = "websocket",
                 tls_ca=None, sni: str | None = None, extra=()):
        # The connection itself (TCP, TLS with ALPN h2, the preface) is H2Client's.
        self.client = H2Client(port, tls_ca=tls_ca, sni=sni)
        self.sock = self.client.sock
        self.conn = self.client.conn
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.ended = False
        self.reset = False
        self.inbound = bytearray()
        # The extended CONNECT may only be sent once the server's SETTINGS allow it (RFC 8441 §3).
        self.settings_received = False
        self.pump(lambda: self.settings_received)
        self.connect_allowed = self.conn.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL) == 1
        self.stream = self.conn.get_next_available_stream_id()
        fields = [(":method", "CONNECT"), (":scheme", "https" if tls_ca else "http"), (":path", path),
                  (":authority", authority), ("sec-websocket-version", "13"), *extra]
        if protocol is not None:
            fields.insert(1, (":protocol", protocol))
        else:  # an ordinary CONNECT (RFC 9113 §8.5): only :method and :authority
            fields = [(":method", "CONNECT"), (":authority", authority)]
        self.conn.send_headers(self.stream, fields)
        self.flush()
        self.pump(lambda: self.status is not None or self.ended)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def flush(self) -> None:
        self.client._flush()

    def pump(self, until, timeout: float = 10.0) -> None:
        self.sock.settimeout(timeout)
        while not until():
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed")
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    self.settings_received = True
                elif isinstance(event, h2.events.ResponseReceived):
                    self.headers = list(event.headers)
                    self.status = int(self.header(":status"))
                elif isinstance(event, h2.events.DataReceived):
                    if self.status == 200:
                        self.inbound += event.data
                    else:
                        self.body += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    self.ended = True
                elif isinstance(event, h2.events.StreamReset):
                    self.ended = self.reset = True
            self.flush()

    def send(self, opcode: int, payload: bytes) -> None:
        data = ws_frame(opcode, payload)
        # Respect the stream's flow-control window: send what fits, wait for WINDOW_UPDATEs for the rest.
        while data:
            window = min(self.conn.local_flow_control_window(self.stream), self.conn.max_outbound_frame_size)
            if window == 0:
                self.pump(lambda: self.conn.local_flow_control_window(self.stream) > 0)
                continue
            self.conn.send_data(self.stream, data[:window])
            data = data[window:]
            self.flush()

    def end_stream(self) -> None:
        self.conn.end_stream(self.stream)
        self.flush()

    def close(self) -> None:
        self.client.close()


def recv_message(ws: H2WebSocket) -> tuple[int, bytes]:
    frames: list = []

    def ready() -> bool:
        frames.extend(parse_frames(ws.inbound))
        return bool(frames) or ws.ended

    ws.pump(ready)
    assert frames, "the stream ended without a WebSocket frame"
    return frames[0]


def test_extended_connect_is_advertised_and_echoes_frames(ws_gateway, ws_backend):
    _, handshakes = ws_backend
    ws = H2WebSocket(ws_gateway.port, "/ws/chat?room=1", extra=[("sec-websocket-protocol", "chat")])
    try:
        assert ws.connect_allowed, "SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 §3)"
        assert ws.status == 200, ws.body
        assert not ws.ended, "a 200 to an extended CONNECT opens the stream as a tunnel"
        assert ws.header("sec-websocket-accept") is None, "the HTTP/1.1 handshake stays upstream"
        ws.send(TEXT, b"hello")
        assert recv_message(ws) == (TEXT, b"hello")
        ws.send(BINARY, b"\x00\x01binary\xff")
        assert recv_message(ws) == (BINARY, b"\x00\x01binary\xff")
        big = os.urandom(300_000)  # several times the 65,535-byte initial window: flow control both ways
        ws.send(BINARY, big)
        assert recv_message(ws) == (BINARY, big)
        ws.send(CLOSE, struct.pack("!H", 1000))
        opcode, payload = recv_message(ws)
        assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1000
        ws.end_stream()
        ws.pump(lambda: ws.ended)
    finally:
        ws.close()
    request = handshakes[0]
    assert request.path == "/echo/chat?room=1", "VirtualService rewrites apply to the bridged upgrade"
    assert request.headers["Upgrade"].lower() == "websocket"
    assert request.headers["Sec-WebSocket-Version"] == "13"
    assert len(request.headers["Sec-WebSocket-Key"]) == 24, "the gateway makes a 16-byte key for the upstream"
    assert request.headers["Sec-WebSocket-Protocol"] == "chat"
    entry = ws_gateway.log_entry(lambda e: e.get("path") == "/ws/chat?room=1")
    assert entry["protocol"] == "HTTP/2"
    assert entry["method"] == "CONNECT"
    assert entry["response_code"] == 200
    assert entry["route_name"] == "ws-route"
    assert entry["bytes_received"] > 300_000 and entry["bytes_sent"] > 300_000, entry


def test_close_code_from_the_upstream_ends_the_stream(ws_gateway):
    ws = H2WebSocket(ws_gateway.port, "/ws/close")
    try:
        assert ws.status == 200
        ws.send(TEXT, b"close:4001")
        opcode, payload = recv_message(ws)
        assert opcode == CLOSE
        assert struct.unpack("!H", payload[:2])[0] == 4001
        assert payload[2:] == b"asked to"
        ws.send(CLOSE, payload[:2])
        # The upstream closes its TCP connection after the closing handshake: END_STREAM follows.
        ws.pump(lambda: ws.ended)
        assert not ws.reset
    finally:
        ws.close()
    entry = ws_gateway.log_entry(lambda e: e.get("path") == "/ws/close")
    assert entry["connection_termination_details"] in ("upstream_tunnel_closed", "downstream_tunnel_closed")


def test_upstream_that_answers_without_upgrading_is_not_a_websocket(ws_gateway):
    # A plain HTTP upstream answers 200 to the GET: forwarding that 200 would tell the client a
    # WebSocket is open, so the gateway answers 502 instead.
    ws = H2WebSocket(ws_gateway.port, "/refuse")
    try:
        ws.pump(lambda: ws.ended)
        assert ws.status == 502
    finally:
        ws.close()
    entry = ws_gateway.log_entry(lambda e: e.get("path") == "/refuse")
    assert entry["response_flags"] == "UPE"
    assert entry["upstream_transport_failure_reason"] == "websocket_handshake_failed"
    # The connection and the gateway still serve.
    assert ws_gateway.get("/refuse/plain").status_code == 200


def test_upstream_error_status_passes_through(ws_gateway):
    ws = H2WebSocket(ws_gateway.port, "/refuse?status=403")
    try:
        ws.pump(lambda: ws.ended)
        assert ws.status == 403
    finally:
        ws.close()


@pytest.mark.parametrize("protocol", [None, "h2-tunnel"])
def test_connect_other_than_websocket_is_not_implemented(ws_gateway, protocol):
    ws = H2WebSocket(ws_gateway.port, "/ws/x", protocol=protocol)
    try:
        ws.pump(lambda: ws.ended)
        assert ws.status == 501
    finally:
        ws.close()


def test_websocket_over_h2_with_tls(gateway, ws_backend, upstream, tmp_path):
    ca = CA()
    ca_file = ca.write(tmp_path / "ca.crt")
    crt, key = ca.issue("ws.test", dns=["ws.test"]).write(tmp_path, "ws")
    port = free_port()
    plain = upstream("plain")
    server = cfg.https_server(port, ["ws.test"], {"mode": "SIMPLE", "serverCertificate": str(crt),
                                                 "privateKey": str(key)})
    gw = gateway([cfg.gateway_of([server]), *websocket.routes(ws_backend[0], plain.port)], gateway_resource=False,
                 port=port)
    ws = H2WebSocket(port, "/ws/tls", tls_ca=ca_file, sni="ws.test")
    try:
        assert ws.status == 200
        ws.send(TEXT, b"over tls")
        assert recv_message(ws) == (TEXT, b"over tls")
    finally:
        ws.close()
    entry = gw.log_entry(lambda e: e.get("path") == "/ws/tls")
    assert entry["requested_server_name"] == "ws.test"
    assert entry["protocol"] == "HTTP/2"
