"""Self-tests of the harness: they need no gateway binary and run directly against the upstream server."""
from __future__ import annotations

import hashlib
import socket
import threading
import time

import httpx
import pytest

from harness import config as cfg
from harness import pattern
from harness.gateway import free_port, port_accepts
from harness.rawhttp import RawConnection, format_request
from harness.upstream import Upstream, echo_of


def test_pattern_is_deterministic_and_chunking_independent():
    whole = pattern.data(3 * pattern.BLOCK_LEN + 5)
    pieces = b"".join(bytes(c) for c in pattern.chunks(len(whole), 4096))
    assert whole == pieces
    assert hashlib.sha256(whole).hexdigest() == pattern.sha256(len(whole))
    assert pattern.data(10, offset=pattern.BLOCK_LEN) == pattern.data(10)


def test_yaml_writer_round_trips():
    yaml = pytest.importorskip("yaml")
    docs = [
        cfg.bootstrap("/tmp/x.log", limits={"requestHeadersTimeout": "1s"}),
        cfg.gateway(8080),
        cfg.service_entry("backend.test", [cfg.endpoint(1234, labels={"version": "v1"})]),
        cfg.virtual_service("vs", [
            cfg.route(cfg.destination(weight=100, headers={"request": {"set": {"x-a": "on"}}}),
                      match={"uri": {"regex": "/a\\d+"}, "headers": {"x-b": {"exact": "yes"}}}, timeout="1s"),
            cfg.action("directResponse", {"status": 200, "body": {"string": "a \"quoted\"\nline"}}),
            {"match": [{"queryParams": {"q": {}}}], "route": [cfg.destination()]},
        ]),
    ]
    assert list(yaml.safe_load_all(cfg.to_yaml_stream(docs))) == docs


