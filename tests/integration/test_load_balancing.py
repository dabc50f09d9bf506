"""DestinationRule ``loadBalancer``: ROUND_ROBIN, RANDOM, LEAST_REQUEST (Istio's default) and
``consistentHash`` (ring hash and Maglev, on a header, a query parameter or the client's address)."""
from __future__ import annotations

import json
import threading
from collections import Counter

from harness import config as cfg
from harness.admin import admin_get
from harness.gateway import free_port
from harness.upstream import echo_of


def balanced(gateway, upstream, balancer, **kwargs):
    """Three endpoints of backend.test behind a DestinationRule with ``loadBalancer: balancer``."""
    ups = [upstream(name) for name in ("one", "two", "three")]
    rule = cfg.resource("DestinationRule", "backend", {"host": cfg.BACKEND_HOST, "trafficPolicy": {"loadBalancer": balancer}})
    gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(up) for up in ups]), rule,
                  cfg.virtual_service("main", [cfg.route()])], **kwargs)
    return gw, ups


def upstreams_of(gw, requests):
    """Which upstream answered each of ``requests`` (path, headers) on one keep-alive connection."""
    with gw.client() as client:
        return [echo_of(client.get(path, headers=headers)).upstream for path, headers in requests]


def test_round_robin_takes_each_endpoint_in_turn(gateway, upstream):
    gw, _ = balanced(gateway, upstream, {"simple": "ROUND_ROBIN"})
    answered = upstreams_of(gw, [("/rr", {})] * 9)
    assert Counter(answered) == {"one": 3, "two": 3, "three": 3}, answered
    assert answered[:3] == answered[3:6] == answered[6:], answered


def test_random_uses_every_endpoint(gateway, upstream):
    gw, _ = balanced(gateway, upstream, {"simple": "RANDOM"})
    counts = Counter(upstreams_of(gw, [("/random", {})] * 60))
    # Each endpoint's chance of getting none of 60 is (2/3)^60, about 3e-11.
    assert set(counts) == {"one", "two", "three"}, counts


def test_least_request_keeps_requests_away_from_a_slow_endpoint(gateway, upstream):
    # Istio's default when a DestinationRule sets no loadBalancer. "slow" holds each request 0.3 s while
    # 8 clients keep sending: by round robin it would get a third of them; with two random draws and the
    # less busy one winning, it gets one only when both draws name it, about a ninth.
    ups = [upstream("slow", sleep="0.3"), upstream("fast-1"), upstream("fast-2")]
    gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(up) for up in ups]),
                  cfg.virtual_service("main", [cfg.route()])])
    counts: Counter = Counter()
    lock = threading.Lock()

    def client_loop():
        with gw.client() as client:
            for _ in range(20):
                name = echo_of(client.get("/lr")).upstream
                with lock:
                    counts[name] += 1

    threads = [threading.Thread(target=client_loop) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(counts.values()) == 160, counts
    assert counts["slow"] < 0.22 * 160, counts


def test_a_header_hash_keeps_each_user_on_one_endpoint(gateway, upstream):
    gw, _ = balanced(gateway, upstream, {"consistentHash": {"httpHeaderName": "X-User"}})
    users = [f"user-{index}" for index in range(12)]
    first = dict(zip(users, upstreams_of(gw, [("/hash", {"x-user": user}) for user in users])))
    backwards = users[::-1]
    again = dict(zip(backwards, upstreams_of(gw, [("/hash", {"x-user": user}) for user in backwards])))
    assert first == again
    assert len(set(first.values())) > 1, first
    # Without the header the request is still served (by a random endpoint).
    assert gw.get("/hash").status_code == 200


def test_maglev_on_a_query_parameter_is_the_same_after_a_restart(gateway, upstream):
    balancer = {"consistentHash": {"httpQueryParameterName": "user", "maglev": {"tableSize": 65537}}}
    gw, ups = balanced(gateway, upstream, balancer)
    requests = [(f"/maglev?user=u{index}", {}) for index in range(10)]
    before = upstreams_of(gw, requests)
    gw.stop()
    # Another gateway process (as another replica would) maps every key to the same endpoint.
    rule = cfg.resource("DestinationRule", "backend", {"host": cfg.BACKEND_HOST, "trafficPolicy": {"loadBalancer": balancer}})
    other = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(up) for up in ups]), rule,
                     cfg.virtual_service("main", [cfg.route()])])
    assert upstreams_of(other, requests) == before
    assert len(set(before)) > 1, before


def test_source_ip_hash_and_the_policy_in_clusters(gateway, upstream):
    admin = free_port()
    gw, _ = balanced(gateway, upstream, {"consistentHash": {"useSourceIp": True, "ringHash": {"minimumRingSize": 2048}}},
                     bootstrap={"admin": {"address": "127.0.0.1", "port": admin}})
    answered = set()
    for _ in range(6):  # a new connection each time: still one client address
        answered.add(echo_of(gw.get("/source")).upstream)
    assert len(answered) == 1, answered
    status, text = admin_get(admin, "/clusters")
    assert status == 200 and f"{cfg.cluster_name()}::lb_policy::RING_HASH" in text, text
    status, text = admin_get(admin, "/clusters?format=json")
    assert json.loads(text)["cluster_statuses"][0]["lb_policy"] == "RING_HASH"


def test_a_cookie_hash_sets_a_cookie_for_a_new_client_and_keeps_it_on_its_endpoint(gateway, upstream):
    gw, _ = balanced(gateway, upstream, {"consistentHash": {"httpCookie": {"name": "affinity", "path": "/", "ttl": "60s"}}})
    first = gw.get("/cookie")
    set_cookie = first.headers["set-cookie"]
    name_value, *attributes = set_cookie.split("; ")
    assert name_value.startswith('affinity="') and name_value.endswith('"') and len(name_value) == len('affinity=""') + 16
    assert attributes == ["Max-Age=60", "Path=/", "HttpOnly"]
    # A client that presents it (curl and browsers send it back unquoted or quoted alike) stays put,
    # and is not handed a new cookie.
    value = name_value[len("affinity="):].strip('"')
    with gw.client() as client:
        later = [client.get("/cookie", headers={"cookie": f"theme=dark; affinity={value}"}) for _ in range(12)]
    assert {echo_of(r).upstream for r in later} == {echo_of(first).upstream}
    assert all("set-cookie" not in r.headers for r in later)
    # Other cookies spread over the endpoints.
    spread = upstreams_of(gw, [("/cookie", {"cookie": f"affinity=user{index}"}) for index in range(30)])
    assert len(set(spread)) > 1, spread


def test_a_zero_ttl_cookie_is_a_session_cookie(gateway, upstream):
    gw, _ = balanced(gateway, upstream, {"consistentHash": {"httpCookie": {"name": "s", "ttl": "0s"}}})
    assert gw.get("/session").headers["set-cookie"].endswith('"; HttpOnly')
    assert "Max-Age" not in gw.get("/session").headers["set-cookie"]
