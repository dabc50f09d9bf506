"""SIGTERM/SIGINT: stop accepting, finish in-flight requests, flush the log, exit 0."""
from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import httpx
import pytest

from harness import config as cfg
from harness.gateway import port_accepts


def request_in_background(gw, path: str, timeout: float = 15.0) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run() -> None:
        try:
            with httpx.Client(trust_env=False, timeout=timeout) as client:
                result["response"] = client.get(gw.url + path)
        except Exception as error:  # reported by the test
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_in_flight_request_completes_then_exit_0(gateway, upstream, sig):
    up = upstream("slow")
    gw = gateway(cfg.simple_backend(up))
    thread, result = request_in_background(gw, "/slow?sleep=2")
    up.wait_for_active(1, timeout=5)
    signalled = time.monotonic()
    gw.send_signal(sig)
    thread.join(timeout=15)
    assert not thread.is_alive(), "the in-flight request never finished"
    assert "error" not in result, f"in-flight request failed during shutdown: {result.get('error')!r}"
    response = result["response"]
    assert response.status_code == 200
    assert response.headers.get("x-upstream-name") == "slow"
    code = gw.wait(timeout=15)
    assert code == 0, f"exit code {code}\n{gw.describe()}"
    assert time.monotonic() - signalled >= 1.0, "exited before the in-flight request could finish"
    # The log line of the drained request is flushed before exit.
    entries = gw.access_log_lines(min_count=1, timeout=1)
    assert any(e.get("path") == "/slow?sleep=2" and e.get("response_code") == 200 for e in entries), entries


def test_stops_accepting_while_draining(gateway, upstream):
    up = upstream("slow")
    gw = gateway(cfg.simple_backend(up))
    thread, result = request_in_background(gw, "/slow?sleep=3")
    up.wait_for_active(1, timeout=5)
    gw.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and port_accepts("127.0.0.1", gw.port):
        time.sleep(0.05)
    assert not port_accepts("127.0.0.1", gw.port), "still accepting connections after SIGTERM"
    assert gw.running(), "exited while a request was still in flight"
    thread.join(timeout=15)
    assert result.get("response") is not None and result["response"].status_code == 200, result
    assert gw.wait(timeout=15) == 0


def test_idle_gateway_exits_quickly(proxied):
    gw = proxied.gw
    assert gw.get("/warm").status_code == 200
    started = time.monotonic()
    assert gw.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - started < 5


def test_idle_keep_alive_connection_does_not_hold_shutdown(proxied):
    """An idle keep-alive client connection has nothing in flight: it is closed, not waited for until
    drainTimeout (20 s here)."""
    gw = proxied.gw
    with gw.raw() as conn:
        assert conn.request("GET", "/idle").status == 200
        started = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        code = gw.wait(timeout=15)
        assert code == 0
        assert time.monotonic() - started < 10
        assert conn.is_closed_by_peer(timeout=2)


def test_drain_timeout_bounds_shutdown(gateway, upstream):
    """A request longer than drainTimeout does not keep the gateway alive past it."""
    up = upstream("very-slow")
    gw = gateway(cfg.simple_backend(up), limits={"drainTimeout": "1s"})
    thread, result = request_in_background(gw, "/forever?sleep=20", timeout=25)
    up.wait_for_active(1, timeout=5)
    started = time.monotonic()
    gw.send_signal(signal.SIGTERM)
    gw.wait(timeout=10)
    assert time.monotonic() - started < 6, "drainTimeout 1s was not enforced"
    thread.join(timeout=5)


