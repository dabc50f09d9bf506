"""The WebSocket upstream and routes shared by the HTTP/1.1 and HTTP/2 WebSocket tests."""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from websockets.sync.server import serve

from harness import config as cfg
from harness.gateway import free_port


@contextlib.contextmanager
def echo_server() -> Iterator[tuple[int, list]]:
    """An echo WebSocket server (Python ``websockets``) on a free port, recording each handshake's
    request; a text message "close:CODE" makes it close with that code and reason "asked to"."""
    handshakes: list = []

    def handler(ws):
        handshakes.append(ws.request)
        for message in ws:
            if isinstance(message, str) and message.startswith("close:"):
                ws.close(code=int(message.split(":")[1]), reason="asked to")
                return
            ws.send(message)

    port = free_port()
    server = serve(handler, "127.0.0.1", port, max_size=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port, handshakes
    finally:
        server.shutdown()


def routes(ws_port: int, plain_port: int) -> list:
    """`/ws…` to the echo server (rewritten to `/echo…`, route `ws-route`), `/refuse…` to a plain HTTP
    upstream that never upgrades."""
    return [
        cfg.service_entry("ws.test", [cfg.endpoint(ws_port)]),
        cfg.service_entry("plain.test", [cfg.endpoint(plain_port)]),
        cfg.virtual_service("ws", [
            cfg.route(cfg.destination("plain.test"), match={"uri": {"prefix": "/refuse"}}),
            cfg.route(cfg.destination("ws.test"), name="ws-route", rewrite={"uri": "/echo"},
                      match={"uri": {"prefix": "/ws"}}),
        ]),
    ]
