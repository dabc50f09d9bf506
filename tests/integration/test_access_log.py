"""Access log: one JSON object per request with Istio's field names (DESIGN.md §5, istio-semantics §9)."""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone

import pytest

from harness import config as cfg
from harness.checks import ADDRESS_RE, flags
from harness.gateway import free_port
from harness.upstream import echo_of

FIELDS = [
    "start_time", "method", "path", "protocol", "response_code", "response_flags", "response_code_details",
    "connection_termination_details", "upstream_transport_failure_reason", "bytes_received", "bytes_sent",
    "duration", "upstream_service_time", "x_forwarded_for", "user_agent", "request_id", "authority",
    "upstream_host", "upstream_cluster", "upstream_local_address", "downstream_local_address",
    "downstream_remote_address", "requested_server_name", "route_name",
    "source_principal", "request_principal", "authz_policy", "ratelimit", "tls_version",
]


def parse_time(value: str) -> datetime:
    assert isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$",
                                               value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_proxied_request_fields(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up, [cfg.route(name="logged-route")]))
    body = b"hello world"
    before = datetime.now(timezone.utc)
    with gw.raw() as conn:
        client_address = "%s:%d" % conn.local_address
        r = conn.request("POST", "/log/me?x=1&y=2", [
            ("Host", "logtest.example.com"),
            ("User-Agent", "gatehouse-tests/1.0"),
            ("X-Request-Id", "log-request-1"),
            ("X-Forwarded-For", "198.51.100.9"),
        ], body=body, host=None)
    assert r.status == 200
    echo = echo_of(r)

    entry = gw.log_for_path("/log/me?x=1&y=2")
    missing = [f for f in FIELDS if f not in entry]
    assert not missing, f"missing fields {missing} in {entry}"

    assert abs((parse_time(entry["start_time"]) - before).total_seconds()) < 30
    assert entry["method"] == "POST"
    assert entry["path"] == "/log/me?x=1&y=2"
    assert entry["protocol"] == "HTTP/1.1"
    assert entry["response_code"] == 200 and isinstance(entry["response_code"], int)
    assert entry["response_flags"] == "-"
    assert entry["response_code_details"] == "via_upstream"
    assert entry["connection_termination_details"] is None
    assert entry["upstream_transport_failure_reason"] is None
    assert entry["bytes_received"] == len(body) and isinstance(entry["bytes_received"], int)
    assert entry["bytes_sent"] == len(r.body) and isinstance(entry["bytes_sent"], int)
    assert isinstance(entry["duration"], int) and 0 <= entry["duration"] < 10_000
    assert entry["upstream_service_time"] is not None
    assert int(entry["upstream_service_time"]) >= 0
    assert "198.51.100.9" in (entry["x_forwarded_for"] or "")
    assert entry["user_agent"] == "gatehouse-tests/1.0"
    assert entry["request_id"] == "log-request-1"
    assert entry["authority"] == "logtest.example.com"
    assert entry["upstream_host"] == f"127.0.0.1:{up.port}"
    assert entry["upstream_cluster"] == "outbound|80||backend.test"
    assert ADDRESS_RE.match(entry["upstream_local_address"] or ""), entry["upstream_local_address"]
    assert entry["downstream_local_address"] == f"127.0.0.1:{gw.port}"
    assert entry["downstream_remote_address"] == client_address
    assert entry["requested_server_name"] is None
    assert entry["route_name"] == "logged-route"
    for unset in ("source_principal", "request_principal", "authz_policy", "ratelimit", "tls_version"):
        assert entry[unset] is None, f"{unset} should be null without TLS/policies, got {entry[unset]!r}"
    assert echo.header("x-request-id") == "log-request-1"


def test_duration_covers_upstream_time(proxied):
    gw = proxied.gw
    gw.get("/slow-log?sleep=0.3")
    entry = gw.log_for_path("/slow-log?sleep=0.3")
    assert entry["duration"] >= 280
    assert int(entry["upstream_service_time"]) >= 280


def test_local_reply_fields(proxied_only_api):
    gw = proxied_only_api
    with gw.raw() as conn:
        client_address = "%s:%d" % conn.local_address
        r = conn.request("GET", "/nowhere", [("User-Agent", "ua-nr")])
    assert r.status == 404
    entry = gw.log_for_path("/nowhere")
    missing = [f for f in FIELDS if f not in entry]
    assert not missing, f"missing fields {missing} in {entry}"
    assert entry["method"] == "GET"
    assert entry["response_code"] == 404
    assert entry["response_flags"] == "NR"
    assert entry["response_code_details"] == "route_not_found"
    assert entry["bytes_received"] == 0
    assert entry["bytes_sent"] == 0
    assert entry["upstream_host"] is None
    assert entry["upstream_cluster"] is None
    assert entry["upstream_local_address"] is None
    assert entry["upstream_service_time"] is None
    assert entry["route_name"] is None
    assert entry["user_agent"] == "ua-nr"
    assert entry["request_id"]  # generated even for local replies
    assert entry["downstream_remote_address"] == client_address
    assert entry["downstream_local_address"] == f"127.0.0.1:{gw.port}"


@pytest.fixture
def proxied_only_api(gateway, upstream):
    up = upstream("backend")
    return gateway(cfg.simple_backend(up, [cfg.route(match={"uri": {"prefix": "/api"}})]))


def test_upstream_failure_fields(gateway):
    dead = free_port()
    gw = gateway([cfg.service_entry("backend.test", [cfg.endpoint(dead)]),
                  cfg.virtual_service("main", [cfg.route()])])
    gw.get("/dead")
    entry = gw.log_for_path("/dead")
    assert entry["response_code"] == 503
    assert "UF" in flags(entry)
    assert entry["upstream_cluster"] == "outbound|80||backend.test"
    assert entry["upstream_host"] in (f"127.0.0.1:{dead}", None)


def test_one_line_per_request(proxied):
    gw = proxied.gw
    paths = [f"/count/{i}" for i in range(7)]
    with gw.client() as client:
        for path in paths:
            assert client.get(path).status_code == 200
    gw.wait_for_log(lambda e: str(e.get("path", "")).startswith("/count/"), count=len(paths))
    time.sleep(0.3)  # would a duplicate line show up late?
    entries = [e for e in gw.access_log_lines() if str(e.get("path", "")).startswith("/count/")]
    assert sorted(e["path"] for e in entries) == sorted(paths)


def test_access_log_to_stdout(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), bootstrap={"accessLog": {"path": "-", "format": "json"}})
    assert gw.get("/to-stdout").status_code == 200
    deadline = time.monotonic() + 5
    found = None
    while time.monotonic() < deadline and found is None:
        for line in gw.stdout_text().splitlines():
            if line.strip():
                entry = json.loads(line)  # stdout carries only access-log lines
                if entry.get("path") == "/to-stdout":
                    found = entry
        time.sleep(0.05)
    assert found is not None, f"no access-log line on stdout:\n{gw.describe()}"
    assert found["response_code"] == 200
