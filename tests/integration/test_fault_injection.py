"""VirtualService ``fault``: Envoy's fault filter as Istio configures it. An abort answers with the
configured status and "fault filter abort" (flag FI) without reaching the upstream; a delay holds the
request before it leaves (flag DI) and does not count against the route timeout; each applies to its
percentage of requests, and none without one."""
from __future__ import annotations

from harness import config as cfg


def with_fault(gateway, up, fault, **route_fields):
    return gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(up)]),
                    cfg.virtual_service("main", [cfg.route(fault=fault, **route_fields)])])


def test_an_abort_answers_without_reaching_the_upstream(gateway, upstream):
    up = upstream()
    gw = with_fault(gateway, up, {"abort": {"httpStatus": 418, "percentage": {"value": 100}}})
    response = gw.get("/aborted")
    assert response.status_code == 418 and response.text == "fault filter abort"
    entry = gw.log_for_path("/aborted")
    assert entry["response_flags"] == "FI" and entry["response_code_details"] == "fault_filter_abort"
    assert up.requests == []


def test_a_grpc_status_abort_answers_a_plain_request_200_as_envoy_does(gateway, upstream):
    up = upstream()
    gw = with_fault(gateway, up, {"abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 100}}})
    response = gw.get("/grpc-abort")
    assert response.status_code == 200 and response.text == "fault filter abort"
    assert "grpc-status" not in response.headers
    assert gw.log_for_path("/grpc-abort")["response_flags"] == "FI"
    assert up.requests == []


def test_a_delay_holds_the_request_and_is_not_part_of_the_route_timeout(gateway, upstream):
    up = upstream()
    gw = with_fault(gateway, up, {"delay": {"fixedDelay": "400ms", "percentage": {"value": 100}}}, timeout="250ms")
    assert gw.get("/delayed").status_code == 200
    entry = gw.log_for_path("/delayed")
    assert entry["response_flags"] == "DI"
    assert entry["duration"] >= 400, entry


def test_a_percentage_aborts_about_that_share(gateway, upstream):
    up = upstream()
    gw = with_fault(gateway, up, {"abort": {"httpStatus": 503, "percentage": {"value": 25}}})
    with gw.client() as client:
        statuses = [client.get("/share").status_code for _ in range(400)]
    aborted = statuses.count(503)
    # 100 expected; a binomial(400, 0.25) stays within ±45 with overwhelming probability.
    assert 55 <= aborted <= 145, aborted
    assert statuses.count(200) == 400 - aborted == len(up.requests)


def test_without_a_percentage_nothing_is_injected_as_in_istio(gateway, upstream):
    up = upstream()
    gw = with_fault(gateway, up, {"abort": {"httpStatus": 500}})
    assert all(gw.get("/none").status_code == 200 for _ in range(20))
    assert "no percentage: as in Istio, this aborts no request" in gw.stderr_text() + gw.stdout_text()
