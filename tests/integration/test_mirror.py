"""VirtualService ``mirror`` / ``mirrorPercentage`` / ``mirrors``: Envoy's shadowing as Istio configures
it. A copy of the request (its body included) goes to the mirror with ``-shadow`` added to its Host; the
mirror's answer is dropped; a slow, failing or absent mirror never delays or changes the response; the
copy writes no access-log line."""
from __future__ import annotations

import hashlib
import time

from harness import config as cfg
from harness.gateway import free_port
from harness.upstream import echo_of


def settled_count(up, quiet=0.3, limit=5.0):
    """How many requests ``up`` got, once none has arrived for ``quiet`` seconds."""
    deadline = time.monotonic() + limit
    count = len(up.requests)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = len(up.requests)
        if now == count:
            return count
        count = now
    return count


def mirrored(gateway, main, mirror_target, **route_fields):
    docs = [cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(main)]),
            cfg.service_entry("mirror.test", [cfg.endpoint(mirror_target)], name="mirror")]
    if "mirror" not in route_fields and "mirrors" not in route_fields:
        route_fields["mirror"] = {"host": "mirror.test"}
    docs.append(cfg.virtual_service("main", [cfg.route(**route_fields)]))
    return gateway(docs)


def test_a_copy_goes_to_the_mirror_with_a_shadow_host_and_only_the_main_answer_returns(gateway, upstream):
    main = upstream("main")
    shadow = upstream("shadow", status="500", body="the mirror's answer")
    gw = mirrored(gateway, main, shadow)
    response = gw.get("/copied?x=1", headers={"host": "api.example.com", "x-trace": "t1"})
    assert response.status_code == 200 and echo_of(response).upstream == "main"
    copy = shadow.wait_for_requests(1)[0]
    assert copy.header("host") == "api.example.com-shadow"
    assert copy.target == "/copied?x=1" and copy.header("x-trace") == "t1"
    assert main.requests[0].header("host") == "api.example.com"
    lines = [e for e in gw.access_log_lines(1) if e.get("path") == "/copied?x=1"]
    assert len(lines) == 1 and lines[0]["upstream_cluster"] == cfg.cluster_name() and lines[0]["response_flags"] == "-"


def test_the_request_body_is_copied_too(gateway, upstream):
    main = upstream("main")
    shadow = upstream("shadow")
    gw = mirrored(gateway, main, shadow)
    body = bytes(range(256)) * 400  # 100 KiB, streamed to both
    assert gw.request("POST", "/upload", content=body).status_code == 200
    copy = shadow.wait_for_requests(1)[0]
    assert copy.body_length == len(body) and copy.body_sha256 == hashlib.sha256(body).hexdigest()


def test_a_slow_mirror_does_not_delay_the_response(gateway, upstream):
    main = upstream("main")
    shadow = upstream("shadow", sleep="5")
    gw = mirrored(gateway, main, shadow)
    assert gw.get("/slow-mirror").status_code == 200
    # The response came back while the mirror was still holding its copy.
    shadow.wait_for_active(1)
    assert shadow.active_requests == 1


def test_a_mirror_that_refuses_connections_changes_nothing(gateway, upstream):
    main = upstream("main")
    gw = mirrored(gateway, main, free_port())
    response = gw.get("/dead-mirror")
    assert response.status_code == 200
    assert gw.log_for_path("/dead-mirror")["response_flags"] == "-"


def test_mirror_percentage_copies_about_that_share(gateway, upstream):
    main = upstream("main")
    shadow = upstream("shadow")
    gw = mirrored(gateway, main, shadow, mirror={"host": "mirror.test"}, mirrorPercentage={"value": 50})
    with gw.client() as client:
        for index in range(200):
            assert client.get(f"/share{index}").status_code == 200
    # Copies travel on their own: wait until no more arrive.
    copies = settled_count(shadow)
    # 100 expected; a binomial(200, 0.5) stays within ±40 with overwhelming probability.
    assert 60 <= copies <= 140, copies


def test_mirrors_each_get_their_copy(gateway, upstream):
    main = upstream("main")
    one = upstream("one")
    two = upstream("two")
    docs = [cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(main)]),
            cfg.service_entry("one.test", [cfg.endpoint(one)], name="one"),
            cfg.service_entry("two.test", [cfg.endpoint(two)], name="two"),
            cfg.virtual_service("main", [cfg.route(mirrors=[{"destination": {"host": "one.test"}},
                                                             {"destination": {"host": "two.test"}, "percentage": {"value": 100}}])])]
    gw = gateway(docs)
    assert gw.get("/both").status_code == 200
    assert one.wait_for_requests(1)[0].path == "/both" and two.wait_for_requests(1)[0].path == "/both"
