"""Weighted destinations and subsets."""
from __future__ import annotations

from collections import Counter

from harness import config as cfg
from harness.checks import backends, to
from harness.upstream import echo_of


def count_upstreams(gw, n: int, path: str = "/w") -> Counter:
    counts: Counter = Counter()
    with gw.client() as client:
        for _ in range(n):
            r = client.get(path)
            assert r.status_code == 200, r.text
            counts[r.headers["x-upstream-name"]] += 1
    return counts


def test_80_20_split(gateway, upstream):
    ups, entries = backends(upstream, "a", "b")
    gw = gateway(entries + [cfg.virtual_service("main", [cfg.route(to("a", weight=80), to("b", weight=20))])])
    counts = count_upstreams(gw, 400)
    # Binomial(400, 0.8): mean 320, sd 8. +-40 is 5 sd.
    assert 280 <= counts["a"] <= 360, counts
    assert counts["a"] + counts["b"] == 400


def test_weight_zero_gets_nothing(gateway, upstream):
    ups, entries = backends(upstream, "a", "b")
    gw = gateway(entries + [cfg.virtual_service("main", [cfg.route(to("a", weight=100), to("b", weight=0))])])
    counts = count_upstreams(gw, 60)
    assert counts == Counter({"a": 60})


def test_subset_split_with_destination_rule(gateway, upstream):
    v1 = upstream("v1")
    v2 = upstream("v2")
    gw = gateway([
        cfg.service_entry("backend.test", [cfg.endpoint(v1, labels={"version": "v1"}),
                                           cfg.endpoint(v2, labels={"version": "v2"})]),
        cfg.destination_rule("backend.test", {"v1": {"version": "v1"}, "v2": {"version": "v2"}}),
        cfg.virtual_service("main", [cfg.route(cfg.destination(subset="v1", weight=50),
                                               cfg.destination(subset="v2", weight=50))]),
    ])
    counts = count_upstreams(gw, 200)
    # Binomial(200, 0.5): mean 100, sd ~7.1. +-30 is > 4 sd.
    assert 70 <= counts["v1"] <= 130, counts
    assert counts["v1"] + counts["v2"] == 200
    gw.wait_for_log(lambda e: e.get("upstream_cluster") == cfg.cluster_name(subset="v1"))
    gw.wait_for_log(lambda e: e.get("upstream_cluster") == cfg.cluster_name(subset="v2"))


def test_weights_hold_on_separate_connections(gateway, upstream):
    """Choice is per request, not per connection: fresh connections also follow the weights."""
    ups, entries = backends(upstream, "a", "b")
    gw = gateway(entries + [cfg.virtual_service("main", [cfg.route(to("a", weight=50), to("b", weight=50))])])
    counts: Counter = Counter()
    for _ in range(60):
        counts[echo_of(gw.get("/fresh")).upstream] += 1
    assert counts["a"] >= 10 and counts["b"] >= 10, counts
