"""What the gateway writes toward an upstream, whatever the client sent (issue 12): framing is regenerated
canonical (one Content-Length or chunked, never both), no field with a control byte is written from any
source (JWT claims included), Connection cannot nominate essential headers away, prohibited trailer fields
and client ``x-envoy-*`` headers are dropped, and malformed HTTP/2 requests never become requests."""
from __future__ import annotations

import h2.errors
import pytest

from harness import config as cfg
from harness import jwt_keys as keys
from harness.admin import wait_for_sample
from harness.checks import flags
from harness.gateway import free_port
from harness.h2raw import RawH2
from harness.jwt_keys import ISSUER

DROPPED = "gatehouse_header_fields_dropped_total"


def head_lines(request) -> list[str]:
    """The upstream's raw request head as lines, without the request line and the blank line."""
    return request.raw_head.decode("latin-1").split("\r\n")[1:-2]


def h2_refusal(port: int, fields, body: bytes | None = None):
    """Sends one HTTP/2 request; returns (stream reset, GOAWAY), either None."""
    client = RawH2(port)
    try:
        stream = client.headers(fields, end=body is None)
        if body is not None:
            client.conn.send_data(stream, body, end_stream=True)
            client.flush()
        client.pump(lambda events: client.reset_of(stream) or client.goaway())
        return client.reset_of(stream), client.goaway()
    finally:
        client.close()


def h2_request(path: str, *extra, method: str = "GET") -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "http"), (":authority", "a"), (":path", path), *extra]


def framing_lines(request) -> list[str]:
    return [line for line in head_lines(request)
            if line.lower().startswith(("content-length:", "transfer-encoding:"))]


# ------------------------------------------------------------------------------------------ framing


@pytest.mark.parametrize("framing,body,expected", [
    (b"Content-Length:  4 \r\n", b"abcd", ["content-length: 4"]),
    (b"Content-Length: 004\r\n", b"abcd", ["content-length: 4"]),
    (b"Content-Length: 4\r\nContent-Length: 4\r\n", b"abcd", ["content-length: 4"]),
    (b"Transfer-Encoding: chunked \r\n", b"4\r\nabcd\r\n0\r\n\r\n", ["transfer-encoding: chunked"]),
    (b"Transfer-Encoding:\tchunked\r\n", b"4\r\nabcd\r\n0\r\n\r\n", ["transfer-encoding: chunked"]),
    (b"Transfer-Encoding: Chunked\r\n", b"4\r\nabcd\r\n0\r\n\r\n", ["transfer-encoding: chunked"]),
], ids=["blanks", "leading-zeros", "repeated", "chunked-trailing-space", "tab-chunked", "Chunked"])
def test_http11_framing_goes_upstream_canonical(proxied, framing, body, expected):
    with proxied.gw.raw() as conn:
        conn.send(b"POST /frame HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n" + body)
        assert conn.read_response().status == 200
    seen = proxied.up.requests[-1]
    assert framing_lines(seen) == expected
    assert seen.body_length == 4


@pytest.mark.parametrize("length", ["5,5", "+5", "5 5", "0x5"])
def test_h2_content_length_that_is_not_one_number_is_malformed(proxied, length):
    reset, _ = h2_refusal(proxied.gw.port, h2_request("/cl", ("content-length", length), method="POST"), body=b"hello")
    assert reset is not None and reset.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert proxied.up.requests == []


def test_h2_lengths_go_upstream_canonical_and_never_beside_chunked(proxied):
    client = RawH2(proxied.gw.port)
    with_length = client.headers([(":method", "POST"), (":scheme", "http"), (":authority", "a"), (":path", "/len"),
                                  ("content-length", "05")], end=False)
    client.conn.send_data(with_length, b"hello", end_stream=True)
    without = client.headers([(":method", "POST"), (":scheme", "http"), (":authority", "a"), (":path", "/nolen")],
                             end=False)
    client.conn.send_data(without, b"hello", end_stream=True)
    client.flush()
    client.pump(lambda events: client.ended(with_length) and client.ended(without))
    client.close()
    by_path = {r.path: r for r in proxied.up.wait_for_requests(2)}
    assert framing_lines(by_path["/len"]) == ["content-length: 5"]
    assert framing_lines(by_path["/nolen"]) == ["transfer-encoding: chunked"]
    assert by_path["/nolen"].body_length == 5


# --------------------------------------------------------------------------------- field injection


@pytest.mark.parametrize("value", ["x\r\nx-injected: 1", "x\r\n\r\nGET /admin HTTP/1.1\r\nHost: x", "nul\x00",
                                   "soh\x01", "del\x7f"], ids=["crlf", "second-request", "nul", "0x01", "0x7f"])
