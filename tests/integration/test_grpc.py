"""gRPC through the gateway: a grpcio client over h2c to the gateway, HTTP/2 (h2c) from the gateway to a
grpcio server whose ServiceEntry port says GRPC. Unary and bidirectional streaming calls, status codes,
details and trailing metadata all arrive as the server sent them."""
from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from harness import config as cfg
from harness.gateway import free_port

SERVICE = "gatehouse.test.Echo"


def _identity(data: bytes) -> bytes:
    return data


class EchoService:
    """Generic handlers (no .proto): messages are raw bytes."""

    def __init__(self):
        self.flaky_calls = 0

    def unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = dict(context.invocation_metadata())
        if request == b"missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        if request == b"flaky":
            self.flaky_calls += 1
            if self.flaky_calls == 1:
                context.abort(grpc.StatusCode.UNAVAILABLE, "shedding load")
        context.set_trailing_metadata([("x-served-by", "grpcio"), ("x-seen-authority", metadata.get(":authority", ""))])
        return b"echo:" + request + b":" + metadata.get("x-client", "").encode()

    def bidi(self, requests, context: grpc.ServicerContext):
        for index, message in enumerate(requests):
            yield b"%d:" % index + message


class GRPCBackend:
    """The grpcio server a test talks to through the gateway: its port, and its service's state."""

    def __init__(self, port: int, service: EchoService):
        self.port = port
        self.service = service


@pytest.fixture
def grpc_backend():
    port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    service = EchoService()
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(service.unary, _identity, _identity),
        "Bidi": grpc.stream_stream_rpc_method_handler(service.bidi, _identity, _identity),
    })
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield GRPCBackend(port, service)
    server.stop(grace=None)


@pytest.fixture
def grpc_gateway(gateway, grpc_backend):
    entry = cfg.service_entry("echo.grpc.test", [cfg.endpoint(grpc_backend)], protocol="GRPC")
    vs = cfg.virtual_service("grpc", [cfg.route(cfg.destination("echo.grpc.test"), name="grpc-route")])
    return gateway([entry, vs])


def channel(gw) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{gw.port}")


def test_unary_call_with_metadata_and_trailers(grpc_gateway):
    with channel(grpc_gateway) as ch:
        call = ch.unary_unary(f"/{SERVICE}/Unary", request_serializer=_identity, response_deserializer=_identity)
        response, state = call.with_call(b"hello", metadata=[("x-client", "py")], timeout=10)
    assert response == b"echo:hello:py"
    assert state.code() == grpc.StatusCode.OK
    trailers = dict(state.trailing_metadata())
    assert trailers["x-served-by"] == "grpcio"
    entry = grpc_gateway.log_for_path(f"/{SERVICE}/Unary")
    assert entry["protocol"] == "HTTP/2"
    assert entry["response_code"] == 200
    assert entry["route_name"] == "grpc-route"


def test_error_status_and_details_pass_through(grpc_gateway):
    with channel(grpc_gateway) as ch:
        call = ch.unary_unary(f"/{SERVICE}/Unary", request_serializer=_identity, response_deserializer=_identity)
        with pytest.raises(grpc.RpcError) as failure:
            call(b"missing", timeout=10)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    assert failure.value.details() == "no such thing"


def test_bidirectional_streaming(grpc_gateway):
    messages = [b"m%03d" % i + b"x" * 1000 for i in range(200)]
    with channel(grpc_gateway) as ch:
        call = ch.stream_stream(f"/{SERVICE}/Bidi", request_serializer=_identity, response_deserializer=_identity)
        replies = list(call(iter(messages), timeout=20))
    assert replies == [b"%d:" % i + m for i, m in enumerate(messages)]


