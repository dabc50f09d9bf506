"""DestinationRule ``localityLbSetting`` against the Bootstrap ``locality``, as Istio hands it to Envoy:
with outlier detection, traffic stays in the gateway's own zone and fails over to the next priority
when that zone's endpoints are ejected; ``distribute`` splits traffic over localities by weight; a
gateway without a locality balances as if none were set."""
from __future__ import annotations

from collections import Counter

from harness import config as cfg
from harness.admin import admin_get
from harness.gateway import free_port
from harness.upstream import echo_of


def zoned(gateway, near, far, load_balancer, outlier=None, locality="us-east/zone-a"):
    endpoints = [dict(cfg.endpoint(near), locality="us-east/zone-a"), dict(cfg.endpoint(far), locality="us-east/zone-b")]
    policy = {"loadBalancer": load_balancer}
    if outlier:
        policy["outlierDetection"] = outlier
    admin = free_port()
    bootstrap = {"admin": {"address": "127.0.0.1", "port": admin}}
    if locality:
        bootstrap["locality"] = locality
    gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, endpoints),
                  cfg.resource("DestinationRule", "backend", {"host": cfg.BACKEND_HOST, "trafficPolicy": policy}),
                  cfg.virtual_service("main", [cfg.route()])], bootstrap=bootstrap)
    gw.admin = admin
    return gw


def answered_by(gw, count, path):
    with gw.client() as client:
        return Counter(echo_of(client.get(f"{path}{index}")).upstream for index in range(count))


def test_traffic_stays_in_the_gateways_zone_and_fails_over_when_it_is_ejected(gateway, upstream):
    near = upstream("near")
    far = upstream("far")
    gw = zoned(gateway, near, far, {"simple": "ROUND_ROBIN"},
               outlier={"consecutive5xxErrors": 1, "maxEjectionPercent": 100, "baseEjectionTime": "30s"})
    assert answered_by(gw, 10, "/local") == {"near": 10}
    _, clusters = admin_get(gw.admin, "/clusters")
    prefix = cfg.cluster_name()
    assert f"{prefix}::127.0.0.1:{near.port}::priority::0" in clusters
    assert f"{prefix}::127.0.0.1:{far.port}::priority::1" in clusters
    assert f"{prefix}::127.0.0.1:{far.port}::zone::zone-b" in clusters
    # The local endpoint fails: its 503 ejects it, Istio's default retry goes to the next priority, and
    # everything after follows.
    near.defaults["status"] = ["503"]
    with gw.client() as client:
        first = client.get("/failing")
    assert first.status_code == 200 and echo_of(first).upstream == "far"
    assert answered_by(gw, 10, "/failed-over") == {"far": 10}


def test_distribute_splits_traffic_by_locality_weight(gateway, upstream):
    near = upstream("near")
    far = upstream("far")
    gw = zoned(gateway, near, far, {"simple": "ROUND_ROBIN", "localityLbSetting": {"distribute": [
        {"from": "us-east/zone-a/*", "to": {"us-east/zone-a/*": 20, "us-east/zone-b/*": 80}}]}})
    counts = answered_by(gw, 200, "/split")
    # 160 expected at far; a binomial(200, 0.8) stays within ±30 with overwhelming probability.
    assert 130 <= counts["far"] <= 190 and counts["near"] + counts["far"] == 200, counts


def test_a_gateway_without_a_locality_ignores_endpoint_localities(gateway, upstream):
    near = upstream("near")
    far = upstream("far")
    gw = zoned(gateway, near, far, {"simple": "ROUND_ROBIN"}, outlier={"consecutive5xxErrors": 5}, locality=None)
    assert answered_by(gw, 10, "/spread") == {"near": 5, "far": 5}


def test_retry_remote_localities_sends_the_retry_to_the_next_priority(gateway, upstream):
    near = upstream("near", status="503")
    far = upstream("far")
    # Outlier detection that ejects nothing here: it only turns failover on.
    outlier = {"consecutive5xxErrors": 100}
    stays = zoned(gateway, near, far, {"simple": "ROUND_ROBIN"}, outlier=outlier)
    # By default a retry stays in the gateway's zone, where the only endpoint answers 503 again.
    response = stays.get("/stays")
    assert response.status_code == 503 and stays.log_for_path("/stays")["response_flags"] == "URX"
    assert far.requests == []
    docs_route = cfg.route(retries={"attempts": 1, "retryOn": "503", "retryRemoteLocalities": True})
    endpoints = [dict(cfg.endpoint(near), locality="us-east/zone-a"), dict(cfg.endpoint(far), locality="us-east/zone-b")]
    moves = gateway([cfg.service_entry(cfg.BACKEND_HOST, endpoints),
                     cfg.resource("DestinationRule", "backend", {"host": cfg.BACKEND_HOST, "trafficPolicy": {
                         "loadBalancer": {"simple": "ROUND_ROBIN"}, "outlierDetection": outlier}}),
                     cfg.virtual_service("main", [docs_route])], bootstrap={"locality": "us-east/zone-a"})
    response = moves.get("/moves")
    assert response.status_code == 200 and echo_of(response).upstream == "far"


def test_failover_priority_prefers_endpoints_sharing_the_gateways_labels_in_order(gateway, upstream):
    same = upstream("same")
    network_only = upstream("network-only")
    other = upstream("other")
    endpoints = [dict(cfg.endpoint(same, labels={"topology.istio.io/network": "n1", "tier": "gold"})),
                 dict(cfg.endpoint(network_only, labels={"topology.istio.io/network": "n1", "tier": "silver"})),
                 dict(cfg.endpoint(other, labels={"topology.istio.io/network": "n2", "tier": "gold"}))]
    admin = free_port()
    gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, endpoints),
                  cfg.resource("DestinationRule", "backend", {"host": cfg.BACKEND_HOST, "trafficPolicy": {
                      "loadBalancer": {"simple": "ROUND_ROBIN", "localityLbSetting": {
                          "failoverPriority": ["topology.istio.io/network", "tier"]}},
                      "outlierDetection": {"consecutive5xxErrors": 1, "maxEjectionPercent": 100, "baseEjectionTime": "30s"}}}),
                  cfg.virtual_service("main", [cfg.route()])],
                 bootstrap={"admin": {"address": "127.0.0.1", "port": admin},
                            "labels": {"topology.istio.io/network": "n1", "tier": "gold"}})
    assert answered_by(gw, 10, "/best") == {"same": 10}
    _, clusters = admin_get(admin, "/clusters")
    prefix = cfg.cluster_name()
    assert f"{prefix}::127.0.0.1:{same.port}::priority::0" in clusters
    assert f"{prefix}::127.0.0.1:{network_only.port}::priority::1" in clusters
    assert f"{prefix}::127.0.0.1:{other.port}::priority::2" in clusters, "a different network outranks nothing"
    # The best endpoint is ejected: traffic goes to the one sharing the first label, not the other network.
    same.defaults["status"] = ["503"]
    with gw.client() as client:
        assert echo_of(client.get("/failing")).upstream == "network-only"
    assert answered_by(gw, 10, "/failed-over") == {"network-only": 10}
