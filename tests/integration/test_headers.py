"""Header mutations (`headers.request/response` set/add/remove), at route level and per destination."""
from __future__ import annotations

from collections import Counter

from harness import config as cfg
from harness.checks import backends, split_values, to
from harness.upstream import echo_of

UPSTREAM_SENDS = "resp_header=x-resp-set:up&resp_header=x-resp-add:up&resp_header=x-resp-remove:up"

OPS = {
    "request": {"set": {"x-set": "gw"}, "add": {"x-add": "gw"}, "remove": ["x-remove"]},
    "response": {"set": {"x-resp-set": "gw"}, "add": {"x-resp-add": "gw"}, "remove": ["x-resp-remove"]},
}

CLIENT_SENDS = {"x-set": "client", "x-add": "client", "x-remove": "client", "x-untouched": "client"}


def check_mutations(response):
    assert response.status_code == 200
    echo = echo_of(response)
    assert echo.header_values("x-set") == ["gw"], "set overwrites the client's value"
    assert Counter(split_values(echo.header_values("x-add"))) == Counter(["client", "gw"]), "add appends"
    assert not echo.has_header("x-remove")
    assert echo.header_values("x-untouched") == ["client"]
    assert response.headers.get_list("x-resp-set") == ["gw"]
    assert Counter(split_values(response.headers.get_list("x-resp-add"))) == Counter(["up", "gw"])
    assert "x-resp-remove" not in response.headers


def test_route_level_request_and_response_mutations(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up, [cfg.route(headers=OPS)]))
    check_mutations(gw.get(f"/route-level?{UPSTREAM_SENDS}", headers=CLIENT_SENDS))


def test_destination_level_mutations(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up, [cfg.route(cfg.destination(headers=OPS))]))
    check_mutations(gw.get(f"/destination-level?{UPSTREAM_SENDS}", headers=CLIENT_SENDS))


def test_headers_added_when_absent(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up, [cfg.route(headers=OPS)]))
    r = gw.get("/absent")
    echo = echo_of(r)
    assert echo.header_values("x-set") == ["gw"]
    assert echo.header_values("x-add") == ["gw"]
    assert r.headers.get_list("x-resp-set") == ["gw"]
    assert r.headers.get_list("x-resp-add") == ["gw"]


def test_route_and_destination_mutations_combine(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up, [cfg.route(
        cfg.destination(headers={"request": {"set": {"x-from-destination": "d"}},
                                 "response": {"set": {"x-resp-destination": "d"}}}),
        headers={"request": {"set": {"x-from-route": "r"}}, "response": {"set": {"x-resp-route": "r"}}},
    )]))
    r = gw.get("/both")
    echo = echo_of(r)
    assert echo.header("x-from-destination") == "d"
    assert echo.header("x-from-route") == "r"
    assert r.headers.get("x-resp-destination") == "d"
    assert r.headers.get("x-resp-route") == "r"


def test_per_destination_headers_follow_the_chosen_destination(gateway, upstream):
    ups, entries = backends(upstream, "a", "b")
    gw = gateway(entries + [cfg.virtual_service("main", [cfg.route(
        to("a", weight=50, headers={"request": {"set": {"x-picked": "a"}}, "response": {"set": {"x-went": "a"}}}),
        to("b", weight=50, headers={"request": {"set": {"x-picked": "b"}}, "response": {"set": {"x-went": "b"}}}),
    )])])
    seen = set()
    with gw.client() as client:
        for _ in range(40):
            r = client.get("/split")
            echo = echo_of(r)
            assert echo.header("x-picked") == echo.upstream
            assert r.headers.get("x-went") == echo.upstream
            seen.add(echo.upstream)
    assert seen == {"a", "b"}


def test_response_mutations_apply_to_upstream_error_responses(gateway, upstream):
    """Response header ops apply to whatever the upstream answers, 5xx included."""
    up = upstream("backend", status=500)
    gw = gateway(cfg.simple_backend(up, [cfg.route(headers={"response": {"set": {"x-route-resp": "yes"}}})]))
    r = gw.get("/error")
    assert r.status_code == 500
    assert r.headers.get("x-route-resp") == "yes"
