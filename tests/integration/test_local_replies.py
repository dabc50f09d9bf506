"""Replies the gateway makes itself, Envoy-compatible: status, body and response flags in the access log."""
from __future__ import annotations

import socket
import struct
import time

import pytest

from harness import config as cfg
from harness.checks import BODY_UC, BODY_UF, BODY_UF_RETRIED, BODY_UH, BODY_UT, flags
from harness.gateway import free_port
from harness.rawhttp import format_request


def test_no_route_404_nr(proxied_none):
    gw = proxied_none
    r = gw.get("/missing?x=1")
    assert r.status_code == 404
    assert r.content == b""
    entry = gw.log_for_path("/missing?x=1")
    assert entry["response_code"] == 404
    assert flags(entry) == {"NR"}
    assert entry["response_code_details"] == "route_not_found"


@pytest.fixture
def proxied_none(gateway, upstream):
    up = upstream("backend")
    return gateway(cfg.simple_backend(up, [cfg.route(match={"uri": {"prefix": "/only-this"}})]))


def test_connection_refused_503_uf(gateway):
    dead_port = free_port()
    gw = gateway([
        cfg.service_entry("backend.test", [cfg.endpoint(dead_port)]),
        cfg.virtual_service("main", [cfg.route(retries={"attempts": 0})]),
    ])
    r = gw.get("/refused")
    assert r.status_code == 503
    assert r.text == BODY_UF
    entry = gw.log_for_path("/refused")
    assert entry["response_code"] == 503
    assert flags(entry) == {"UF"}


def test_connection_refused_after_istios_default_retries_503_uf_urx(gateway):
    dead_port = free_port()
    gw = gateway([
        cfg.service_entry("backend.test", [cfg.endpoint(dead_port)]),
        cfg.virtual_service("main", [cfg.route()]),
    ])
    r = gw.get("/refused")
    assert r.status_code == 503
    assert r.text == BODY_UF_RETRIED
    entry = gw.log_for_path("/refused")
    assert entry["response_code"] == 503
    assert entry["response_flags"] == "UF,URX"
    assert entry["response_code_details"] == "upstream_reset_before_response_started{connection_failure}"


def test_no_endpoints_503_uh(gateway):
    gw = gateway([
        cfg.service_entry("backend.test", workload_selector={"app": "nobody"}),
        cfg.virtual_service("main", [cfg.route()]),
    ])
    r = gw.get("/no-endpoints")
    assert r.status_code == 503
    assert r.text == BODY_UH
    entry = gw.log_for_path("/no-endpoints")
    assert "UH" in flags(entry)


def test_subset_without_endpoints_503_uh(gateway, upstream):
    up = upstream("backend")
    gw = gateway([
        cfg.service_entry("backend.test", [cfg.endpoint(up, labels={"version": "v1"})]),
        cfg.destination_rule("backend.test", {"v1": {"version": "v1"}, "v9": {"version": "v9"}}),
        cfg.virtual_service("main", [cfg.route(cfg.destination(subset="v9"))]),
    ])
    r = gw.get("/empty-subset")
    assert r.status_code == 503
    assert r.text == BODY_UH
    assert "UH" in flags(gw.log_for_path("/empty-subset"))
    assert up.accepted == 0


def test_route_timeout_504_ut(gateway, upstream):
    up = upstream("slow")
    gw = gateway(cfg.simple_backend(up, [cfg.route(timeout="500ms")]))
    started = time.monotonic()
    r = gw.get("/timeout?sleep=5")
    elapsed = time.monotonic() - started
    assert r.status_code == 504
    assert r.text == BODY_UT
    assert 0.4 <= elapsed < 3.0, f"answered after {elapsed:.2f}s for a 500ms timeout"
    entry = gw.log_for_path("/timeout?sleep=5")
    assert "UT" in flags(entry)
    assert entry["response_code"] == 504


def test_no_timeout_by_default(gateway, upstream):
    """Istio: an unset route timeout means none (Envoy's 15 s default is turned off)."""
    up = upstream("slow")
    gw = gateway(cfg.simple_backend(up))
    r = gw.get("/slow?sleep=1.5", timeout=10)
    assert r.status_code == 200


def test_upstream_closes_before_headers_503_uc(gateway, upstream):
    up = upstream("rude", close="before_headers")
    gw = gateway(cfg.simple_backend(up))
    r = gw.get("/reset")
    assert r.status_code == 503
    assert r.text == BODY_UC
    assert "UC" in flags(gw.log_for_path("/reset"))


