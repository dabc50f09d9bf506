"""The admin server (Bootstrap ``admin``) and the protection counters it exposes: every connection or
request the gateway cuts off or refuses to protect itself is counted in
``gatehouse_downstream_protection_events_total{event=...}``, and the gateway keeps serving."""
from __future__ import annotations

import socket
import ssl
import time

import pytest

from harness import config as cfg
from harness.admin import admin_get
from harness.certs import CA
from harness.gateway import free_port
from harness.h2raw import RawH2
from harness.rawhttp import RawConnection

EVENT = "gatehouse_downstream_protection_events_total"


def events(admin_port: int) -> dict[str, int]:
    status, text = admin_get(admin_port, "/stats/prometheus")
    assert status == 200
    counts = {}
    for line in text.splitlines():
        if line.startswith(EVENT + "{"):
            label, value = line[len(EVENT):].rsplit(" ", 1)
            counts[label.split('"')[1]] = int(value)
    return counts


def wait_for(admin_port: int, event: str, at_least: int = 1) -> int:
    """Counters are bumped on the event loop: poll briefly rather than race it."""
    deadline = time.monotonic() + 5
    while True:
        value = events(admin_port).get(event, 0)
        if value >= at_least or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.fixture
def guarded(gateway, upstream):
    admin = free_port()
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), bootstrap={"admin": {"address": "127.0.0.1", "port": admin}},
                 limits={"requestHeadersTimeout": "1s", "idleTimeout": "2s", "maxRequestHeadersKb": 4,
                         "maxConnections": 4})
    gw.admin = admin
    return gw


def test_admin_serves_ready_and_prometheus_text(guarded):
    assert admin_get(guarded.admin, "/ready") == (200, "LIVE\n")
    counts = events(guarded.admin)
    # Every cause is listed from the start, so a dashboard can rate() it before the first event.
    assert set(counts) >= {"tls_handshake_timeout", "tls_handshake_error", "tls_unknown_server_name",
                           "request_headers_timeout", "idle_timeout", "request_headers_too_large",
                           "malformed_request", "connection_limit", "http2_stream_error",
                           "http2_connection_error", "http2_flood", "http2_refused_stream"}
    assert all(value == 0 for value in counts.values()), counts
    _, text = admin_get(guarded.admin, "/stats/prometheus")
    assert f"# TYPE {EVENT} counter" in text
    assert "gatehouse_downstream_connections_active " in text
    assert admin_get(guarded.admin, "/nope")[0] == 404
    assert admin_get(guarded.admin, "/ready", method="POST")[0] == 405


def test_bad_heads_are_counted(guarded):
    with RawConnection("127.0.0.1", guarded.port) as conn:
        response = conn.request("GET", "/big", headers=[("Host", "a.test"), ("X-Big", "x" * 6000)])
        assert response.status == 431
    with RawConnection("127.0.0.1", guarded.port) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: a.test\r\nBad Header: x\r\n\r\n")
        assert b" 400 " in conn.sock.recv(4096)
    with RawConnection("127.0.0.1", guarded.port) as conn:
        conn.send(b"GET /slow HTTP/1.1\r\nHost: a.test\r\n")  # never finished: 408 after 1 s
        assert b" 408 " in conn.sock.recv(4096)
    assert wait_for(guarded.admin, "request_headers_too_large") == 1
    assert wait_for(guarded.admin, "malformed_request") == 1
    assert wait_for(guarded.admin, "request_headers_timeout") == 1
    assert guarded.get("/fine").status_code == 200


def test_idle_connections_and_the_connection_cap_are_counted(guarded):
    with RawConnection("127.0.0.1", guarded.port) as conn:
        assert conn.request("GET", "/then-idle", headers=[("Host", "a.test")]).status == 200
        assert conn.is_closed_by_peer(timeout=8)
    assert wait_for(guarded.admin, "idle_timeout") == 1
    held = [socket.create_connection(("127.0.0.1", guarded.port)) for _ in range(4)]
    try:
        with socket.create_connection(("127.0.0.1", guarded.port), timeout=5) as extra:
            assert extra.recv(1) == b"", "the fifth connection is closed unread"
        assert wait_for(guarded.admin, "connection_limit") >= 1
    finally:
        for sock in held:
            sock.close()


def request_fields(path: str) -> list[tuple[str, str]]:
    return [(":method", "GET"), (":scheme", "http"), (":authority", "a.test"), (":path", path)]


def test_http2_stream_error_keeps_the_connection_and_is_counted(guarded):
    client = RawH2(guarded.port)
    try:
        bad = client.headers(request_fields("/bad") + [("Upper-Case", "x")])
        client.pump(lambda events: client.reset_of(bad) is not None)
        assert client.reset_of(bad) is not None, client.events
        # RFC 9113 §5.4.2: a stream error ends that stream only; the connection goes on.
        good = client.headers(request_fields("/good"))
        client.pump(lambda events: client.ended(good) or "closed" in events)
        response = client.response_of(good)
        assert response is not None and dict(response.headers)[":status"] == "200", client.events
    finally:
        client.close()
    assert wait_for(guarded.admin, "http2_stream_error") == 1
    assert events(guarded.admin)["http2_connection_error"] == 0


def test_http2_reset_flood_is_counted(guarded):
    client = RawH2(guarded.port)
    try:
        # CVE-2023-44487: open and reset streams as fast as possible.
        for _ in range(400):
            stream = client.conn.get_next_available_stream_id()
            client.conn.send_headers(stream, request_fields("/flood"))
            client.conn.reset_stream(stream)
        try:
            client.flush()
        except OSError:
            pass
        client.pump(lambda events: client.goaway() is not None or "closed" in events)
        assert client.goaway() is not None or "closed" in client.events
    finally:
        client.close()
    assert wait_for(guarded.admin, "http2_flood") == 1
    assert guarded.get("/after-flood").status_code == 200


def test_tls_refusals_are_counted(gateway, upstream, tmp_path):
    ca = CA()
    ca_file = ca.write(tmp_path / "ca.crt")
    crt, key = ca.issue("a.test", dns=["a.test"]).write(tmp_path, "a")
    port, admin = free_port(), free_port()
    up = upstream("backend")
    server = cfg.https_server(port, ["a.test"], {"mode": "SIMPLE", "serverCertificate": str(crt), "privateKey": str(key)})
    gw = gateway([cfg.gateway_of([server]), *cfg.simple_backend(up)], gateway_resource=False, port=port,
                 bootstrap={"admin": {"port": admin}}, limits={"tlsHandshakeTimeout": "1s"})
    context = ssl.create_default_context(cafile=str(ca_file))
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            context.wrap_socket(raw, server_hostname="unknown.test")
    with RawConnection("127.0.0.1", port) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")  # plain HTTP on a TLS port
        assert conn.is_closed_by_peer(timeout=5)
    with RawConnection("127.0.0.1", port) as conn:
        assert conn.is_closed_by_peer(timeout=5)  # silent: the handshake timeout
    assert wait_for(admin, "tls_unknown_server_name") == 1
    assert wait_for(admin, "tls_handshake_error") == 1
    assert wait_for(admin, "tls_handshake_timeout") == 1
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="a.test") as tls:
            tls.sendall(b"GET /ok HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            assert tls.recv(64).startswith(b"HTTP/1.1 200")
    assert gw.running()
