"""Connection handling: downstream keep-alive and pipelining, pooled upstream keep-alive."""
from __future__ import annotations

import os
import time

from harness import config as cfg
from harness.rawhttp import format_request
from harness.upstream import echo_of


def test_upstream_connections_are_reused(proxied):
    gw, up = proxied.gw, proxied.up
    with gw.client() as client:
        for i in range(50):
            r = client.get(f"/seq/{i}")
            assert r.status_code == 200
    assert len(up.requests) == 50
    assert up.accepted <= 2, f"50 sequential requests opened {up.accepted} upstream connections"


def test_upstream_pool_is_shared_across_downstream_connections(proxied):
    gw, up = proxied.gw, proxied.up
    for i in range(30):
        assert gw.get(f"/fresh/{i}").status_code == 200
    # Pools may be per event loop (one loop per core): one connection per loop is fine, one per request is not.
    allowed = max(4, os.cpu_count() or 1)
    assert up.accepted <= allowed, f"30 requests on 30 client connections opened {up.accepted} upstream connections"


def test_downstream_keep_alive(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        for i in range(20):
            r = conn.request("GET", f"/ka/{i}")
            assert r.status == 200 and r.complete
            assert echo_of(r).path == f"/ka/{i}"
            assert (r.header("connection") or "").lower() != "close"


def test_pipelined_requests_are_answered_in_order(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        # The first is the slowest: a gateway that answers out of order (or drops pipelined bytes) fails.
        conn.send(format_request("GET", "/pipe/0?sleep=0.3") + format_request("GET", "/pipe/1")
                  + format_request("POST", "/pipe/2", body=b"body-of-2"))
        responses = [conn.read_response() for _ in range(3)]
    assert [r.status for r in responses] == [200, 200, 200]
    echoes = [echo_of(r) for r in responses]
    assert [e.path for e in echoes] == ["/pipe/0", "/pipe/1", "/pipe/2"]
    assert echoes[2]["body"] == "body-of-2"


def test_pipelining_mixes_local_replies_and_proxied_responses(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up, [
        cfg.action("directResponse", {"status": 200, "body": {"string": "direct"}}, match={"uri": {"exact": "/d"}}),
        cfg.route(match={"uri": {"prefix": "/p"}}),
    ]))
    with gw.raw() as conn:
        conn.send(b"".join(format_request("GET", path) for path in ["/p/0?sleep=0.2", "/nothing", "/d", "/p/3"]))
        responses = [conn.read_response() for _ in range(4)]
    assert [r.status for r in responses] == [200, 404, 200, 200]
    assert echo_of(responses[0]).path == "/p/0"
    assert responses[2].body == b"direct"
    assert echo_of(responses[3]).path == "/p/3"


def test_client_connection_close_is_honoured(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        r = conn.request("GET", "/close", [("Connection", "close")])
        assert r.status == 200
        assert conn.is_closed_by_peer(timeout=3), "the gateway must close after Connection: close"


def test_upstream_closing_idle_pooled_connections_is_survived(gateway, upstream):
    """An upstream that closes each connection after answering (no Connection: close, as an idle timeout
    would): the gateway must notice and use a fresh connection, never fail the next request."""
    up = upstream("backend", close="after_response")
    gw = gateway(cfg.simple_backend(up))
    with gw.client() as client:
        for i in range(5):
            r = client.get(f"/stale/{i}")
            assert r.status_code == 200, r.text
            time.sleep(0.2)
    assert up.accepted == 5


def test_head_and_bodiless_statuses_keep_the_connection_in_step(proxied):
    """HEAD answers, 204 and 304 carry no body: the gateway must not wait for one (or send one), so the
    next request on the same keep-alive connection is answered normally."""
    with proxied.gw.raw() as conn:
        head = conn.request("HEAD", "/h")
        assert head.status == 200
        assert int(dict((k.lower(), v) for k, v in head.headers)["content-length"]) > 0, "HEAD keeps the GET length"
        assert head.body == b""
        no_content = conn.request("GET", "/n?status=204")
        assert no_content.status == 204 and no_content.body == b""
        not_modified = conn.request("GET", "/m?status=304")
        assert not_modified.status == 304 and not_modified.body == b""
        after = conn.request("GET", "/after")
        assert after.status == 200
        assert echo_of(after).path == "/after"


def test_idle_keep_alive_connections_are_closed_after_the_idle_timeout(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), limits={"idleTimeout": "1s"})
    with gw.raw() as active, gw.raw() as idle:
        assert idle.request("GET", "/once").status == 200
        # The active connection keeps sending within the timeout and stays open.
        for _ in range(4):
            assert active.request("GET", "/again").status == 200
            time.sleep(0.5)
        assert idle.is_closed_by_peer(timeout=3), "1 s without a request closes the connection"
        assert active.request("GET", "/still-open").status == 200


def test_a_slow_response_is_not_cut_by_the_idle_timeout(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), limits={"idleTimeout": "1s"})
    with gw.raw() as conn:
        assert conn.request("GET", "/slow?sleep=2.5").status == 200


def test_idle_http2_connections_are_closed_after_the_idle_timeout(gateway, upstream):
    """The idle timeout applies to HTTP/2 too: no frame either way for 1 s closes the connection; one
    that keeps sending requests stays."""
    from harness.h2raw import RawH2

    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), limits={"idleTimeout": "1s"})
    request = [(":method", "GET"), (":scheme", "http"), (":authority", "gatehouse.test"), (":path", "/h2")]
    idle, active = RawH2(gw.port), RawH2(gw.port)
    try:
        first = idle.headers(request)
        idle.pump(lambda events: idle.ended(first))
        assert idle.ended(first)
        for _ in range(4):
            stream = active.headers(request)
            active.pump(lambda events: active.ended(stream))
            assert active.ended(stream)
            time.sleep(0.5)
        idle.pump(lambda events: "closed" in events, timeout=3)
        assert "closed" in idle.events, "1 s without a frame closes an HTTP/2 connection"
        last = active.headers(request)
        active.pump(lambda events: active.ended(last))
        assert active.ended(last), "a connection that kept sending is still open"
    finally:
        idle.close()
        active.close()


def test_a_slow_http2_response_is_not_cut_by_the_idle_timeout(gateway, upstream):
    """As on HTTP/1.1 (and as Envoy's idle_timeout): an open stream keeps its connection, even when
    nothing moves for longer than the idle timeout while the upstream thinks."""
    from harness.h2raw import RawH2

    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), limits={"idleTimeout": "1s"})
    client = RawH2(gw.port)
    try:
        slow = client.headers([(":method", "GET"), (":scheme", "http"), (":authority", "gatehouse.test"),
                               (":path", "/slow?sleep=2.5")])
        client.pump(lambda events: client.ended(slow) or "closed" in events, timeout=10)
        assert client.ended(slow), client.events[-3:]
        assert dict(client.response_of(slow).headers)[":status"] == "200"
    finally:
        client.close()
