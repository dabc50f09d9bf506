"""VirtualService ``retries`` as Istio runs them: the default policy when a route writes none (two retries
on connect-failure, refused-stream, unavailable, cancelled and 503, to another endpoint), ``attempts: 0``
turning retries off, ``retryOn`` and ``perTryTimeout``; the request body replayed when it was small
enough to keep; URX when retries run out, UO when ``maxRetries`` refuses one; per-cluster counters."""
from __future__ import annotations

import hashlib
import threading

from harness import config as cfg
from harness.admin import admin_get
from harness.checks import BODY_UC
from harness.gateway import free_port
from harness.h2upstream import ScriptedH2Upstream
from harness.upstream import echo_of


def retried_backend(gateway, endpoints, retries=None, policy=None, limits=None):
    """backend.test over ``endpoints``; ``retries`` None leaves Istio's default policy."""
    route = cfg.route() if retries is None else cfg.route(retries=retries)
    admin = free_port()
    docs = [cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(e) for e in endpoints]),
            cfg.virtual_service("main", [route])]
    if policy:
        docs.append(cfg.resource("DestinationRule", "backend", {"host": cfg.BACKEND_HOST, "trafficPolicy": policy}))
    gw = gateway(docs, bootstrap={"admin": {"address": "127.0.0.1", "port": admin}}, limits=limits)
    gw.admin = admin
    return gw


def counter(gw, stat):
    _, metrics = admin_get(gw.admin, "/stats/prometheus")
    prefix = f'envoy_cluster_{stat}{{cluster_name="{cfg.cluster_name()}"}} '
    return int(next(line[len(prefix):] for line in metrics.splitlines() if line.startswith(prefix)))


def test_by_default_a_503_is_retried_and_the_client_gets_the_retrys_answer(gateway, upstream):
    flaky = upstream("flaky", status="503", first=1)
    gw = retried_backend(gateway, [flaky])
    response = gw.get("/flaky")
    assert response.status_code == 200 and echo_of(response).upstream == "flaky"
    assert len(flaky.requests) == 2
    entry = gw.log_for_path("/flaky")
    assert entry["response_flags"] == "-" and entry["response_code_details"] == "via_upstream"
    assert counter(gw, "upstream_rq_retry") == 1 and counter(gw, "upstream_rq_retry_success") == 1


def test_by_default_a_500_is_the_applications_answer_and_is_not_retried(gateway, upstream):
    failing = upstream("failing", status="500")
    gw = retried_backend(gateway, [failing])
    assert gw.get("/500").status_code == 500
    assert len(failing.requests) == 1
    assert gw.log_for_path("/500")["response_flags"] == "-"


def test_when_retries_run_out_the_last_503_is_relayed_with_urx(gateway, upstream):
    down = upstream("down", status="503", body="still down")
    gw = retried_backend(gateway, [down])
    response = gw.get("/down")
    assert response.status_code == 503 and response.text == "still down"
    assert len(down.requests) == 3, "the first try and Istio's two retries"
    entry = gw.log_for_path("/down")
    assert entry["response_flags"] == "URX" and entry["response_code_details"] == "via_upstream"
    assert counter(gw, "upstream_rq_retry_limit_exceeded") == 1


def test_attempts_zero_turns_retries_off(gateway, upstream):
    down = upstream("down", status="503")
    gw = retried_backend(gateway, [down], retries={"attempts": 0})
    assert gw.get("/once").status_code == 503
    assert len(down.requests) == 1
    assert gw.log_for_path("/once")["response_flags"] == "-"


def test_retry_on_5xx_with_more_attempts_retries_any_server_error(gateway, upstream):
    flaky = upstream("flaky", status="500", first=3)
    gw = retried_backend(gateway, [flaky], retries={"attempts": 3, "retryOn": "5xx"})
    assert gw.get("/5xx").status_code == 200
    assert len(flaky.requests) == 4


def test_a_bare_status_code_in_retry_on_retries_that_status(gateway, upstream):
    limited = upstream("limited", status="429", first=1)
    gw = retried_backend(gateway, [limited], retries={"attempts": 1, "retryOn": "429"})
    assert gw.get("/429").status_code == 200
    assert len(limited.requests) == 2


