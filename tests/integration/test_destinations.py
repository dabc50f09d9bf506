"""Destinations: ServiceEntry endpoints and ports, DestinationRule subsets, WorkloadEntry selection."""
from __future__ import annotations

from collections import Counter

from harness import config as cfg
from harness.upstream import echo_of


def test_subset_routing_by_header(gateway, upstream):
    v1 = upstream("v1")
    v2 = upstream("v2")
    gw = gateway([
        cfg.service_entry("backend.test", [cfg.endpoint(v1, labels={"version": "v1"}),
                                           cfg.endpoint(v2, labels={"version": "v2"})]),
        cfg.destination_rule("backend.test", {"v1": {"version": "v1"}, "v2": {"version": "v2"}}),
        cfg.virtual_service("main", [
            cfg.route(cfg.destination(subset="v2"), match={"headers": {"x-version": {"exact": "v2"}}}),
            cfg.route(cfg.destination(subset="v1")),
        ]),
    ])
    for _ in range(5):
        assert echo_of(gw.get("/s", headers={"x-version": "v2"})).upstream == "v2"
        assert echo_of(gw.get("/s")).upstream == "v1"
    gw.get("/subset-log", headers={"x-version": "v2"})
    entry = gw.log_for_path("/subset-log")
    assert entry["upstream_cluster"] == "outbound|80|v2|backend.test"
    assert entry["upstream_host"] == f"127.0.0.1:{v2.port}"