def test_sigterm_under_load_loses_no_request_the_gateway_took(gateway, upstream):
    """Clients keep sending during the drain. Every request the upstream saw was answered 200 to its
    client and has its log line; the others were refused before the gateway read them (the listener
    closed, or a keep-alive connection closed while idle), never cut off halfway."""
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up))
    stop = threading.Event()
    answered: list[int] = []
    refused: list[str] = []

    def load() -> None:
        with httpx.Client(trust_env=False, timeout=10) as client:
            while not stop.is_set():
                try:
                    answered.append(client.get(gw.url + "/load?sleep=0.02").status_code)
                except (httpx.ConnectError, httpx.RemoteProtocolError) as error:
                    refused.append(repr(error))
                    if not gw.running():
                        return
                    time.sleep(0.01)

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    gw.send_signal(signal.SIGTERM)
    code = gw.wait(timeout=20)
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    assert code == 0
    assert len(answered) > 20 and set(answered) == {200}, set(answered)
    assert len(up.requests) == len(answered), f"upstream saw {len(up.requests)}, clients got {len(answered)}"
    logged = [e for e in gw.access_log_lines(min_count=len(answered), timeout=2) if e.get("path", "").startswith("/load")]
    assert len(logged) == len(answered) and all(e["response_code"] == 200 for e in logged)


def test_drain_sends_goaway_on_http2_and_connection_close_on_http11(gateway, upstream):
    """Requests in flight when SIGTERM comes finish; the client learns not to send more on the
    connection: a GOAWAY frame on HTTP/2 (nghttp, h2c), `Connection: close` on HTTP/1.1."""
    up = upstream("slow")
    gw = gateway(cfg.simple_backend(up))
    nghttp = subprocess.Popen(["nghttp", "-v", f"http://127.0.0.1:{gw.port}/h2?sleep=1.5"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    h1 = gw.raw()
    h1.send(b"GET /h1?sleep=1.5 HTTP/1.1\r\nHost: x.test\r\n\r\n")
    up.wait_for_active(2, timeout=5)
    gw.send_signal(signal.SIGTERM)
    output, _ = nghttp.communicate(timeout=15)
    assert nghttp.returncode == 0, output
    assert "recv GOAWAY frame" in output and "error_code=NO_ERROR" in output, output
    assert ":status: 200" in output and "x-upstream-name: slow" in output, output
    answer = h1.read_response()
    assert answer.status == 200 and answer.header("connection") == "close"
    h1.close()
    assert gw.wait(timeout=15) == 0


def test_a_second_sigterm_exits_at_once(gateway, upstream):
    up = upstream("slow")
    gw = gateway(cfg.simple_backend(up))
    thread, _ = request_in_background(gw, "/slow?sleep=10")
    up.wait_for_active(1, timeout=5)
    gw.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert gw.running(), "the first SIGTERM drains: the request in flight holds it"
    signalled = time.monotonic()
    gw.send_signal(signal.SIGTERM)
    code = gw.wait(timeout=5)
    assert time.monotonic() - signalled < 3
    assert code == 1 and "second signal: exiting without waiting" in gw.stderr_text()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_json_diagnostics_for_log_shippers(gateway, upstream, how):
    """`--log-format json` (or GATEHOUSE_LOG_FORMAT=json): every diagnostic line on stderr is one JSON
    object with time, level and message, from start-up through the drain to "stopped"."""
    up = upstream("backend")
    if how == "flag":
        gw = gateway(cfg.simple_backend(up), extra_args=["--log-format", "json"])
    else:
        gw = gateway(cfg.simple_backend(up), env={"GATEHOUSE_LOG_FORMAT": "json"})
    assert gw.get("/x").status_code == 200
    assert gw.stop(signal.SIGTERM, timeout=10) == 0
    lines = [line for line in gw.stderr_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "message", "logger"} <= set(r) for r in records), records
    messages = [r["message"] for r in records]
    assert any(m.startswith("gatehouse ") and "serving" in m for m in messages), messages
    assert any(m.startswith("received SIGTERM: draining") for m in messages), messages
    assert messages[-1] == "stopped"
    assert all(r["level"] == "info" for r in records)


def test_an_unknown_log_format_is_refused(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), extra_args=["--log-format", "xml"], wait=False)
    assert gw.wait(timeout=10) != 0
    assert "xml" in gw.stderr_text()


def test_an_unknown_log_format_in_the_environment_is_refused(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), env={"GATEHOUSE_LOG_FORMAT": "jsn"}, wait=False)
    assert gw.wait(timeout=10) == 64
    assert "GATEHOUSE_LOG_FORMAT=jsn is not one of text, json" in gw.stderr_text()
