"""WebSocket over HTTP/1.1 through the gateway: the Upgrade request is routed like any request, and after
the upstream's 101 the connection is a byte tunnel both ways until either side closes. Client and server
are the Python ``websockets`` library."""
from __future__ import annotations

import contextlib
import os

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect


def test_text_and_binary_frames_echo_through_the_tunnel(ws_gateway, ws_backend):
    _, handshakes = ws_backend
    with connect(f"ws://127.0.0.1:{ws_gateway.port}/ws/chat", max_size=None) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01binary\xff")
        assert ws.recv(timeout=5) == b"\x00\x01binary\xff"
        big = os.urandom(1 << 20)  # 1 MiB in one frame; random, so permessage-deflate cannot shrink it
        ws.send(big)
        assert ws.recv(timeout=10) == big
    assert [request.path for request in handshakes] == ["/echo/chat"], "VirtualService rewrites apply to the upgrade request"
    entry = ws_gateway.log_entry(lambda e: e.get("path") == "/ws/chat")
    assert entry["response_code"] == 101
    assert entry["route_name"] == "ws-route"
    assert entry["bytes_received"] > 1_048_576 and entry["bytes_sent"] > 1_048_576, entry


def test_close_codes_pass_through(ws_gateway):
    with connect(f"ws://127.0.0.1:{ws_gateway.port}/ws/close") as ws:
        ws.send("close:4001")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4001
    assert closed.value.rcvd.reason == "asked to"
    entry = ws_gateway.log_entry(lambda e: e.get("path") == "/ws/close")
    assert entry["response_code"] == 101


def test_many_tunnels_at_once(ws_gateway):
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(f"ws://127.0.0.1:{ws_gateway.port}/ws/{i}")) for i in range(20)]
        for i, ws in enumerate(clients):
            ws.send(f"m{i}")
        assert [ws.recv(timeout=5) for ws in clients] == [f"m{i}" for i in range(20)]
    assert ws_gateway.get("/refuse/plain").status_code == 200


def test_upgrade_the_upstream_refuses_gets_its_answer(ws_gateway):
    with pytest.raises(InvalidStatus) as refused:
        with connect(f"ws://127.0.0.1:{ws_gateway.port}/refuse/ws?status=403"):
            pass
    assert refused.value.response.status_code == 403
    assert ws_gateway.get("/refuse/after").status_code == 200
