"""HTTP/2 downstream: over TLS (ALPN h2) and in clear with prior knowledge (h2c) on plain ports, forwarded
to HTTP/1.1 upstreams with the semantics kept (pseudo-headers to Host, cookie crumbs joined, bodies and
trailers both ways, concurrent streams, resets). Clients: curl, nghttp, h2load and Python h2."""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from harness import config as cfg
from harness import pattern
from harness.certs import CA
from harness.checks import flags
from harness.gateway import free_port
from harness.h2client import H2Client


def curl_h2(url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "20", "-w", "\n%{http_version} %{http_code}", *extra, url],
                          capture_output=True, text=True, timeout=30)


def test_h2c_prior_knowledge_and_http11_share_a_plain_port(proxied):
    gw, up = proxied.gw, proxied.up
    result = curl_h2(f"{gw.url}/over-h2c?x=1", "--http2-prior-knowledge", "-H", "x-client: yes")
    assert result.returncode == 0, result.stderr
    body, _, tail = result.stdout.rpartition("\n")
    assert tail == "2 200"
    echo = json.loads(body)
    assert echo["target"] == "/over-h2c?x=1"
    assert echo["version"] == "HTTP/1.1", "the upstream speaks HTTP/1.1"
    request = up.requests[-1]
    assert request.header("host") == f"127.0.0.1:{gw.port}", ":authority becomes Host"
    assert request.header("x-client") == "yes"
    assert request.header("x-forwarded-proto") == "http"
    entry = gw.log_for_path("/over-h2c?x=1")
    assert entry["protocol"] == "HTTP/2"
    assert entry["response_code"] == 200
    assert entry["upstream_cluster"] == cfg.cluster_name()
    assert gw.get("/still-http11").status_code == 200


def test_h2_over_tls_by_alpn(gateway, upstream, tmp_path):
    ca = CA()
    ca_file = ca.write(tmp_path / "ca.crt")
    crt, key = ca.issue("a.test", dns=["a.test"]).write(tmp_path, "a")
    port = free_port()
    up = upstream("backend")
    server = cfg.https_server(port, ["a.test"], {"mode": "SIMPLE", "serverCertificate": str(crt), "privateKey": str(key)})
    gw = gateway([cfg.gateway_of([server]), *cfg.simple_backend(up)], gateway_resource=False, port=port)
    result = curl_h2(f"https://a.test:{port}/tls-h2", "--http2", "--cacert", str(ca_file),
                     "--resolve", f"a.test:{port}:127.0.0.1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n2 200")
    assert up.requests[-1].header("x-forwarded-proto") == "https"
    entry = gw.log_for_path("/tls-h2")
    assert entry["protocol"] == "HTTP/2"
    assert entry["requested_server_name"] == "a.test"
    with H2Client(port, tls_ca=ca_file, sni="a.test") as client:
        response, = client.wait(client.request("GET", "/by-h2-lib", authority="a.test"))
    assert response.status == 200


