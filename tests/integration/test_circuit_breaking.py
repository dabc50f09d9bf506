"""DestinationRule ``connectionPool`` limits as Envoy's circuit breakers: a request over
``http2MaxRequests`` in flight, or over ``http1MaxPendingRequests`` waiting for an upstream
connection, is refused at once with 503 ``UO``; a request over ``tcp.maxConnections`` waits for a
connection to come free; the limits hold across event loops."""
from __future__ import annotations

import json
import socket
import threading
import time

from harness import config as cfg
from harness.admin import admin_get
from harness.gateway import free_port
from harness.h2client import H2Client
from harness.upstream import echo_of

OVERFLOW_BODY = "upstream connect error or disconnect/reset before headers. reset reason: overflow"


def with_pool_limits(gateway, endpoint, http, tcp=None, retries=None):
    pool = {"http": http}
    if tcp:
        pool["tcp"] = tcp
    route = cfg.route() if retries is None else cfg.route(retries=retries)
    return gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(endpoint)]),
                    cfg.resource("DestinationRule", "backend",
                                 {"host": cfg.BACKEND_HOST, "trafficPolicy": {"connectionPool": pool}}),
                    cfg.virtual_service("main", [route])])


def in_background(gw, path):
    """GET ``path`` on its own connection in a thread; returns (thread, result dict)."""
    result = {}

    def run():
        result["response"] = gw.get(path, timeout=30)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_requests_over_http2_max_requests_overflow(gateway, upstream):
    slow = upstream("slow")
    gw = with_pool_limits(gateway, slow, {"http2MaxRequests": 1})
    thread, first = in_background(gw, "/first?sleep=2")
    slow.wait_for_active(1)
    refused = gw.get("/second")
    assert refused.status_code == 503 and refused.text == OVERFLOW_BODY
    entry = gw.log_for_path("/second")
    assert entry["response_flags"] == "UO"
    assert entry["response_code_details"] == "upstream_reset_before_response_started{overflow}"
    thread.join(timeout=30)
    assert first["response"].status_code == 200
    # The slot came back with the first request's end.
    assert echo_of(gw.get("/third")).upstream == "slow"
    assert len(slow.requests) == 2


def syn_sent_to(port: int) -> int:
    """Connections in SYN-SENT to 127.0.0.1:``port`` (from /proc, so no tool is needed)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            remote, state = fields[2], fields[3]
            if state == "02" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def make_tarpit():
    """A listener whose accept queue is full: the kernel drops further SYNs, so a connect to it hangs
    until the gateway's connect timeout. Returns (listener, fillers, port)."""
    tarpit = socket.socket()
    tarpit.bind(("127.0.0.1", 0))
    tarpit.listen(0)
    port = tarpit.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    return tarpit, fillers, port


def assert_a_second_request_overflows_while_the_first_connects(gw, port):
    """With ``http1MaxPendingRequests: 1``: a request whose connect hangs on the tarpit at ``port`` is
    pending, a second one overflows (UO), and the first ends when its connect times out (UF)."""
    already = syn_sent_to(port)
    thread, first = in_background(gw, "/pending")
    deadline = time.monotonic() + 5
    while syn_sent_to(port) <= already:
        assert time.monotonic() < deadline, "the gateway never started connecting"
        time.sleep(0.02)
    refused = gw.get("/over")
    assert refused.status_code == 503 and refused.text == OVERFLOW_BODY
    assert gw.log_for_path("/over")["response_flags"] == "UO"
    thread.join(timeout=30)
    assert first["response"].status_code == 503
    assert gw.log_for_path("/pending")["response_flags"] == "UF"


def test_requests_waiting_for_a_connection_over_http1_max_pending_overflow(gateway):
    tarpit, fillers, port = make_tarpit()
    try:
        # Retries off: the pending request's one connect timing out is what ends it.
        gw = with_pool_limits(gateway, port, {"http1MaxPendingRequests": 1}, tcp={"connectTimeout": "3s"},
                              retries={"attempts": 0})
        assert_a_second_request_overflows_while_the_first_connects(gw, port)
    finally:
        for filler in fillers:
            filler.close()
        tarpit.close()


def test_requests_waiting_for_a_new_http2_upstream_connection_count_as_pending(gateway):
    # HTTP/2 requests multiplex once the connection is up; while it is being made they are pending.
    tarpit, fillers, port = make_tarpit()
    try:
        gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(port)], protocol="HTTP2"),
                      cfg.resource("DestinationRule", "backend", {"host": cfg.BACKEND_HOST, "trafficPolicy": {
                          "connectionPool": {"tcp": {"connectTimeout": "3s"}, "http": {"http1MaxPendingRequests": 1}}}}),
                      cfg.virtual_service("main", [cfg.route(retries={"attempts": 0})])])
        assert_a_second_request_overflows_while_the_first_connects(gw, port)
    finally:
        for filler in fillers:
            filler.close()
        tarpit.close()