def test_upstream_closes_mid_response_uc(gateway, upstream):
    up = upstream("rude")
    gw = gateway(cfg.simple_backend(up))
    with gw.raw() as conn:
        r = conn.request("GET", "/cut?close=mid_body&bytes=400000")
        assert r.status == 200, "headers were already sent by the upstream"
        assert not r.complete, "the client must see an incomplete body, not a clean end"
        assert r.body_length < 400000
    entry = gw.log_for_path("/cut?close=mid_body&bytes=400000")
    assert "UC" in flags(entry)


def test_upstream_closes_mid_chunked_response(gateway, upstream):
    up = upstream("rude")
    gw = gateway(cfg.simple_backend(up))
    with gw.raw() as conn:
        r = conn.request("GET", "/cut-chunked?close=mid_body&bytes=400000")
        assert not r.complete


@pytest.mark.parametrize("raw", [
    b"THIS IS NOT HTTP\r\n\r\n",
    b"GET /bad HTTP/1.1\r\nHost: x\r\nBad Header: value\r\n\r\n",
    b"GET /bad HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    b"GET /bad HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
], ids=["garbage", "space-in-name", "no-colon", "conflicting-content-length"])
def test_malformed_request_400_dpe(proxied, raw):
    gw = proxied.gw
    with gw.raw() as conn:
        conn.send(raw)
        r = conn.read_response()
    assert r.status == 400
    entry = gw.log_entry(lambda e: e.get("response_code") == 400)
    assert "DPE" in flags(entry)
    assert len(proxied.up.requests) == 0


def test_request_headers_too_large_431(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), limits={"maxRequestHeadersKb": 8})
    with gw.raw() as conn:
        r = conn.request("GET", "/fits", [("x-big", "a" * 6000)])
        assert r.status == 200, "headers under the limit pass"
    with gw.raw() as conn:
        conn.send(format_request("GET", "/too-big", [("x-big", "a" * 12000)]))
        r = conn.read_response()
    assert r.status == 431
    assert [q.path for q in up.requests] == ["/fits"]


def test_default_header_limit_is_60kb(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        assert conn.request("GET", "/50k", [("x-big", "a" * 50_000)]).status == 200
    with gw.raw() as conn:
        conn.send(format_request("GET", "/70k", [("x-big", "a" * 70_000)]))
        assert conn.read_response().status == 431


def test_slow_request_headers_408(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), limits={"requestHeadersTimeout": "1s"})
    with gw.raw(timeout=6) as conn:
        conn.send(b"GET /slowloris HTTP/1.1\r\nHost: x\r\nX-Partial: ")
        started = time.monotonic()
        r = conn.read_response()
        elapsed = time.monotonic() - started
        assert r.status == 408
        assert 0.8 <= elapsed < 4, f"408 after {elapsed:.2f}s for a 1s header timeout"
        assert conn.is_closed_by_peer(timeout=3)
    assert len(up.requests) == 0


def test_complete_headers_are_not_cut_by_the_header_timeout(gateway, upstream):
    """The header timeout covers the head only: a slow upstream answer is not a 408."""
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), limits={"requestHeadersTimeout": "1s"})
    r = gw.get("/slow-upstream?sleep=1.5")
    assert r.status_code == 200


def test_gateway_survives_abrupt_client_close(proxied):
    gw = proxied.gw
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        sock.sendall(format_request("GET", "/abandoned?sleep=0.2"))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST
    assert gw.get("/still-alive").status_code == 200
    assert gw.running()


def test_malformed_body_while_forwarding_gets_400_and_the_gateway_keeps_serving(proxied):
    """The head is fine, so the request is already on its way upstream when a bad chunk size arrives:
    the client gets 400, the half-sent upstream request is abandoned, and nothing else is disturbed."""
    gw = proxied.gw
    with gw.raw() as conn:
        conn.send(b"POST /half HTTP/1.1\r\nHost: gatehouse.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\nzz-not-hex\r\n")
        response = conn.read_response()
    assert response.status == 400
    assert response.body == b"Bad Request"
    for _ in range(3):
        assert gw.get("/after-bad-body").status_code == 200
    entry = gw.log_for_path("/half")
    assert entry["response_code"] == 400 and entry["response_flags"] == "DPE"
