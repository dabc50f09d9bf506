"""HTTP/1.1 on the wire: the gateway's own codec refuses what could be read two ways (request smuggling),
frames bodies correctly for each client whatever the upstream sent, and passes trailers through."""
from __future__ import annotations

import pytest

from harness import pattern
from harness.checks import flags


@pytest.mark.parametrize("raw", [
    b"POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /smuggle HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /smuggle HTTP/1.1\r\nHost: x\nX-Bare-LF: 1\r\n\r\n",
    b"GET /smuggle HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  continued\r\n\r\n",
    b"GET /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n",
    b"GET /smuggle HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
    b"GET /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
    b"GET /smuggle HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
], ids=["te-and-cl", "http10-chunked", "bare-lf", "obs-fold", "space-before-colon", "nul-in-value",
        "signed-length", "two-hosts"])
def test_ambiguous_requests_get_400_and_never_reach_the_upstream(proxied, raw):
    gw = proxied.gw
    with gw.raw() as conn:
        conn.send(raw)
        response = conn.read_response()
        assert response.status == 400
        assert response.body == b"Bad Request"
        assert conn.is_closed_by_peer(), "after a protocol error the connection cannot be trusted"
    assert "DPE" in flags(gw.log_entry(lambda e: e.get("response_code") == 400))
    assert proxied.up.requests == []
    assert gw.get("/still-serving").status_code == 200


def test_transfer_codings_other_than_chunked_get_501(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        conn.send(b"POST /gzip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
        response = conn.read_response()
    assert response.status == 501
    entry = gw.log_entry(lambda e: e.get("response_code") == 501)
    assert entry["response_code_details"] == "http1.invalid_transfer_encoding"
    assert proxied.up.requests == []


def test_upstream_that_does_not_speak_http_gets_502_upe(proxied):
    gw = proxied.gw
    response = gw.get("/garbage?garbage=1")
    assert response.status_code == 502
    assert response.text.endswith("reset reason: protocol error")
    entry = gw.log_for_path("/garbage?garbage=1")
    assert flags(entry) == {"UPE"}
    assert entry["response_code_details"] == "upstream_reset_before_response_started{protocol_error}"


def test_response_ended_by_upstream_close_reaches_http11_client_chunked_on_a_kept_connection(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        response = conn.request("GET", "/unframed?bytes=300000&unframed=1", hash_body=True)
        assert response.status == 200
        assert response.complete
        assert response.header("transfer-encoding") == "chunked"
        assert response.header("content-length") is None
        assert response.body_sha256 == pattern.sha256(300000)
        assert conn.request("GET", "/after").status == 200, "the client connection stays usable"


def test_http10_client_gets_a_chunked_upstream_body_delimited_by_close(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        conn.send(b"GET /old?bytes=70000&chunked=1 HTTP/1.0\r\nHost: gatehouse.test\r\n\r\n")
        response = conn.read_response(hash_body=True)
        assert response.status == 200
        assert response.version == "HTTP/1.1"
        assert response.header("transfer-encoding") is None, "HTTP/1.0 has no chunked coding"
        assert response.body_sha256 == pattern.sha256(70000)
        assert conn.is_closed_by_peer()


def test_upstream_trailers_reach_the_client(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        response = conn.request("GET", "/trailers?bytes=1000&chunked=1&trailer=x-checksum:abc&trailer=grpc-status:0")
    assert response.status == 200
    assert response.body_length == 1000
    assert ("x-checksum", "abc") in response.trailers
    assert ("grpc-status", "0") in response.trailers


def test_request_trailers_reach_the_upstream_and_chunks_are_reframed(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        conn.send(b"POST /upload HTTP/1.1\r\nHost: gatehouse.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5;name=ext\r\nhello\r\n6\r\n world\r\n0\r\nx-digest: 42\r\n\r\n")
        response = conn.read_response()
    assert response.status == 200
    echo = response.json()
    assert echo["body"] == "hello world"
    request = proxied.up.requests[-1]
    assert request.header("transfer-encoding") == "chunked"
    assert request.trailers == [("x-digest", "42")]


def test_pipelined_requests_after_a_body_are_answered_in_order(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        conn.send(b"POST /one HTTP/1.1\r\nHost: gatehouse.test\r\nContent-Length: 3\r\n\r\nabc"
                  b"GET /two HTTP/1.1\r\nHost: gatehouse.test\r\n\r\n"
                  b"\r\nGET /three HTTP/1.1\r\nHost: gatehouse.test\r\n\r\n")
        paths = [conn.read_response().json()["path"] for _ in range(3)]
    assert paths == ["/one", "/two", "/three"]
