"""DestinationRule ``outlierDetection``: an endpoint that fails in a row is ejected at once and gets no
traffic until its ejection ends; a cluster with every endpoint ejected answers 503 ``UH``, unless
``minHealthPercent`` makes it use them all; ``/clusters`` shows who is ejected."""
from __future__ import annotations

import time

from harness import config as cfg
from harness.admin import admin_get
from harness.gateway import free_port
from harness.upstream import echo_of


# Outlier detection on its own: Istio's default retries would send a failed request to the other
# endpoint, and the client would never see the failures these tests count.
NO_RETRIES = {"attempts": 0}


def with_outlier_detection(gateway, endpoints, outlier, balancer=None, retries=NO_RETRIES):
    """backend.test over ``endpoints`` (upstreams or bare ports), with ``outlierDetection: outlier``;
    ``retries`` None leaves the route with Istio's default retries."""
    policy = {"outlierDetection": outlier, "loadBalancer": balancer or {"simple": "ROUND_ROBIN"}}
    admin = free_port()
    route = cfg.route() if retries is None else cfg.route(retries=retries)
    gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(e) for e in endpoints]),
                  cfg.resource("DestinationRule", "backend", {"host": cfg.BACKEND_HOST, "trafficPolicy": policy}),
                  cfg.virtual_service("main", [route])],
                 bootstrap={"admin": {"address": "127.0.0.1", "port": admin}})
    gw.admin = admin
    return gw


def health(gw, port):
    """The ``health_flags`` /clusters shows for the endpoint on ``port``."""
    status, text = admin_get(gw.admin, "/clusters")
    assert status == 200
    prefix = f"{cfg.cluster_name()}::127.0.0.1:{port}::health_flags::"
    return next(line[len(prefix):] for line in text.splitlines() if line.startswith(prefix))


def test_consecutive_5xx_eject_an_endpoint_until_its_time_is_up(gateway, upstream):
    bad = upstream("bad", status="503")
    good = upstream("good")
    gw = with_outlier_detection(gateway, [bad, good], {"consecutive5xxErrors": 3, "interval": "200ms",
                                                       "baseEjectionTime": "1s", "maxEjectionPercent": 100})
    with gw.client() as client:
        statuses = [client.get("/od").status_code for _ in range(20)]
    # Round robin sends every other request to "bad" until its third 503 ejects it.
    assert len(bad.requests) == 3, statuses
    assert statuses.count(503) == 3 and statuses[6:] == [200] * 14, statuses
    assert health(gw, bad.port) == "/failed_outlier_check" and health(gw, good.port) == "healthy"
    _, metrics = admin_get(gw.admin, "/stats/prometheus")
    labels = f'{{cluster_name="{cfg.cluster_name()}"}}'
    assert f"envoy_cluster_outlier_detection_ejections_enforced_total{labels} 1" in metrics
    assert f"envoy_cluster_outlier_detection_ejections_active{labels} 1" in metrics
    # It comes back at the first sweep after 1 s (the first request after that sees it healthy).
    bad.defaults["status"] = ["200"]
    deadline = time.monotonic() + 5
    while health(gw, bad.port) != "healthy":
        assert time.monotonic() < deadline, "the ejected endpoint never came back"
        time.sleep(0.1)
    with gw.client() as client:
        answered = {echo_of(client.get("/back")).upstream for _ in range(6)}
    assert answered == {"bad", "good"}


def test_a_cluster_with_every_endpoint_ejected_has_no_healthy_upstream(gateway, upstream):
    only = upstream("only", status="502")
    gw = with_outlier_detection(gateway, [only], {"consecutiveGatewayErrors": 2, "consecutive5xxErrors": 0})
    with gw.client() as client:
        assert [client.get("/bad").status_code for _ in range(2)] == [502, 502]
        response = client.get("/uh")
    assert response.status_code == 503 and response.text == "no healthy upstream"
    assert gw.log_for_path("/uh")["response_flags"] == "UH"
    assert len(only.requests) == 2


def test_connect_failures_eject(gateway, upstream):
    closed = free_port()  # nothing listens there
    good = upstream("good")
    gw = with_outlier_detection(gateway, [closed, good], {"consecutive5xxErrors": 1, "maxEjectionPercent": 50})
    with gw.client() as client:
        statuses = [client.get("/cf").status_code for _ in range(10)]
    assert statuses.count(503) == 1 and statuses.count(200) == 9, statuses
    assert health(gw, closed) == "/failed_outlier_check"


def test_with_istios_default_retries_clients_never_see_the_endpoint_being_ejected(gateway, upstream):
    closed = free_port()  # nothing listens there
    bad = upstream("bad", status="503")
    good = upstream("good")
    gw = with_outlier_detection(gateway, [closed, bad, good], {"consecutive5xxErrors": 1, "maxEjectionPercent": 100},
                                retries=None)
    with gw.client() as client:
        answers = [client.get(f"/ok{index}") for index in range(12)]
    # A connect failure and a 503 are retried on an endpoint not tried yet; each failed try ejects.
    assert [a.status_code for a in answers] == [200] * 12
    assert {echo_of(a).upstream for a in answers} == {"good"}
    assert health(gw, closed) == "/failed_outlier_check" and health(gw, bad.port) == "/failed_outlier_check"
    assert len(bad.requests) == 1, "ejected after its one 503, it took no more"
    _, metrics = admin_get(gw.admin, "/stats/prometheus")
    labels = f'{{cluster_name="{cfg.cluster_name()}"}}'
    assert f"envoy_cluster_upstream_rq_retry_success{labels} " in metrics
    retries = int(next(line.split()[-1] for line in metrics.splitlines()
                       if line.startswith(f"envoy_cluster_upstream_rq_retry{labels}")))
    assert retries >= 2


def test_below_min_health_percent_every_endpoint_takes_traffic(gateway, upstream):
    one = upstream("one", status="503")
    two = upstream("two", status="503")
    gw = with_outlier_detection(gateway, [one, two], {"consecutive5xxErrors": 1, "maxEjectionPercent": 100,
                                                      "minHealthPercent": 60})
    with gw.client() as client:
        statuses = [client.get(f"/panic{index}").status_code for index in range(10)]
    # Both are ejected, which leaves less than 60 % healthy: the cluster uses them all (Envoy's panic).
    assert statuses == [503] * 10
    assert len(one.requests) + len(two.requests) == 10 and one.requests and two.requests
    assert all(gw.log_for_path(f"/panic{index}")["response_flags"] == "-" for index in range(10))
