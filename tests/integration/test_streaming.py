"""Bodies are streamed both ways (Content-Length and chunked), never buffered whole.

The 1 GiB tests are marked ``slow`` but run by default; GATEHOUSE_STREAM_MB scales them (default 1024) and
GATEHOUSE_RSS_SLACK_MB sets the allowed RSS growth over the warmed-up baseline (default 100).
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import time

import pytest

from harness import pattern
from harness.gateway import RssSampler
from harness.rawhttp import format_request
from harness.upstream import echo_of

MiB = 1 << 20
BIG = int(os.environ.get("GATEHOUSE_STREAM_MB", "1024")) * MiB
RSS_SLACK_KB = int(os.environ.get("GATEHOUSE_RSS_SLACK_MB", "100")) * 1024
SMALL = 5 * MiB + 123


def send_chunked(conn, total: int, chunk_size: int = 64 * 1024) -> None:
    for chunk in pattern.chunks(total, chunk_size):
        conn.send(b"%x\r\n" % len(chunk) + bytes(chunk) + b"\r\n")
    conn.send(b"0\r\n\r\n")


# ------------------------------------------------------------------------------------- small bodies


def test_content_length_upload(proxied):
    with proxied.gw.raw() as conn:
        conn.send(format_request("PUT", "/up-cl", [("Content-Length", str(SMALL))]))
        conn.send_stream(pattern.chunks(SMALL))
        echo = echo_of(conn.read_response())
    assert echo["body_length"] == SMALL
    assert echo["body_sha256"] == pattern.sha256(SMALL)


def test_chunked_upload(proxied):
    with proxied.gw.raw() as conn:
        conn.send(format_request("POST", "/up-chunked", [("Transfer-Encoding", "chunked")]))
        send_chunked(conn, SMALL)
        echo = echo_of(conn.read_response())
    assert echo["body_length"] == SMALL
    assert echo["body_sha256"] == pattern.sha256(SMALL)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_download(proxied, chunked):
    with proxied.gw.raw() as conn:
        r = conn.request("GET", f"/down?bytes={SMALL}&chunked={int(chunked)}", keep_body=False, hash_body=True)
    assert r.status == 200 and r.complete
    assert r.body_length == SMALL
    assert r.body_sha256 == pattern.sha256(SMALL)


def test_small_bodies_on_one_connection(proxied):
    """Several bodies of different framings on one keep-alive connection keep their boundaries."""
    with proxied.gw.raw() as conn:
        for i, size in enumerate([0, 1, 1000, 70_000]):
            body = pattern.data(size)
            r = conn.request("POST", f"/small/{i}", body=body)
            echo = echo_of(r)
            assert echo["body_length"] == size
            assert echo["body_sha256"] == pattern.sha256(size)
            r = conn.request("GET", f"/small-down/{i}?bytes={size}&chunked={i % 2}", hash_body=True)
            assert r.body_length == size and r.body_sha256 == pattern.sha256(size)


def test_response_is_streamed_not_buffered(proxied):
    """The upstream sends its first 64 KiB then pauses 1.5 s: the client must get bytes before the pause ends."""
    gw = proxied.gw
    first_byte_at: list[float] = []
    with gw.raw() as conn:
        started = time.monotonic()
        r = conn.request("GET", f"/drip?bytes={2 * MiB}&chunked=1&chunk=65536&pause=1.5", keep_body=False,
                         on_chunk=lambda data: first_byte_at.append(time.monotonic()) if not first_byte_at else None)
        total = time.monotonic() - started
    assert r.status == 200 and r.body_length == 2 * MiB
    assert total >= 1.4
    assert first_byte_at and first_byte_at[0] - started < 1.0, \
        f"first body byte after {first_byte_at[0] - started:.2f}s: the response was buffered"


def test_request_is_streamed_not_buffered(proxied):
    """The upstream must see the request before the client has sent the whole body."""
    gw, up = proxied.gw, proxied.up
    total = 4 * MiB
    with gw.raw() as conn:
        conn.send(format_request("PUT", "/trickle", [("Content-Length", str(total))]))
        conn.send(pattern.data(256 * 1024))
        up.wait_for_heads(1, timeout=3)  # fails if the gateway waits for the whole body
        conn.send(pattern.data(total - 256 * 1024, offset=256 * 1024))
        echo = echo_of(conn.read_response())
    assert echo["body_sha256"] == pattern.sha256(total)


# ------------------------------------------------------------------------------------------- 1 GiB


def _baseline(gw) -> int:
    # Warm up: one request of each kind, so pools and buffers exist before the baseline is taken.
    with gw.raw() as conn:
        conn.request("GET", "/warm?bytes=1048576", keep_body=False)
        conn.request("PUT", "/warm", body=pattern.data(MiB))
    time.sleep(0.2)
    return gw.rss_kb()


def _report(what: str, size: int, seconds: float, baseline: int, peak: int) -> None:
    print(f"\n{what}: {size / MiB:.0f} MiB in {seconds:.1f}s ({size / MiB / max(seconds, 1e-6):.0f} MiB/s); "
          f"RSS baseline {baseline / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB")


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_big_upload_constant_memory(proxied, chunked):
    gw = proxied.gw
    size = BIG if not chunked else BIG // 4
    baseline = _baseline(gw)
    with gw.raw(timeout=120) as conn, RssSampler(gw) as rss:
        started = time.monotonic()
        if chunked:
            conn.send(format_request("PUT", "/big-up", [("Transfer-Encoding", "chunked")]))
            for chunk in pattern.chunks(size, MiB):
                conn.send(b"%x\r\n" % len(chunk))
                conn.send(chunk)
                conn.send(b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            conn.send(format_request("PUT", "/big-up", [("Content-Length", str(size))]))
            conn.send_stream(pattern.chunks(size, MiB))
        response = conn.read_response()
        elapsed = time.monotonic() - started
    _report("upload" + (" (chunked)" if chunked else ""), size, elapsed, baseline, rss.max_kb)
    echo = echo_of(response)
    assert echo["body_length"] == size
    assert echo["body_sha256"] == pattern.sha256(size)
    assert rss.max_kb - baseline < RSS_SLACK_KB, \
        f"RSS grew by {(rss.max_kb - baseline) / 1024:.0f} MiB while streaming an upload"


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_big_download_constant_memory(proxied, chunked):
    gw = proxied.gw
    size = BIG if not chunked else BIG // 4
    expected = pattern.sha256(size)  # computed before the transfer, so it does not slow the reader
    baseline = _baseline(gw)
    with gw.raw(timeout=120) as conn, RssSampler(gw) as rss:
        started = time.monotonic()
        r = conn.request("GET", f"/big-down?bytes={size}&chunked={int(chunked)}&chunk={MiB}",
                         keep_body=False, hash_body=True)
        elapsed = time.monotonic() - started
    _report("download" + (" (chunked)" if chunked else ""), size, elapsed, baseline, rss.max_kb)
    assert r.status == 200 and r.complete
    assert r.body_length == size
    assert r.body_sha256 == expected
    assert rss.max_kb - baseline < RSS_SLACK_KB, \
        f"RSS grew by {(rss.max_kb - baseline) / 1024:.0f} MiB while streaming a download"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_slow_reader_does_not_make_the_gateway_buffer(proxied):
    """A client that stops reading: the gateway must apply back-pressure to the upstream, not buffer."""
    gw = proxied.gw
    size = 512 * MiB
    baseline = _baseline(gw)
    with gw.raw(timeout=60) as conn, RssSampler(gw) as rss:
        conn.send(format_request("GET", f"/stall?bytes={size}&chunk={MiB}"))
        time.sleep(3)  # read nothing while the upstream tries to push 512 MiB
        stalled_peak = rss.max_kb
        r = conn.read_response(keep_body=False, hash_body=True)
    assert r.body_length == size and r.body_sha256 == pattern.sha256(size)
    assert stalled_peak - baseline < RSS_SLACK_KB, \
        f"RSS grew by {(stalled_peak - baseline) / 1024:.0f} MiB while the client was not reading"


# ------------------------------------------------------------------------------------------- HTTP/2


def _h2_request(path: str, method: str = "GET") -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "http"), (":authority", "gatehouse.test"), (":path", path)]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_http2_slow_reader_does_not_make_the_gateway_buffer(proxied):
    """An HTTP/2 client that opens its windows wide (16 MiB) and then stops reading: flow control does not
    bound what the gateway could queue, so its own send back-pressure must (the stream stops reading its
    upstream), and the whole body still arrives once the client reads again."""
    import h2.events
    import h2.settings
    from harness.h2raw import RawH2

    gw = proxied.gw
    size = 256 * MiB
    expected = pattern.sha256(size)
    baseline = _baseline(gw)
    client = RawH2(gw.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16 * MiB})
    client.conn.increment_flow_control_window(16 * MiB)
    stream = client.headers(_h2_request(f"/stall?bytes={size}&chunk={MiB}"))
    with RssSampler(gw) as rss:
        time.sleep(3)  # read nothing while the upstream tries to push 256 MiB
        stalled_peak = rss.max_kb
        received, digest, ended = 0, hashlib.sha256(), False
        client.sock.settimeout(30)
        while not ended:
            data = client.sock.recv(1 << 20)
            assert data, "the gateway closed the connection"
            for event in client.conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                    received += len(event.data)
                    digest.update(event.data)
                    client.conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                    ended = True
                elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    raise AssertionError(f"the gateway ended the download: {event}")
            client.flush()
    client.close()
    assert received == size and digest.hexdigest() == expected
    assert stalled_peak - baseline < RSS_SLACK_KB, \
        f"RSS grew by {(stalled_peak - baseline) / 1024:.0f} MiB while the HTTP/2 client was not reading"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_http2_upload_follows_the_gateways_windows_with_constant_memory(proxied):
    """An HTTP/2 upload sent exactly as fast as the gateway's receive windows allow: the gateway opens
    them again as its upstream takes the bytes (a stream that never got a WINDOW_UPDATE would stall after
    64 KiB), and the whole body reaches the upstream intact without the gateway buffering it."""
    import h2.events
    from harness.h2raw import RawH2

    gw = proxied.gw
    size = 64 * MiB
    baseline = _baseline(gw)
    client = RawH2(gw.port)
    # Many small writes each waiting for a WINDOW_UPDATE: Nagle would hold each one for a delayed ACK.
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream = client.headers(_h2_request("/h2-up", method="PUT") + [("content-length", str(size))], end=False)
    response_body, status, ended = b"", None, False
    client.sock.settimeout(30)

    def read_events() -> None:
        nonlocal response_body, status, ended
        data = client.sock.recv(1 << 20)
        assert data, "the gateway closed the connection"
        for event in client.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers)[":status"]
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                ended = True
            elif isinstance(event, h2.events.DataReceived):
                response_body += event.data
                client.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                raise AssertionError(f"the gateway ended the upload: {event}")
        client.flush()

    with RssSampler(gw) as rss:
        chunks = pattern.chunks(size, 16384)
        pending = b""
        sent = 0
        while sent < size:
            if not pending:
                pending = next(chunks)
            window = min(client.conn.local_flow_control_window(stream), client.conn.max_outbound_frame_size)
            if window <= 0:
                read_events()
                continue
            piece, pending = pending[:window], pending[window:]
            sent += len(piece)
            client.conn.send_data(stream, bytes(piece), end_stream=sent == size)
            client.flush()
        while not ended:
            read_events()
    client.close()
    assert status == "200", response_body[:300]
    echo = json.loads(response_body)
    assert echo["body_length"] == size
    assert echo["body_sha256"] == pattern.sha256(size)
    assert rss.max_kb - baseline < RSS_SLACK_KB, \
        f"RSS grew by {(rss.max_kb - baseline) / 1024:.0f} MiB while streaming an HTTP/2 upload"