def test_many_calls_share_one_upstream_connection(grpc_gateway):
    with channel(grpc_gateway) as ch:
        call = ch.unary_unary(f"/{SERVICE}/Unary", request_serializer=_identity, response_deserializer=_identity)
        calls = [call.future(b"n%d" % i, timeout=10) for i in range(50)]
        assert sorted(c.result() for c in calls) == sorted(b"echo:n%d:" % i for i in range(50))
    hosts = {e["upstream_local_address"] for e in grpc_gateway.access_log_lines(50)
             if e.get("path") == f"/{SERVICE}/Unary"}
    assert len(hosts) == 1, f"streams are multiplexed on one upstream connection, got {hosts}"


def test_destination_rule_h2_upgrade_makes_an_http_port_speak_http2(gateway, grpc_backend):
    entry = cfg.service_entry("plain.grpc.test", [cfg.endpoint(grpc_backend)], protocol="HTTP")
    rule = cfg.resource("DestinationRule", "upgrade", {
        "host": "plain.grpc.test",
        "trafficPolicy": {"connectionPool": {"http": {"h2UpgradePolicy": "UPGRADE"}}},
    })
    vs = cfg.virtual_service("grpc", [cfg.route(cfg.destination("plain.grpc.test"))])
    gw = gateway([entry, rule, vs])
    with channel(gw) as ch:
        call = ch.unary_unary(f"/{SERVICE}/Unary", request_serializer=_identity, response_deserializer=_identity)
        assert call(b"up", timeout=10) == b"echo:up:"


def test_unavailable_is_retried_by_default_and_the_client_sees_ok(grpc_gateway, grpc_backend):
    with channel(grpc_gateway) as ch:
        call = ch.unary_unary(f"/{SERVICE}/Unary", request_serializer=_identity, response_deserializer=_identity)
        assert call(b"flaky", timeout=10) == b"echo:flaky:"
    assert grpc_backend.service.flaky_calls == 2, "Istio's default retries include unavailable"


def test_a_fault_abort_with_a_grpc_status_is_what_a_grpc_client_sees(gateway, grpc_backend):
    entry = cfg.service_entry("echo.grpc.test", [cfg.endpoint(grpc_backend)], protocol="GRPC")
    vs = cfg.virtual_service("grpc", [cfg.route(cfg.destination("echo.grpc.test"), fault={
        "abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 100}}})])
    gw = gateway([entry, vs])
    with channel(gw) as ch:
        call = ch.unary_unary(f"/{SERVICE}/Unary", request_serializer=_identity, response_deserializer=_identity)
        with pytest.raises(grpc.RpcError) as failure:
            call(b"hello", timeout=10)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert failure.value.details() == "fault filter abort"
    entry = gw.log_for_path(f"/{SERVICE}/Unary")
    assert entry["response_code"] == 200 and entry["response_flags"] == "FI"


def test_max_connection_duration_moves_new_streams_to_a_new_upstream_connection(gateway, grpc_backend):
    import time
    entry = cfg.service_entry("echo.grpc.test", [cfg.endpoint(grpc_backend)], protocol="GRPC")
    rule = cfg.resource("DestinationRule", "aged", {"host": "echo.grpc.test", "trafficPolicy": {
        "connectionPool": {"tcp": {"maxConnectionDuration": "500ms"}}}})
    gw = gateway([entry, rule, cfg.virtual_service("grpc", [cfg.route(cfg.destination("echo.grpc.test"))])])
    with channel(gw) as ch:
        call = ch.unary_unary(f"/{SERVICE}/Unary", request_serializer=_identity, response_deserializer=_identity)
        assert call(b"a", timeout=10) == b"echo:a:" and call(b"b", timeout=10) == b"echo:b:"
        time.sleep(0.6)  # the cap is a duration: it has to pass
        assert call(b"c", timeout=10) == b"echo:c:"
    local = [e["upstream_local_address"] for e in gw.access_log_lines(3) if e.get("path") == f"/{SERVICE}/Unary"]
    assert len(local) == 3 and local[0] == local[1] != local[2], local