def test_concurrent_streams_on_one_connection(proxied):
    gw = proxied.gw
    result = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "20", f"{gw.url}/load?sleep=0.01"],
                            capture_output=True, text=True, timeout=60)
    assert "200 succeeded" in result.stdout and "0 failed" in result.stdout, result.stdout
    assert "status codes: 200 2xx" in result.stdout, result.stdout
    out = subprocess.run(["nghttp", "-n", f"{gw.url}/a", f"{gw.url}/b", f"{gw.url}/c"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert {e["path"] for e in gw.access_log_lines(203) if e["path"] in ("/a", "/b", "/c")} == {"/a", "/b", "/c"}


def test_large_bodies_stream_both_ways(proxied, tmp_path):
    gw, up = proxied.gw, proxied.up
    upload = tmp_path / "upload.bin"
    upload.write_bytes(pattern.data(5_000_000))
    result = curl_h2(f"{gw.url}/upload", "--http2-prior-knowledge", "--data-binary", f"@{upload}",
                     "-H", "content-type: application/octet-stream")
    assert result.returncode == 0, result.stderr
    echo = json.loads(result.stdout.rpartition("\n")[0])
    assert echo["body_length"] == 5_000_000
    assert echo["body_sha256"] == pattern.sha256(5_000_000)
    download = tmp_path / "download.bin"
    result = curl_h2(f"{gw.url}/download?bytes=20000000&chunked=1", "--http2-prior-knowledge", "-o", str(download))
    assert result.stdout.endswith("2 200"), result.stderr
    assert hashlib.sha256(download.read_bytes()).hexdigest() == pattern.sha256(20_000_000)


def test_h2_body_without_content_length_goes_upstream_chunked_with_trailers(proxied):
    gw, up = proxied.gw, proxied.up
    with H2Client(gw.port) as client:
        stream = client.request("POST", "/with-trailers", body=b"hello h2", trailers=[("x-digest", "sha-1")])
        response, = client.wait(stream)
    assert response.status == 200
    echo = json.loads(response.body)
    assert echo["body"] == "hello h2"
    request = up.requests[-1]
    assert request.header("transfer-encoding") == "chunked"
    assert request.trailers == [("x-digest", "sha-1")]


def test_upstream_trailers_reach_the_h2_client(proxied):
    gw = proxied.gw
    with H2Client(gw.port) as client:
        response, = client.wait(client.request("GET", "/t?bytes=3000&chunked=1&trailer=grpc-status:0&trailer=x-sum:42"))
    assert response.status == 200
    assert len(response.body) == 3000
    assert ("grpc-status", "0") in response.trailers
    assert ("x-sum", "42") in response.trailers


def test_cookie_crumbs_are_joined_and_connection_headers_never_sent(proxied):
    gw, up = proxied.gw, proxied.up
    with H2Client(gw.port) as client:
        response, = client.wait(client.request("GET", "/cookies", headers=[("cookie", "a=1"), ("cookie", "b=2")]))
    assert response.status == 200
    assert up.requests[-1].header_values("cookie") == ["a=1; b=2"]
    names = {name for name, _ in response.headers}
    assert not names & {"connection", "keep-alive", "transfer-encoding", "upgrade"}
    assert response.header("server") == "istio-envoy"
    assert response.header("x-envoy-upstream-service-time") is not None


def test_local_replies_over_h2(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up, [cfg.route(cfg.destination(), match={"uri": {"prefix": "/known"}})]))
    with H2Client(gw.port) as client:
        missing, = client.wait(client.request("GET", "/unknown"))
    assert missing.status == 404
    assert missing.body == b""
    assert "NR" in flags(gw.log_for_path("/unknown"))


def test_client_reset_mid_response_leaves_the_gateway_serving(proxied):
    gw = proxied.gw
    with H2Client(gw.port) as client:
        stream = client.request("GET", "/big?bytes=50000000&chunk=65536")
        client.wait(stream, max_bytes=200_000)
        client.reset(stream)
        after = client.request("GET", "/after-reset")
        response, = client.wait(after)
        assert response.status == 200
    entry = gw.log_for_path("/big?bytes=50000000&chunk=65536")
    assert "DC" in flags(entry)
    assert gw.get("/still-fine").status_code == 200


def test_rapid_reset_storm_closes_that_connection_only(proxied):
    """CVE-2023-44487: a client that opens and resets streams in a loop loses its connection; others
    are served."""
    import socket

    import h2.config
    import h2.connection
    import h2.events

    gw = proxied.gw
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    goaway = closed = False
    for _ in range(1000):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", "GET"), (":path", "/storm?sleep=1"), (":scheme", "http"),
                                   (":authority", "gatehouse.test")])
        conn.reset_stream(stream)
        try:
            sock.sendall(conn.data_to_send())
        except OSError:
            closed = True
            break
    sock.settimeout(5)
    try:
        while not (goaway or closed):
            data = sock.recv(65536)
            if not data:
                closed = True
                break
            goaway = any(isinstance(e, h2.events.ConnectionTerminated) for e in conn.receive_data(data))
    except OSError:
        closed = True
    sock.close()
    assert goaway or closed, "the storm must cost the attacker its connection"
    assert gw.running()
    with H2Client(gw.port) as client:
        response, = client.wait(client.request("GET", "/after-storm"))
    assert response.status == 200


def test_malformed_frames_close_the_connection_and_the_gateway_keeps_serving(proxied):
    gw = proxied.gw
    import socket
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    # The preface, SETTINGS, then HEADERS on stream 0, which RFC 9113 makes a connection error.
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                 + b"\x00\x00\x04\x01\x04\x00\x00\x00\x00" + b"\x82\x86\x84\x41")
    ended = False
    try:
        while sock.recv(65536):
            pass
        ended = True  # EOF: the gateway closed the connection (after a GOAWAY, if it sent one)
    except ConnectionResetError:
        ended = True
    except OSError:
        pass
    sock.close()
    assert ended, "a connection that breaks the protocol is closed, not left hanging"
    assert gw.get("/after-garbage").status_code == 200
    with H2Client(gw.port) as client:
        response, = client.wait(client.request("GET", "/after-garbage-h2"))
    assert response.status == 200


def test_a_stalled_http2_preface_is_timed_like_a_stalled_head(gateway, upstream):
    import time
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), limits={"requestHeadersTimeout": "1s"})
    with gw.raw(timeout=6) as conn:
        conn.send(b"PRI * HTTP/2.0\r\n")
        started = time.monotonic()
        assert conn.read_response().status == 408
        assert time.monotonic() - started < 4
        assert conn.is_closed_by_peer(timeout=3)
    assert gw.get("/after").status_code == 200


def test_proxy_owned_headers_from_an_h2_client_are_replaced(proxied):
    """The forwarding rules of HTTP/1.1 apply to HTTP/2 requests too: client x-envoy-* headers never reach
    the upstream (CVE-2023-27487), x-forwarded-for is appended to once, x-forwarded-proto is the gateway's."""
    gw, up = proxied.gw, proxied.up
    with H2Client(gw.port) as client:
        response, = client.wait(client.request("GET", "/h2-owned", headers=[
            ("x-envoy-original-path", "/admin"), ("x-envoy-retry-on", "5xx"),
            ("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", "https"), ("x-ordinary", "kept")]))
    assert response.status == 200
    request = up.requests[-1]
    assert request.header("x-envoy-original-path") is None
    assert request.header("x-envoy-retry-on") is None
    assert request.header_values("x-forwarded-for") == ["203.0.113.7,127.0.0.1"]
    assert request.header_values("x-forwarded-proto") == ["http"]
    assert request.header("x-ordinary") == "kept"