def test_destination_rules_of_one_host_merge_as_in_istio(gateway, upstream):
    """Two teams' rules for one host: the subsets of both are routable, and the first trafficPolicy wins
    (a later one is a warning at start, not silently dropped)."""
    v1 = upstream("v1")
    v2 = upstream("v2")
    gw = gateway([
        cfg.service_entry("backend.test", [cfg.endpoint(v1, labels={"version": "v1"}),
                                           cfg.endpoint(v2, labels={"version": "v2"})]),
        cfg.destination_rule("backend.test", {"v1": {"version": "v1"}}, name="team-a"),
        cfg.resource("DestinationRule", "team-b", {"host": "backend.test",
                                                    "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}},
                                                    "subsets": [{"name": "v2", "labels": {"version": "v2"}}]}),
        cfg.resource("DestinationRule", "team-c", {"host": "backend.test",
                                                    "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}}),
        cfg.virtual_service("main", [
            cfg.route(cfg.destination(subset="v2"), match={"headers": {"x-version": {"exact": "v2"}}}),
            cfg.route(cfg.destination(subset="v1")),
        ]),
    ])
    assert echo_of(gw.get("/m", headers={"x-version": "v2"})).upstream == "v2"
    assert echo_of(gw.get("/m")).upstream == "v1"
    output = gw.stderr_text() + gw.stdout_text()
    assert "DestinationRule default/team-c: spec.trafficPolicy: warning: not applied: DestinationRule default/team-b" in output, output


def test_all_endpoints_are_used_without_subset(gateway, upstream):
    one = upstream("one")
    two = upstream("two")
    gw = gateway([
        cfg.service_entry("backend.test", [cfg.endpoint(one), cfg.endpoint(two)]),
        cfg.virtual_service("main", [cfg.route()]),
    ])
    counts: Counter = Counter()
    with gw.client() as client:
        for _ in range(30):
            counts[echo_of(client.get("/lb")).upstream] += 1
    assert set(counts) == {"one", "two"}, counts
    gw.get("/lb-log")
    assert gw.log_for_path("/lb-log")["upstream_cluster"] == "outbound|80||backend.test"


def test_workload_entries_selected_by_labels_in_the_same_namespace(gateway, upstream):
    chosen = upstream("chosen")
    other_labels = upstream("other-labels")
    other_namespace = upstream("other-namespace")
    gw = gateway([
        cfg.service_entry("backend.test", workload_selector={"app": "web"}),
        cfg.workload_entry("web-1", chosen, {"app": "web", "version": "v1"}),
        cfg.workload_entry("api-1", other_labels, {"app": "api"}),
        cfg.workload_entry("web-elsewhere", other_namespace, {"app": "web"}, namespace="elsewhere"),
        cfg.virtual_service("main", [cfg.route()]),
    ])
    with gw.client() as client:
        for _ in range(10):
            assert echo_of(client.get("/we")).upstream == "chosen"
    assert other_labels.accepted == 0
    assert other_namespace.accepted == 0


def test_workload_entry_labels_feed_subsets(gateway, upstream):
    blue = upstream("blue")
    green = upstream("green")
    gw = gateway([
        cfg.service_entry("backend.test", workload_selector={"app": "web"}),
        cfg.workload_entry("web-blue", blue, {"app": "web", "color": "blue"}),
        cfg.workload_entry("web-green", green, {"app": "web", "color": "green"}),
        cfg.destination_rule("backend.test", {"blue": {"color": "blue"}, "green": {"color": "green"}}),
        cfg.virtual_service("main", [cfg.route(cfg.destination(subset="green"))]),
    ])
    for _ in range(5):
        assert echo_of(gw.get("/color")).upstream == "green"
    assert blue.accepted == 0


def test_service_port_used_as_endpoint_port(gateway, upstream):
    """``ports: [{number: UPSTREAM_PORT}]`` with endpoints that name no ports: the service port is used."""
    up = upstream("backend")
    gw = gateway([
        cfg.service_entry("backend.test", [cfg.endpoint(up, port_name=None)], port=up.port),
        cfg.virtual_service("main", [cfg.route()]),
    ])
    assert echo_of(gw.get("/port-form")).upstream == "backend"
    entry = gw.log_for_path("/port-form")
    assert entry["upstream_cluster"] == f"outbound|{up.port}||backend.test"
    assert entry["upstream_host"] == f"127.0.0.1:{up.port}"


def test_destination_port_selects_the_service_port(gateway, upstream):
    main = upstream("main")
    admin = upstream("admin")
    entry = cfg.service_entry("backend.test", [{"address": "127.0.0.1", "ports": {"http": main.port,
                                                                                   "http-admin": admin.port}}])
    entry["spec"]["ports"].append({"number": 81, "name": "http-admin", "protocol": "HTTP"})
    gw = gateway([
        entry,
        cfg.virtual_service("main", [
            cfg.route(cfg.destination(port=81), match={"uri": {"prefix": "/admin"}}),
            cfg.route(cfg.destination(port=80)),
        ]),
    ])
    assert echo_of(gw.get("/admin/x")).upstream == "admin"
    assert echo_of(gw.get("/app")).upstream == "main"
    assert gw.log_for_path("/admin/x")["upstream_cluster"] == "outbound|81||backend.test"


def test_dns_endpoints_are_resolved(gateway, upstream):
    """resolution: DNS with a host name endpoint: resolved off the event loop (IPv4 preferred) and cached."""
    named = upstream("named")
    gw = gateway([
        cfg.service_entry("backend.test", [cfg.endpoint(named, address="localhost")], resolution="DNS"),
        cfg.virtual_service("main", [cfg.route()]),
    ])
    with gw.client() as client:
        for _ in range(5):
            assert echo_of(client.get("/dns")).upstream == "named"
    gw.get("/dns-log")
    entry = gw.log_for_path("/dns-log")
    assert entry["upstream_host"] == f"127.0.0.1:{named.port}"
    assert entry["response_code"] == 200


def test_unresolvable_dns_endpoint_is_no_healthy_upstream(gateway):
    gw = gateway([
        cfg.service_entry("backend.test", [cfg.endpoint(9, address="no-such-host.invalid")], resolution="DNS"),
        cfg.virtual_service("main", [cfg.route()]),
    ])
    response = gw.get("/nxdomain")
    assert response.status_code == 503
    assert response.text == "no healthy upstream"
    entry = gw.log_for_path("/nxdomain")
    assert entry["response_flags"] == "UH"
