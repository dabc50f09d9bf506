"""Frame-level HTTP/2 conformance against the gateway (RFC 9113 §5–§8), written with Python ``h2`` with
its own outbound checks turned off so that it can send what a broken or hostile client sends: malformed
headers are stream errors, protocol violations are connection errors with GOAWAY, flow control and
SETTINGS are honoured, and the gateway keeps serving afterwards."""
from __future__ import annotations

import h2.errors
import h2.events
import h2.settings
import pytest

from harness.h2raw import RawH2


def request(path: str = "/", method: str = "GET", extra=()) -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "http"), (":authority", "gatehouse.test"), (":path", path), *extra]


@pytest.fixture
def raw_h2(proxied):
    clients = []

    def make(**kwargs) -> RawH2:
        client = RawH2(proxied.gw.port, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def still_serving(proxied) -> None:
    client = RawH2(proxied.gw.port)
    stream = client.headers(request("/still-serving"))
    client.pump(lambda events: client.ended(stream))
    response = client.response_of(stream)
    client.close()
    assert response is not None and dict(response.headers)[":status"] == "200"


@pytest.mark.parametrize("fields", [
    request(extra=[("X-Upper", "1")]),                                   # §8.2.1 uppercase name
    request(extra=[("connection", "keep-alive")]),                       # §8.2.2 connection-specific
    request(extra=[("te", "gzip")]),                                     # §8.2.2 te other than trailers
    [(":method", "GET"), (":scheme", "http"), (":authority", "a")],      # §8.3.1 :path missing
    [("x-first", "1"), *request()],                                      # §8.3 pseudo after regular
    request(extra=[(":status", "200")]),                                 # §8.3.2 response pseudo in request
    request(extra=[(":method", "POST")]),                                # §8.3 duplicate pseudo-header
], ids=["uppercase", "connection", "te-gzip", "no-path", "pseudo-after-regular", "status-in-request",
        "duplicate-method"])
def test_malformed_request_headers_are_a_stream_error(raw_h2, proxied, fields):
    client = raw_h2()
    stream = client.headers(fields)
    client.pump(lambda events: client.reset_of(stream) or client.goaway() or client.response_of(stream))
    reset = client.reset_of(stream)
    assert reset is not None or client.goaway() is not None, client.events
    if reset is not None:
        assert reset.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert proxied.up.requests == [], "a malformed request never reaches the upstream"
    still_serving(proxied)


def test_content_length_that_does_not_match_the_data_is_a_stream_error(raw_h2, proxied):
    client = raw_h2()
    stream = client.headers(request("/cl", "POST", [("content-length", "10")]), end=False)
    client.conn.send_data(stream, b"12345", end_stream=True)
    client.flush()
    client.pump(lambda events: client.reset_of(stream) or client.goaway())
    assert client.reset_of(stream) is not None or client.goaway() is not None
    still_serving(proxied)


def test_even_stream_ids_from_a_client_are_a_connection_error(raw_h2, proxied):
    client = raw_h2()
    # HEADERS on stream 2, END_HEADERS|END_STREAM, with a tiny valid HPACK block (:method GET, :path /).
    client.send_raw(b"\x00\x00\x02\x01\x05\x00\x00\x00\x02" + b"\x82\x84")
    client.pump(lambda events: client.goaway() or "closed" in events)
    goaway = client.goaway()
    assert goaway is not None or "closed" in client.events
    if goaway is not None:
        assert goaway.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    still_serving(proxied)


def test_zero_window_update_on_the_connection_is_a_connection_error(raw_h2, proxied):
    client = raw_h2()
    client.send_raw(b"\x00\x00\x04\x08\x00\x00\x00\x00\x00" + b"\x00\x00\x00\x00")
    client.pump(lambda events: client.goaway() or "closed" in events)
    goaway = client.goaway()
    assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    still_serving(proxied)


def test_invalid_initial_window_size_is_a_flow_control_error(raw_h2, proxied):
    client = raw_h2()
    # SETTINGS_INITIAL_WINDOW_SIZE (0x4) = 2^31, one above the maximum (§6.5.2).
    client.send_raw(b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + b"\x00\x04\x80\x00\x00\x00")
    client.pump(lambda events: client.goaway() or "closed" in events)
    goaway = client.goaway()
    assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.FLOW_CONTROL_ERROR


def test_settings_are_acknowledged_and_ping_is_answered(raw_h2):
    client = raw_h2()
    client.conn.ping(b"gatehse!")
    client.flush()
    events = client.pump(lambda events: any(isinstance(e, h2.events.PingAckReceived) for e in events)
                         and any(isinstance(e, h2.events.SettingsAcknowledged) for e in events))
    ack = next(e for e in events if isinstance(e, h2.events.PingAckReceived))
    assert ack.ping_data == b"gatehse!"
    remote = next(e for e in events if isinstance(e, h2.events.RemoteSettingsChanged))
    assert remote.changed_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS].new_value == 100


