"""Istio's standard metrics on /stats/prometheus, read with the real Prometheus client parser: request
counts, duration and size histograms with Istio's labels (reporter="source", the gateway as source
workload, the ServiceEntry as destination service), gRPC status, local replies, and TCP connections."""
from __future__ import annotations

import socket
import time

import grpc

from harness import config as cfg
from harness.admin import samples
from harness.gateway import free_port
from test_grpc import SERVICE, _identity, grpc_backend  # noqa: F401  (grpc_backend is a fixture)
from test_passthrough import EchoServer, stream_gateway


def series(admin: int, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    return [(l, v) for l, v in samples(admin, name) if all(l.get(k) == want for k, want in labels.items())]


def wait_total(admin: int, name: str, want: float, **labels: str) -> float:
    """Counts are recorded when a request's log record completes: poll briefly."""
    deadline = time.monotonic() + 5
    total = 0.0
    while time.monotonic() < deadline:
        total = sum(v for _, v in series(admin, name, **labels))
        if total >= want:
            break
        time.sleep(0.05)
    return total


def admin_bootstrap() -> tuple[int, dict]:
    admin = free_port()
    return admin, {"admin": {"address": "127.0.0.1", "port": admin}, "labels": {"app": "edge-gw", "version": "v7"}}


def test_http_requests_are_counted_with_istios_labels(gateway, upstream):
    admin, bootstrap = admin_bootstrap()
    up = upstream("backend")
    gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(up)], namespace="shop"),
                  cfg.virtual_service("main", [cfg.route(cfg.destination(), match={"uri": {"prefix": "/api"}})])],
                 bootstrap=bootstrap)
    for _ in range(3):
        assert gw.request("POST", "/api/x", content=b"0123456789").status_code == 200
    assert gw.get("/nowhere").status_code == 404
    assert wait_total(admin, "istio_requests_total", 3, response_code="200") == 3
    [(labels, value)] = series(admin, "istio_requests_total", response_code="200")
    assert labels == {
        "reporter": "source", "source_workload": "edge", "source_canonical_service": "edge-gw",
        "source_canonical_revision": "v7", "source_workload_namespace": "istio-system", "source_principal": "unknown",
        "source_app": "edge-gw", "source_version": "v7", "source_cluster": "unknown",
        "destination_workload": "unknown", "destination_workload_namespace": "unknown",
        "destination_principal": "unknown", "destination_app": "unknown", "destination_version": "unknown",
        "destination_service": cfg.BACKEND_HOST, "destination_canonical_service": "unknown",
        "destination_canonical_revision": "latest", "destination_service_name": cfg.BACKEND_HOST,
        "destination_service_namespace": "shop", "destination_cluster": "unknown", "request_protocol": "http",
        "response_code": "200", "grpc_response_status": "", "response_flags": "-",
        "connection_security_policy": "unknown",
    }
    # The no-route reply: no destination, flag NR.
    [(nr, count)] = series(admin, "istio_requests_total", response_code="404")
    assert count == 1 and nr["response_flags"] == "NR" and nr["destination_service"] == "unknown"
    # Histograms: three observations each; request bodies of 10 bytes fall in the le="10" bucket.
    assert series(admin, "istio_request_duration_milliseconds_count", response_code="200")[0][1] == 3
    assert series(admin, "istio_request_bytes_bucket", response_code="200", le="10")[0][1] == 3
    assert series(admin, "istio_request_bytes_bucket", response_code="200", le="1")[0][1] == 0
    assert series(admin, "istio_request_bytes_sum", response_code="200")[0][1] == 30
    response_sum = series(admin, "istio_response_bytes_sum", response_code="200")[0][1]
    assert response_sum > 0
    assert series(admin, "istio_response_bytes_count", response_code="200")[0][1] == 3


def test_grpc_calls_carry_their_status(gateway, grpc_backend):  # noqa: F811
    admin, bootstrap = admin_bootstrap()
    entry = cfg.service_entry("echo.grpc.test", [cfg.endpoint(grpc_backend)], protocol="GRPC")
    vs = cfg.virtual_service("grpc", [cfg.route(cfg.destination("echo.grpc.test"))])
    gw = gateway([entry, vs], bootstrap=bootstrap)
    with grpc.insecure_channel(f"127.0.0.1:{gw.port}") as ch:
        call = ch.unary_unary(f"/{SERVICE}/Unary", request_serializer=_identity, response_deserializer=_identity)
        assert call(b"hi", timeout=10).startswith(b"echo:hi")
        try:
            call(b"missing", timeout=10)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
    assert wait_total(admin, "istio_requests_total", 2, request_protocol="grpc") == 2
    ok = series(admin, "istio_requests_total", request_protocol="grpc", grpc_response_status="0")
    missing = series(admin, "istio_requests_total", request_protocol="grpc", grpc_response_status="5")
    assert [v for _, v in ok] == [1] and [v for _, v in missing] == [1]
    assert ok[0][0]["response_code"] == "200" and ok[0][0]["destination_service"] == "echo.grpc.test"


def test_tcp_connections_and_bytes(gateway):
    admin, bootstrap = admin_bootstrap()
    backend = EchoServer()
    port = free_port()
    gw = stream_gateway(gateway, port, "TCP", backend.port, "tcp", bootstrap=bootstrap)
    opened_before = wait_total(admin, "istio_tcp_connections_opened_total", 0, request_protocol="tcp")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        # Open and counted before it closes.
        assert wait_total(admin, "istio_tcp_connections_opened_total", opened_before + 1,
                          destination_service="echo.test") >= opened_before + 1
        conn.sendall(b"x" * 1000)
        received = b""
        while len(received) < 1000:
            received += conn.recv(4096)
    assert wait_total(admin, "istio_tcp_received_bytes_total", 1000, destination_service="echo.test") == 1000
    assert wait_total(admin, "istio_tcp_sent_bytes_total", 1000, destination_service="echo.test") == 1000
    closed = wait_total(admin, "istio_tcp_connections_closed_total", 1, destination_service="echo.test")
    assert closed >= 1
    assert gw.running()
    backend.close()
