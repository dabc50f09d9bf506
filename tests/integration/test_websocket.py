"""WebSocket over HTTP/1.1 through the gateway: the Upgrade request is routed like any request, and after
the upstream's 101 the connection is a byte tunnel both ways until either side closes. Client and server
are the Python ``websockets`` library."""
from __future__ import annotations

import contextlib
import os
import threading

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.sync.server import serve

from harness import config as cfg
from harness.gateway import free_port


@pytest.fixture
def ws_backend():
    """An echo WebSocket server; a message "close:CODE" makes it close with that code."""
    seen_paths: list[str] = []

    def handler(ws):
        seen_paths.append(ws.request.path)
        for message in ws:
            if isinstance(message, str) and message.startswith("close:"):
                ws.close(code=int(message.split(":")[1]), reason="asked to")
                return
            ws.send(message)

    port = free_port()
    server = serve(handler, "127.0.0.1", port, max_size=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port, seen_paths
    server.shutdown()


@pytest.fixture
def ws_gateway(gateway, ws_backend, upstream):
    port, _ = ws_backend
    plain = upstream("plain")
    resources = [
        cfg.service_entry("ws.test", [cfg.endpoint(port)]),
        cfg.service_entry("plain.test", [cfg.endpoint(plain)]),
        cfg.virtual_service("ws", [
            cfg.route(cfg.destination("plain.test"), match={"uri": {"prefix": "/refuse"}}),
            cfg.route(cfg.destination("ws.test"), name="ws-route", rewrite={"uri": "/echo"},
                      match={"uri": {"prefix": "/ws"}}),
        ]),
    ]
    return gateway(resources)


def test_text_and_binary_frames_echo_through_the_tunnel(ws_gateway, ws_backend):
    _, seen = ws_backend
    with connect(f"ws://127.0.0.1:{ws_gateway.port}/ws/chat", max_size=None) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01binary\xff")
        assert ws.recv(timeout=5) == b"\x00\x01binary\xff"
        big = os.urandom(1 << 20)  # 1 MiB in one frame; random, so permessage-deflate cannot shrink it
        ws.send(big)
        assert ws.recv(timeout=10) == big
    assert seen == ["/echo/chat"], "VirtualService rewrites apply to the upgrade request"
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