def test_echo_and_keepalive_counting(upstream):
    up = upstream("a")
    with httpx.Client(trust_env=False, timeout=5) as client:
        for i in range(5):
            r = client.post(f"{up.url}/echo/{i}?x=1", content=b"hello", headers={"X-Test": str(i)})
            assert r.status_code == 200
            echo = echo_of(r)
            assert echo.upstream == "a"
            assert echo.path == f"/echo/{i}"
            assert echo["query"] == {"x": ["1"]}
            assert echo.header("x-test") == str(i)
            assert echo["body"] == "hello"
            assert echo["body_sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert up.accepted == 1
    assert len(up.requests) == 5


def test_status_headers_and_text_body(upstream):
    up = upstream("a", status=418)
    r = httpx.get(f"{up.url}/x?resp_header=x-one:1&resp_header=x-two:2&body=hi", trust_env=False)
    assert r.status_code == 418
    assert r.text == "hi"
    assert r.headers["x-one"] == "1" and r.headers["x-two"] == "2"


@pytest.mark.parametrize("chunked", [False, True])
def test_bytes_download(upstream, chunked):
    up = upstream("a")
    size = 5 * 1024 * 1024 + 3
    with RawConnection("127.0.0.1", up.port) as conn:
        resp = conn.request("GET", f"/d?bytes={size}&chunked={int(chunked)}", keep_body=False, hash_body=True)
    assert resp.status == 200 and resp.complete
    assert resp.body_length == size
    assert resp.body_sha256 == pattern.sha256(size)
    assert (resp.header("transfer-encoding") == "chunked") == chunked


@pytest.mark.parametrize("chunked", [False, True])
def test_upload_is_hashed(upstream, chunked):
    up = upstream("a")
    size = 3 * 1024 * 1024 + 11
    with RawConnection("127.0.0.1", up.port) as conn:
        if chunked:
            conn.send(format_request("PUT", "/u", [("Transfer-Encoding", "chunked")]))
            for chunk in pattern.chunks(size, 100_000):
                conn.send(b"%x\r\n" % len(chunk) + bytes(chunk) + b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            conn.send(format_request("PUT", "/u", [("Content-Length", str(size))]))
            conn.send_stream(pattern.chunks(size))
        echo = echo_of(conn.read_response())
    assert echo["body_length"] == size
    assert echo["body_sha256"] == pattern.sha256(size)
    assert echo["body"] is None


def test_sleep_and_active_tracking(upstream):
    up = upstream("a")
    result = {}

    def call():
        result["r"] = httpx.get(f"{up.url}/slow?sleep=0.5", trust_env=False, timeout=5)

    thread = threading.Thread(target=call)
    started = time.monotonic()
    thread.start()
    up.wait_for_active(1, timeout=2)
    thread.join(5)
    assert result["r"].status_code == 200
    assert time.monotonic() - started >= 0.5


def test_close_before_headers(upstream):
    up = upstream("a", close="before_headers")
    with RawConnection("127.0.0.1", up.port) as conn:
        conn.send(format_request("GET", "/x"))
        assert conn.is_closed_by_peer(timeout=2)


def test_close_mid_body(upstream):
    up = upstream("a")
    with RawConnection("127.0.0.1", up.port) as conn:
        resp = conn.request("GET", "/x?close=mid_body&bytes=200000")
    assert resp.status == 200
    assert not resp.complete
    assert resp.body_length == 100000


def test_pipelined_requests_answered_in_order(upstream):
    up = upstream("a")
    with RawConnection("127.0.0.1", up.port) as conn:
        conn.send(b"".join(format_request("GET", f"/p{i}") for i in range(3)))
        paths = [echo_of(conn.read_response()).path for _ in range(3)]
    assert paths == ["/p0", "/p1", "/p2"]
    assert up.accepted == 1


def test_free_port_is_closed():
    assert not port_accepts("127.0.0.1", free_port())


def test_stop_releases_port():
    up = Upstream("x").start()
    port = up.port
    assert port_accepts("127.0.0.1", port)
    up.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def test_close_after_response(upstream):
    up = upstream("a", close="after_response")
    with RawConnection("127.0.0.1", up.port) as conn:
        resp = conn.request("GET", "/x")
        assert resp.status == 200 and resp.complete
        assert conn.is_closed_by_peer(timeout=2)


def test_pause_after_first_chunk(upstream):
    up = upstream("a")
    first: list[float] = []
    with RawConnection("127.0.0.1", up.port) as conn:
        started = time.monotonic()
        resp = conn.request("GET", "/x?bytes=300000&chunk=65536&chunked=1&pause=0.5", keep_body=False,
                            on_chunk=lambda d: first.append(time.monotonic()) if not first else None)
        total = time.monotonic() - started
    assert resp.body_length == 300000
    assert first[0] - started < 0.3 and total >= 0.5


def test_heads_are_counted_before_the_body(upstream):
    up = upstream("a")
    with RawConnection("127.0.0.1", up.port) as conn:
        conn.send(format_request("PUT", "/x", [("Content-Length", "10")]) + b"12345")
        up.wait_for_heads(1, timeout=2)
        assert len(up.requests) == 0
        conn.send(b"67890")
        assert echo_of(conn.read_response())["body"] == "1234567890"


def test_rss_of_this_process_is_readable():
    from harness.gateway import Gateway

    class Self(Gateway):
        @property
        def pid(self):  # type: ignore[override]
            import os
            return os.getpid()

    assert Self.__new__(Self).rss_kb() > 1000


STAND_IN = r'''#!/usr/bin/env python3
# Stands in for gatehouse: listens on the Gateway port, answers 200, logs one JSON line per request.
import json, pathlib, re, signal, socket, sys
config = pathlib.Path(sys.argv[sys.argv.index("--config") + 1]) / "00-gatehouse.yaml"
text = config.read_text()
port = int(re.search(r"number: (\d+)", text).group(1))
log = open(re.search(r'path: "([^"]+)"', text).group(1), "a")
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
server = socket.create_server(("127.0.0.1", port))
while True:
    conn, _ = server.accept()
    data = conn.recv(65536)
    if data:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        log.write(json.dumps({"path": data.split(b" ")[1].decode(), "response_code": 200}) + "\n")
        log.flush()
    conn.close()
'''


def test_gateway_fixture_with_a_stand_in_binary(tmp_path, monkeypatch):
    """The Gateway wrapper (config writing, readiness, log polling, RSS, signals) without the real binary."""
    import signal as signals

    from conftest import GatewayFactory

    stand_in = tmp_path / "stand-in"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    monkeypatch.setenv("GATEHOUSE_BIN", str(stand_in))
    factory = GatewayFactory(tmp_path=tmp_path, started=[])
    try:
        gw = factory(cfg.simple_backend(1234))
        assert gw.get("/hello").text == "ok"
        assert gw.log_for_path("/hello")["response_code"] == 200
        assert gw.rss_kb() > 0
        assert gw.stop(signals.SIGTERM, timeout=5) == 0
        assert not gw.running()
    finally:
        for started in factory.started:
            started.kill()
