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

    def unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = dict(context.invocation_metadata())
        if request == b"missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        context.set_trailing_metadata([("x-served-by", "grpcio"), ("x-seen-authority", metadata.get(":authority", ""))])
        return b"echo:" + request + b":" + metadata.get("x-client", "").encode()

    def bidi(self, requests, context: grpc.ServicerContext):
        for index, message in enumerate(requests):
            yield b"%d:" % index + message


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
    yield port
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