def test_jwt_claim_with_control_bytes_is_dropped_and_counted(gateway, upstream, value):
    admin = free_port()
    up = upstream("backend")
    deny_admin = cfg.authorization_policy("deny-admin", {"action": "DENY",
                                                         "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]})
    authn = cfg.request_authentication("jwt", [{
        "issuer": ISSUER, "jwks": keys.jwks(),
        "outputClaimToHeaders": [{"header": "x-name", "claim": "name"}, {"header": "x-sub", "claim": "sub"}]}])
    gw = gateway(cfg.simple_backend(up) + [authn, deny_admin], bootstrap={"admin": {"port": admin}})
    token = keys.RSA.sign({"name": value})
    response = gw.get("/claims", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert [r.path for r in up.requests] == ["/claims"], "no second request reached the upstream"
    seen = up.requests[-1]
    assert not seen.has_header("x-name") and not seen.has_header("x-injected")
    assert seen.header("x-sub") == "alice", "the other claims are still written"
    assert wait_for_sample(admin, DROPPED, {"reason": "invalid_claim_value"}) >= 1


def test_list_claims_are_joined_and_a_bad_element_drops_the_header(gateway, upstream):
    up = upstream("backend")
    authn = cfg.request_authentication("jwt", [{
        "issuer": ISSUER, "jwks": keys.jwks(), "outputClaimToHeaders": [{"header": "x-groups", "claim": "groups"}]}])
    gw = gateway(cfg.simple_backend(up) + [authn])
    assert gw.get("/ok", headers={"Authorization": f"Bearer {keys.RSA.sign({'groups': ['a', 'b']})}"}).status_code == 200
    assert up.requests[-1].header("x-groups") == "a,b"
    bad = keys.RSA.sign({"groups": ["a", "b\r\nx-injected: 1"]})
    assert gw.get("/bad", headers={"Authorization": f"Bearer {bad}"}).status_code == 200
    assert not up.requests[-1].has_header("x-groups") and not up.requests[-1].has_header("x-injected")


@pytest.mark.parametrize("value", ["a\x01b", "a\x7fb", "a\x00b"], ids=["0x01", "0x7f", "nul"])
def test_h2_field_with_control_byte_is_malformed_and_never_relayed(proxied, value):
    reset, goaway = h2_refusal(proxied.gw.port, h2_request("/ctl", ("x-value", value)))
    assert reset is not None or goaway is not None
    assert proxied.up.requests == []


@pytest.mark.parametrize("value", [" lead", "trail ", "\ttab"])
def test_h2_field_with_blank_at_an_end_is_malformed(proxied, value):
    reset, _ = h2_refusal(proxied.gw.port, h2_request("/ws", ("x-value", value)))
    assert reset is not None and reset.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert proxied.up.requests == []
    entry = proxied.gw.log_entry(lambda e: e.get("path") == "/ws")
    assert "DPE" in flags(entry)


def test_asterisk_form_is_options_only_on_both_protocols(proxied):
    reset, _ = h2_refusal(proxied.gw.port, h2_request("*"))
    assert reset is not None
    with proxied.gw.raw() as conn:
        conn.send(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.read_response().status == 400
    assert proxied.up.requests == []


# -------------------------------------------------------------------------------- header hygiene


def test_connection_cannot_nominate_host_framing_or_gateway_headers(proxied):
    with proxied.gw.raw() as conn:
        conn.send(b"POST /nominate HTTP/1.1\r\nHost: svc.example\r\n"
                  b"Connection: keep-alive, host, content-length, x-forwarded-for, x-request-id, x-custom\r\n"
                  b"Content-Length: 2\r\nX-Custom: gone\r\n\r\nhi")
        assert conn.read_response().status == 200
    seen = proxied.up.requests[-1]
    assert seen.header("host") == "svc.example"
    assert seen.header("content-length") == "2" and seen.body_length == 2
    assert seen.header("x-forwarded-for") == "127.0.0.1"
    assert seen.has_header("x-request-id")
    assert not seen.has_header("x-custom"), "an ordinary nominated header is still hop-by-hop"


def test_client_envoy_service_time_never_reaches_the_upstream(proxied):
    response = proxied.gw.get("/st", headers={"x-envoy-upstream-service-time": "1", "x-envoy-expected-rq-timeout-ms": "1"})
    assert response.status_code == 200
    seen = proxied.up.requests[-1]
    assert not seen.has_header("x-envoy-upstream-service-time")
    assert not seen.has_header("x-envoy-expected-rq-timeout-ms")


def test_prohibited_request_trailers_are_dropped_and_the_rest_forwarded(proxied):
    with proxied.gw.raw() as conn:
        conn.send(b"POST /trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"2\r\nhi\r\n0\r\nX-Checksum: abc\r\nContent-Length: 99\r\nHost: evil\r\n"
                  b"Authorization: Bearer forged\r\nTransfer-Encoding: gzip\r\n\r\n")
        assert conn.read_response().status == 200
    seen = proxied.up.requests[-1]
    assert [(name.lower(), value) for name, value in seen.trailers] == [("x-checksum", "abc")]
    assert seen.body_length == 2


def test_prohibited_response_trailers_are_dropped(proxied):
    with proxied.gw.raw() as conn:
        conn.send(b"GET /rt?bytes=10&chunked=1&trailer=x-sum:1&trailer=content-length:5&trailer=set-cookie:a=b "
                  b"HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
        reply = conn.read_response()
    names = [name.lower() for name, _ in reply.trailers]
    assert names == ["x-sum"], reply.trailers


# --------------------------------------------------------------------------------------- limits


def test_http2_obeys_max_request_headers_and_advertises_the_size(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), limits={"maxRequestHeaders": 20, "maxRequestHeadersKb": 8})
    client = RawH2(gw.port)
    client.pump(lambda events: any(type(e).__name__ == "RemoteSettingsChanged" for e in events))
    settings = next(e for e in client.events if type(e).__name__ == "RemoteSettingsChanged")
    advertised = {int(k): v.new_value for k, v in settings.changed_settings.items()}
    assert advertised.get(0x6) == 8 * 1024, "SETTINGS_MAX_HEADER_LIST_SIZE is the HTTP/1.1 limit"
    many = [(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/many")]
    many += [(f"x-h{i}", "v") for i in range(30)]
    stream = client.headers(many)
    client.pump(lambda events: client.ended(stream) or client.reset_of(stream) or client.goaway())
    response = client.response_of(stream)
    client.close()
    assert response is not None and dict(response.headers)[":status"] == "431"
    assert up.requests == []
    assert gw.get("/few").status_code == 200