def test_max_connection_duration_retires_an_upstream_connection_once_it_is_that_old(gateway, upstream):
    up = upstream("aged")
    gw = with_pool_limits(gateway, up, {}, tcp={"maxConnectionDuration": "500ms"})
    with gw.client() as client:
        young = [echo_of(client.get("/young"))["connection"] for _ in range(3)]
        assert young == [0, 0, 0], "a young connection is reused"
        time.sleep(0.6)  # the cap is a duration: it has to pass
        aged = echo_of(client.get("/aged"))["connection"]
    assert aged == 1, "a connection past maxConnectionDuration takes no new request"
    assert up.accepted == 2


def gauge(metrics, name):
    prefix = f'envoy_cluster_{name}{{cluster_name="{cfg.cluster_name()}"}} '
    return int(next(line[len(prefix):] for line in metrics.splitlines() if line.startswith(prefix)))


def test_requests_in_flight_and_waiting_are_shown_per_cluster_and_endpoint(gateway, upstream):
    slow = upstream("slow", sleep="3")
    tarpit, fillers, tarpit_port = make_tarpit()
    admin = free_port()
    try:
        gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(slow)]),
                      cfg.service_entry("pending.test", [cfg.endpoint(tarpit_port)], name="pending"),
                      cfg.resource("DestinationRule", "pending", {"host": "pending.test", "trafficPolicy": {
                          "connectionPool": {"tcp": {"connectTimeout": "5s"}}}}),
                      cfg.virtual_service("main", [cfg.route(cfg.destination("pending.test"), match={"uri": {"prefix": "/pending"}},
                                                             retries={"attempts": 0}),
                                                   cfg.route()])],
                     bootstrap={"admin": {"address": "127.0.0.1", "port": admin}})
        threads = [in_background(gw, f"/slow{index}")[0] for index in range(3)]
        # The fillers' own connects may be in SYN-SENT too: the gateway's is one more.
        already = syn_sent_to(tarpit_port)
        waiting, _ = in_background(gw, "/pending")
        slow.wait_for_active(3)
        deadline = time.monotonic() + 5
        while syn_sent_to(tarpit_port) <= already:
            assert time.monotonic() < deadline, "the gateway never started connecting"
            time.sleep(0.02)
        _, clusters = admin_get(admin, "/clusters")
        assert f"{cfg.cluster_name()}::127.0.0.1:{slow.port}::rq_active::3" in clusters
        assert f"{cfg.cluster_name('pending.test')}::rq_pending_active::1" in clusters
        _, metrics = admin_get(admin, "/stats/prometheus")
        assert gauge(metrics, "upstream_rq_active") == 3
        assert f'envoy_cluster_upstream_rq_pending_active{{cluster_name="{cfg.cluster_name("pending.test")}"}} 1' in metrics
        # The JSON form carries the same counts.
        _, text = admin_get(admin, "/clusters?format=json")
        statuses = {status["name"]: status for status in json.loads(text)["cluster_statuses"]}
        assert [endpoint["rq_active"] for endpoint in statuses[cfg.cluster_name()]["endpoints"]] == [3]
        assert statuses[cfg.cluster_name("pending.test")]["stats"]["rq_pending_active"] == 1
        for thread in threads + [waiting]:
            thread.join(timeout=30)
        _, after = admin_get(admin, "/stats/prometheus")
        assert gauge(after, "upstream_rq_active") == 0 and gauge(after, "upstream_rq_pending_active") == 0
    finally:
        for filler in fillers:
            filler.close()
        tarpit.close()


def test_requests_over_max_connections_wait_for_the_connection_to_come_free(gateway, upstream):
    slow = upstream("slow", sleep="0.3")
    admin = free_port()
    gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(slow)]),
                  cfg.resource("DestinationRule", "backend", {"host": cfg.BACKEND_HOST, "trafficPolicy": {
                      "connectionPool": {"tcp": {"maxConnections": 1}}}}),
                  cfg.virtual_service("main", [cfg.route()])],
                 bootstrap={"admin": {"address": "127.0.0.1", "port": admin}})
    # Streams of one h2 connection share one event loop, so the limit is exact here (a loop with no
    # connection to the endpoint may make one over the limit, as an Envoy worker may).
    with H2Client(gw.port, timeout=30) as client:
        responses = client.wait(*[client.request("GET", f"/queued{index}") for index in range(4)])
    assert [response.status for response in responses] == [200] * 4
    assert slow.accepted == 1, "the three over the limit waited for the one connection, not for new ones"
    assert [request.connection for request in slow.requests] == [0] * 4
    _, metrics = admin_get(admin, "/stats/prometheus")
    assert gauge(metrics, "upstream_cx_overflow") == 3
    _, clusters = admin_get(admin, "/clusters")
    assert f"{cfg.cluster_name()}::default_priority::max_connections::1" in clusters
    assert f"{cfg.cluster_name()}::cx_active::1" in clusters, "the idle connection still counts"


