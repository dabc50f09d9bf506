"""What an upstream answers is checked before it changes anything (issue 12): a 101 switches protocols
only when it answers the upgrade the gateway forwarded, and an HTTP/2 upstream's malformed fields are a
protocol error, never relayed to the client."""
from __future__ import annotations

import pytest

from harness import config as cfg
from harness.checks import flags
from harness.h2upstream import ScriptedH2Upstream

WEBSOCKET_HEADERS = (b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
H2C_HEADERS = b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"


@pytest.fixture
def guarded(gateway, upstream):
    """A backend behind a gateway that denies /admin."""
    up = upstream("backend")
    deny = cfg.authorization_policy("deny-admin", {"action": "DENY",
                                                   "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]})
    return gateway(cfg.simple_backend(up) + [deny]), up


@pytest.mark.parametrize("upgrade_request,answer", [
    (b"", ""),                      # a plain request answered 101 without Upgrade
    (b"", "websocket"),             # a plain request answered 101 with one
    (H2C_HEADERS, "h2c"),           # an h2c upgrade the gateway stripped
    (WEBSOCKET_HEADERS, ""),        # a WebSocket upgrade answered without naming it
    (WEBSOCKET_HEADERS, "h2c"),     # ... or naming another protocol
], ids=["plain-no-upgrade", "plain-websocket", "h2c-stripped", "ws-no-upgrade", "ws-other-protocol"])
def test_101_that_does_not_answer_the_forwarded_upgrade_is_502_upe(guarded, upgrade_request, answer):
    gw, up = guarded
    with gw.raw() as conn:
        conn.send(b"GET /switch?switch=" + answer.encode() + b" HTTP/1.1\r\nHost: x\r\n" + upgrade_request + b"\r\n")
        response = conn.read_response()
        assert response.status == 502
        # Whatever the client sends next is a request of its own: routed and authorized, never tunneled.
        if not conn.is_closed_by_peer(timeout=0.2):
            conn.settimeout(5)
            conn.send(b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.read_response().status == 403
    entry = gw.log_entry(lambda e: e.get("response_code") == 502)
    assert flags(entry) == {"UPE"}
    assert entry["upstream_transport_failure_reason"] == "unexpected_switching_protocols"
    assert "/admin" not in [r.path for r in up.requests]


def test_matching_101_still_opens_the_websocket_tunnel(guarded):
    gw, _ = guarded
    with gw.raw() as conn:
        conn.send(b"GET /switch?switch=websocket HTTP/1.1\r\nHost: x\r\n" + WEBSOCKET_HEADERS + b"\r\n")
        response = conn.read_response(keep_body=False)
        assert response.status == 101
        assert (response.header("upgrade") or "").lower() == "websocket"


@pytest.mark.parametrize("field", [("x-bad", "a\x01b"), ("x-bad", "a\x7f"), ("x-bad", " padded"), ("bad name", "v"),
                                   ("content-length", "1,1")],
                         ids=["0x01", "0x7f", "leading-blank", "name-not-token", "length-list"])
def test_malformed_h2_upstream_response_is_502_not_relayed(gateway, field):
    origin = ScriptedH2Upstream(lambda request: [(":status", "200"), field])
    try:
        entry = cfg.service_entry("h2.test", [cfg.endpoint(origin.port)], protocol="HTTP2")
        gw = gateway([entry, cfg.virtual_service("main", [cfg.route(cfg.destination("h2.test"))])])
        response = gw.get("/h2-bad")
        assert response.status_code == 502
        assert "x-bad" not in response.headers and "bad name" not in response.headers
        assert flags(gw.log_for_path("/h2-bad")) == {"UPE"}
        assert len(origin.requests) == 1
    finally:
        origin.stop()


def test_h2_upstream_101_is_a_protocol_error(gateway):
    origin = ScriptedH2Upstream(lambda request: [(":status", "101"), ("upgrade", "websocket")])
    try:
        entry = cfg.service_entry("h2.test", [cfg.endpoint(origin.port)], protocol="HTTP2")
        gw = gateway([entry, cfg.virtual_service("main", [cfg.route(cfg.destination("h2.test"))])])
        assert gw.get("/h2-101").status_code == 502
    finally:
        origin.stop()


def test_h2_upstream_response_ending_with_its_headers_has_an_empty_body_for_an_http1_client(gateway):
    origin = ScriptedH2Upstream(lambda request: [(":status", "200"), ("x-kind", "headers-only")])
    try:
        entry = cfg.service_entry("h2.test", [cfg.endpoint(origin.port)], protocol="HTTP2")
        gw = gateway([entry, cfg.virtual_service("main", [cfg.route(cfg.destination("h2.test"))])])
        with gw.client() as client:
            first = client.get("/h2-empty", timeout=5)
            second = client.get("/h2-empty-again", timeout=5)
        assert first.status_code == 200 and first.headers["content-length"] == "0" and first.content == b""
        assert second.status_code == 200, "the client connection stays usable: the body was delimited"
    finally:
        origin.stop()