def test_a_connect_failure_is_retried_on_another_endpoint(gateway, upstream):
    dead = free_port()  # nothing listens there
    alive = upstream("alive")
    gw = retried_backend(gateway, [dead, alive], policy={"loadBalancer": {"simple": "ROUND_ROBIN"}})
    with gw.client() as client:
        answers = [client.get(f"/cf{index}") for index in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    assert {echo_of(a).upstream for a in answers} == {"alive"}
    for index in range(4):
        assert gw.log_for_path(f"/cf{index}")["upstream_host"] == alive.address


def test_a_request_body_is_sent_again_on_the_retry(gateway, upstream):
    # The first try is read whole and the connection closed without an answer: a reset.
    closing = upstream("closing", close="before_headers", first=1)
    gw = retried_backend(gateway, [closing], retries={"attempts": 2, "retryOn": "reset"})
    body = bytes(range(256)) * 40  # 10 KiB, under the 32 KiB kept for retries
    response = gw.request("POST", "/replay", content=body)
    assert response.status_code == 200
    echo = echo_of(response)
    assert echo["body_length"] == len(body) and echo["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert [r.body_length for r in closing.requests] == [len(body), len(body)]


def test_a_body_longer_than_the_retry_buffer_is_not_retried(gateway, upstream):
    closing = upstream("closing", close="before_headers", first=1)
    gw = retried_backend(gateway, [closing], retries={"attempts": 2, "retryOn": "reset"},
                         limits={"retryBufferBytes": 1024})
    response = gw.request("POST", "/too-long", content=b"x" * 10_000)
    assert response.status_code == 503 and response.text == BODY_UC
    assert len(closing.requests) == 1
    assert gw.log_for_path("/too-long")["response_flags"] == "UC", "no retry was possible: no URX"


def test_a_per_try_timeout_retries_a_slow_try(gateway, upstream):
    slow_once = upstream("slow-once", sleep="3", first=1)
    gw = retried_backend(gateway, [slow_once], retries={"attempts": 2, "perTryTimeout": "300ms", "retryOn": "reset"})
    response = gw.get("/slow-once")
    assert response.status_code == 200
    assert len(slow_once.requests) == 2
    assert gw.log_for_path("/slow-once")["response_flags"] == "-"
    assert counter(gw, "upstream_rq_per_try_timeout") == 1


def test_per_try_timeouts_that_run_out_are_504_ut_urx(gateway, upstream):
    slow = upstream("slow", sleep="3")
    gw = retried_backend(gateway, [slow], retries={"attempts": 1, "perTryTimeout": "200ms", "retryOn": "gateway-error"})
    response = gw.get("/slow")
    assert response.status_code == 504 and response.text == "upstream request timeout"
    entry = gw.log_for_path("/slow")
    assert entry["response_flags"] == "UT,URX" and entry["response_code_details"] == "upstream_per_try_timeout"
    assert len(slow.requests) == 2


def test_a_consistent_hash_keeps_the_retry_on_the_same_endpoint(gateway, upstream):
    # Each answers its first request 503: a retry that moved would find the other endpoint's first 503.
    one = upstream("one", status="503", first=1)
    two = upstream("two", status="503", first=1)
    gw = retried_backend(gateway, [one, two], policy={"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}})
    response = gw.get("/hashed", headers={"x-user": "alice"})
    assert response.status_code == 200
    assert sorted([len(one.requests), len(two.requests)]) == [0, 2]


def test_max_retries_refuses_a_retry_while_another_is_under_way_uo(gateway, upstream):
    down = upstream("down", status="503")
    gw = retried_backend(gateway, [down], retries={"attempts": 1, "retryOn": "503"},
                         policy={"connectionPool": {"http": {"maxRetries": 1}}})
    result = {}
    thread = threading.Thread(target=lambda: result.update(slow=gw.get("/first?sleep=2", timeout=30)))
    thread.start()
    # The first request's retry is under way (its second try is sleeping) when the second one fails.
    down.wait_for_requests(2, timeout=10)
    refused = gw.get("/second")
    thread.join(timeout=30)
    assert refused.status_code == 503
    assert gw.log_for_path("/second")["response_flags"] == "UO"
    assert result["slow"].status_code == 503
    assert gw.log_for_path("/first?sleep=2")["response_flags"] == "URX"
    assert [r.path for r in down.requests] == ["/first", "/first", "/second"]
    assert counter(gw, "upstream_rq_retry_overflow") == 1


def h2_backend(gateway, origin):
    entry = cfg.service_entry("h2.test", [cfg.endpoint(origin.port)], protocol="HTTP2")
    return gateway([entry, cfg.virtual_service("main", [cfg.route(cfg.destination("h2.test"))])])


def test_by_default_a_refused_http2_stream_is_retried(gateway):
    origin = ScriptedH2Upstream(lambda request: None if len(origin.requests) == 1 else [(":status", "200")])
    try:
        gw = h2_backend(gateway, origin)
        response = gw.get("/refused-once")
        assert response.status_code == 200
        assert len(origin.requests) == 2
        assert gw.log_for_path("/refused-once")["response_flags"] == "-"
    finally:
        origin.stop()


def test_by_default_grpc_unavailable_is_retried(gateway):
    def respond(request):
        status = "14" if len(origin.requests) == 1 else "0"
        return [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", status)]
    origin = ScriptedH2Upstream(respond)
    try:
        gw = h2_backend(gateway, origin)
        response = gw.get("/grpc-unavailable-once")
        assert response.status_code == 200 and response.headers["grpc-status"] == "0"
        assert len(origin.requests) == 2
    finally:
        origin.stop()


def test_grpc_internal_is_not_retried_by_default(gateway):
    origin = ScriptedH2Upstream(lambda request: [(":status", "200"), ("content-type", "application/grpc"),
                                                 ("grpc-status", "13")])
    try:
        gw = h2_backend(gateway, origin)
        assert gw.get("/grpc-internal").headers["grpc-status"] == "13"
        assert len(origin.requests) == 1
    finally:
        origin.stop()