def test_responses_respect_a_small_client_window(raw_h2, proxied):
    """The client advertises a 1000-byte stream window: the gateway must never send more than the window
    allows (h2 raises on a violation) and the 200 KB body still arrives as the window is updated."""
    client = raw_h2(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    client.pump(lambda events: any(isinstance(e, h2.events.SettingsAcknowledged) for e in events))
    stream = client.headers(request("/window?bytes=200000"))
    client.pump(lambda events: client.ended(stream), timeout=10)
    assert client.ended(stream), client.events[-3:]
    received = sum(len(e.data) for e in client.events if isinstance(e, h2.events.DataReceived) and e.stream_id == stream)
    assert received == 200000


def test_data_after_end_stream_is_a_stream_closed_error(raw_h2, proxied):
    client = raw_h2()
    stream = client.headers(request("/closed"))
    # A DATA frame on the stream the client already half-closed (§5.1, §6.1).
    client.send_raw(b"\x00\x00\x03\x00\x00" + stream.to_bytes(4, "big") + b"abc")
    client.pump(lambda events: client.reset_of(stream) or client.goaway() or client.ended(stream))
    client.pump(lambda events: client.reset_of(stream) or client.goaway(), timeout=2)
    error = client.reset_of(stream) or client.goaway()
    assert error is not None
    assert error.error_code == h2.errors.ErrorCodes.STREAM_CLOSED
    still_serving(proxied)


def test_response_header_names_are_lowercase(raw_h2, proxied):
    client = raw_h2()
    stream = client.headers(request("/case?resp_header=X-Mixed-Case:Value"))
    client.pump(lambda events: client.ended(stream))
    names = [name for name, _ in client.response_of(stream).headers]
    assert "x-mixed-case" in names
    assert all(name == name.lower() for name in names)


def test_streams_over_the_concurrent_limit_are_refused_and_the_connection_goes_on(raw_h2, proxied):
    """RFC 9113 §5.1.2: a HEADERS that takes a client over the advertised SETTINGS_MAX_CONCURRENT_STREAMS
    (100) is a stream error. The gateway refuses each excess stream with REFUSED_STREAM (not processed,
    safe to retry), answers the 100 it took, sends no GOAWAY, and serves new streams on the same
    connection once the others are done."""
    client = raw_h2()
    client.pump(lambda events: any(isinstance(e, h2.events.SettingsAcknowledged) for e in events))
    # Behave like a client that ignores the server's limit of 100.
    client.conn.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 1000
    client.conn.remote_settings.acknowledge()
    streams = [client.headers(request(f"/slow{i}?sleep=1")) for i in range(105)]
    client.pump(lambda events: all(client.ended(s) or client.reset_of(s) for s in streams), timeout=15)
    refused = [s for s in streams if client.reset_of(s)]
    assert [client.reset_of(s).error_code for s in refused] == [h2.errors.ErrorCodes.REFUSED_STREAM] * 5
    assert refused == streams[100:], "the streams over the limit, and only those, are refused"
    answered = [s for s in streams if client.ended(s)]
    assert len(answered) == 100
    assert all(dict(client.response_of(s).headers)[":status"] == "200" for s in answered)
    assert client.goaway() is None
    again = client.headers(request("/after-refusals"))
    client.pump(lambda events: client.ended(again))
    assert dict(client.response_of(again).headers)[":status"] == "200"
    still_serving(proxied)


def test_a_client_that_keeps_opening_streams_past_the_limit_loses_the_connection(raw_h2, proxied):
    """Refusing a stream costs the gateway almost nothing, but a client that makes it refuse hundreds is
    probing for a reset flood: after 200 refusals in 30 s the connection gets GOAWAY ENHANCE_YOUR_CALM.
    Other connections are unaffected."""
    client = raw_h2()
    client.pump(lambda events: any(isinstance(e, h2.events.SettingsAcknowledged) for e in events))
    client.conn.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 10000
    client.conn.remote_settings.acknowledge()
    for i in range(100):
        client.headers(request(f"/held{i}?sleep=5"))
    for i in range(250):
        client.headers(request(f"/over{i}"))
    client.pump(lambda events: client.goaway() or "closed" in events, timeout=10)
    goaway = client.goaway()
    assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, client.events[-3:]
    refused = [e for e in client.events if isinstance(e, h2.events.StreamReset)
               and e.error_code == h2.errors.ErrorCodes.REFUSED_STREAM]
    assert len(refused) == 200
    still_serving(proxied)