def test_requests_waiting_for_a_connection_count_against_http1_max_pending(gateway, upstream):
    slow = upstream("slow")
    gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(slow)]),
                  cfg.resource("DestinationRule", "backend", {"host": cfg.BACKEND_HOST, "trafficPolicy": {
                      "connectionPool": {"tcp": {"maxConnections": 1}, "http": {"http1MaxPendingRequests": 2}}}}),
                  cfg.virtual_service("main", [cfg.route()])])
    with H2Client(gw.port, timeout=30) as client:
        first = client.request("GET", "/holding?sleep=1")
        slow.wait_for_active(1)
        waiting = [client.request("GET", f"/waiting{index}") for index in range(2)]
        over = client.request("GET", "/over")
        responses = client.wait(first, *waiting, over)
    assert [response.status for response in responses[:3]] == [200, 200, 200]
    assert responses[3].status == 503 and responses[3].body.decode() == OVERFLOW_BODY
    assert gw.log_for_path("/over")["response_flags"] == "UO"
    assert slow.accepted == 1


def test_a_waiting_request_that_times_out_gives_up_its_place(gateway, upstream):
    slow = upstream("slow")
    gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(slow)]),
                  cfg.resource("DestinationRule", "backend", {"host": cfg.BACKEND_HOST, "trafficPolicy": {
                      "connectionPool": {"tcp": {"maxConnections": 1}, "http": {"http1MaxPendingRequests": 1}}}}),
                  cfg.virtual_service("main", [cfg.route(match={"uri": {"prefix": "/short"}}, timeout="300ms"),
                                               cfg.route()])])
    with H2Client(gw.port, timeout=30) as client:
        first = client.request("GET", "/holding?sleep=1.5")
        slow.wait_for_active(1)
        short, = client.wait(client.request("GET", "/short"))
        # Its pending slot came back when it timed out: the next one may wait in its turn.
        after = client.request("GET", "/after")
        held, queued = client.wait(first, after)
    assert short.status == 504
    assert gw.log_for_path("/short")["response_flags"] == "UT"
    assert held.status == 200 and queued.status == 200
    assert slow.accepted == 1
    assert [request.path for request in slow.requests] == ["/holding", "/after"], "the timed-out request never left"


def test_a_tcp_connection_over_max_connections_is_refused(gateway):
    from test_passthrough import EchoServer, stream_gateway
    backend = EchoServer()
    port = free_port()
    dr = cfg.resource("DestinationRule", "echo", {"host": "echo.test", "trafficPolicy": {
        "connectionPool": {"tcp": {"maxConnections": 1}}}})
    gw = stream_gateway(gateway, port, "TCP", backend.port, "tcp", extra=[dr])
    # The harness's readiness probe was a connection too: its slot is free once it is logged.
    gw.log_entry(lambda e: e.get("upstream_cluster") is not None)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as held:
        held.sendall(b"first")
        assert held.recv(100) == b"first"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as refused:
            assert refused.recv(100) == b"", "closed without reaching the upstream"
        entry = gw.log_entry(lambda e: e.get("response_flags") == "UO")
        assert entry["upstream_cluster"] == "outbound|80||echo.test"
        held.sendall(b"still relayed")
        assert held.recv(100) == b"still relayed"
    # The held connection's slot comes back when it closes.
    gw.log_entry(lambda e: (e.get("bytes_received") or 0) > 0)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as again:
        again.sendall(b"again")
        assert again.recv(100) == b"again"
    backend.close()


def test_an_idle_upstream_connection_closes_after_the_idle_timeout_and_frees_its_slot(gateway, upstream):
    up = upstream("idle")
    gw = with_pool_limits(gateway, up, {"idleTimeout": "300ms"}, tcp={"maxConnections": 1})
    with gw.client() as client:
        assert echo_of(client.get("/first")).upstream == "idle"
        up.wait_for_open_connections(1)
        # Unused for 300 ms, the gateway closes it (Envoy's upstream idle_timeout).
        up.wait_for_open_connections(0, timeout=5)
        assert echo_of(client.get("/second"))["connection"] == 1, "a new connection, the old slot being free"
    assert up.accepted == 2
