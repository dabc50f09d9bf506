"""Route selection: Istio VirtualService semantics (reference/istio-semantics.md §0, §2)."""
from __future__ import annotations

import pytest

from harness import config as cfg
from harness.checks import backends, flags, served_by, to
from harness.gateway import free_port


def start(gateway, upstream, http, names=("a", "b", "c"), *, vs_hosts=("*",), **gw_kwargs):
    ups, entries = backends(upstream, *names)
    gw = gateway(entries + [cfg.virtual_service("main", http, hosts=vs_hosts)], **gw_kwargs)
    return gw, ups


def test_uri_exact_prefix_and_regex(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(to("a"), match={"uri": {"exact": "/exact"}}),
        cfg.route(to("b"), match={"uri": {"prefix": "/pre"}}),
        cfg.route(to("c"), match={"uri": {"regex": "/re/[0-9]+"}}),
    ])
    assert served_by(gw, "/exact") == "a"
    assert served_by(gw, "/exact?x=1") == "a", "exact matches the path without the query"
    assert served_by(gw, "/exact/more") == 404
    assert served_by(gw, "/EXACT") == 404, "matching is case-sensitive"
    assert served_by(gw, "/pre") == "b"
    assert served_by(gw, "/prefix-is-a-raw-string-prefix") == "b", "Istio prefix is not segment-wise"
    assert served_by(gw, "/pre/x/y?z=1") == "b"
    assert served_by(gw, "/re/123") == "c"
    assert served_by(gw, "/re/123?q=abc") == "c", "regex sees the path without the query"
    assert served_by(gw, "/re/123/x") == 404, "regex must match the whole path"
    assert served_by(gw, "/x/re/123") == 404, "regex must match the whole path"
    assert served_by(gw, "/re/abc") == 404


def test_ignore_uri_case(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(to("a"), match={"uri": {"exact": "/Case"}, "ignoreUriCase": True}),
        cfg.route(to("b"), match={"uri": {"prefix": "/Upper"}, "ignoreUriCase": True}),
        cfg.route(to("c"), match={"uri": {"prefix": "/Strict"}}),
    ])
    assert served_by(gw, "/case") == "a"
    assert served_by(gw, "/CASE") == "a"
    assert served_by(gw, "/upperX/y") == "b"
    assert served_by(gw, "/UPPER") == "b"
    assert served_by(gw, "/Strict/1") == "c"
    assert served_by(gw, "/strict/1") == 404


def test_first_match_wins_in_order(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(to("a"), match={"uri": {"prefix": "/api"}}),
        cfg.route(to("b"), match={"uri": {"prefix": "/api/v2"}}),
        cfg.route(to("c"), match={"uri": {"exact": "/api/v2/x"}}),
    ])
    assert served_by(gw, "/api/v2/x") == "a"
    assert served_by(gw, "/api/v2") == "a"
    assert served_by(gw, "/ap") == 404


def test_match_entries_are_ored_and_fields_anded(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(to("a"), match=[{"uri": {"exact": "/one"}}, {"uri": {"exact": "/two"}}]),
        cfg.route(to("b"), match={"uri": {"prefix": "/and"}, "method": {"exact": "POST"},
                                  "headers": {"x-key": {"exact": "v"}}}),
        cfg.route(to("c")),  # no match block: catch-all
    ])
    assert served_by(gw, "/one") == "a"
    assert served_by(gw, "/two") == "a"
    assert served_by(gw, "/three") == "c"
    assert served_by(gw, "/and", method="POST", headers={"x-key": "v"}) == "b"
    assert served_by(gw, "/and", method="GET", headers={"x-key": "v"}) == "c"
    assert served_by(gw, "/and", method="POST") == "c"
    assert served_by(gw, "/and", method="POST", headers={"x-key": "w"}) == "c"


def test_method_match(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(to("a"), match={"method": {"exact": "DELETE"}}),
        cfg.route(to("b"), match={"method": {"regex": "P(UT|ATCH)"}}),
        cfg.route(to("c")),
    ])
    assert served_by(gw, "/m", method="DELETE") == "a"
    assert served_by(gw, "/m", method="PUT") == "b"
    assert served_by(gw, "/m", method="PATCH") == "b"
    assert served_by(gw, "/m", method="POST") == "c"
    assert served_by(gw, "/m", method="GET") == "c"


def test_header_match(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(to("a"), match={"headers": {"x-user": {"exact": "alice"}}}),
        cfg.route(to("b"), match={"headers": {"x-team": {"prefix": "core-"}}}),
        cfg.route(to("c"), match={"headers": {"x-id": {"regex": "[0-9]+"}}}),
    ], names=("a", "b", "c"))
    assert served_by(gw, "/h", headers={"x-user": "alice"}) == "a"
    assert served_by(gw, "/h", headers={"X-User": "alice"}) == "a", "header names are case-insensitive"
    assert served_by(gw, "/h", headers={"x-user": "Alice"}) == 404, "header values are case-sensitive"
    assert served_by(gw, "/h", headers={"x-team": "core-net"}) == "b"
    assert served_by(gw, "/h", headers={"x-team": "edge-core-"}) == 404
    assert served_by(gw, "/h", headers={"x-id": "42"}) == "c"
    assert served_by(gw, "/h", headers={"x-id": "42a"}) == 404, "header regex must match the whole value"
    assert served_by(gw, "/h") == 404


def test_without_headers(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(to("a"), match={"withoutHeaders": {"x-canary": {"exact": "true"}}}),
        cfg.route(to("b")),
    ], names=("a", "b"))
    assert served_by(gw, "/w") == "a"
    assert served_by(gw, "/w", headers={"x-canary": "false"}) == "a"
    assert served_by(gw, "/w", headers={"x-canary": "true"}) == "b"


def test_query_params(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(to("a"), match={"queryParams": {"version": {"exact": "2"}}}),
        cfg.route(to("b"), match={"queryParams": {"mode": {"regex": "fast|faster"}}}),
        cfg.route(to("c")),
    ])
    assert served_by(gw, "/q?version=2") == "a"
    assert served_by(gw, "/q?other=1&version=2") == "a"
    assert served_by(gw, "/q?version=20") == "c"
    assert served_by(gw, "/q?mode=faster") == "b"
    assert served_by(gw, "/q?mode=fastest") == "c", "query regex must match the whole value"
    assert served_by(gw, "/q") == "c"


def test_authority_match(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(to("a"), match={"authority": {"exact": "api.example.com"}}),
        cfg.route(to("b"), match={"authority": {"prefix": "img."}}),
        cfg.route(to("c")),
    ])
    assert served_by(gw, "/", headers={"Host": "api.example.com"}) == "a"
    assert served_by(gw, "/", headers={"Host": "img.example.com"}) == "b"
    assert served_by(gw, "/", headers={"Host": "www.example.com"}) == "c"


def test_authority_match_sees_the_port(gateway, upstream):
    """`:authority` keeps the port (istio-semantics §2), unlike vhost selection which ignores it."""
    gw, _ = start(gateway, upstream, [
        cfg.route(to("a"), match={"authority": {"exact": "api.example.com"}}),
        cfg.route(to("b"), match={"authority": {"regex": "api\\.example\\.com:[0-9]+"}}),
    ], names=("a", "b"))
    assert served_by(gw, "/", headers={"Host": "api.example.com"}) == "a"
    assert served_by(gw, "/", headers={"Host": "api.example.com:8443"}) == "b"


def test_scheme_match(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(to("a"), match={"scheme": {"exact": "https"}}),
        cfg.route(to("b"), match={"scheme": {"exact": "http"}}),
    ], names=("a", "b"))
    assert served_by(gw, "/s") == "b"


def test_port_match(gateway, upstream):
    port = free_port()
    gw, _ = start(gateway, upstream, [
        cfg.route(to("a"), match={"port": port + 1 if port < 65535 else port - 1}),
        cfg.route(to("b"), match={"port": port}),
    ], names=("a", "b"), port=port)
    assert served_by(gw, "/p") == "b"


def test_virtual_service_without_gateways_is_not_bound(gateway, upstream):
    up = upstream("a")
    gw = gateway([
        cfg.service_entry("a.test", [cfg.endpoint(up)]),
        cfg.virtual_service("mesh-only", [cfg.route(to("a"))], gateways=None),
        cfg.virtual_service("mesh-explicit", [cfg.route(to("a"))], hosts=("mesh.example.com",),
                            gateways=["mesh"]),
    ])
    r = gw.get("/anything")
    assert r.status_code == 404
    assert r.content == b""
    r = gw.get("/anything", headers={"Host": "mesh.example.com"})
    assert r.status_code == 404
    entry = gw.log_for_path("/anything")
    assert flags(entry) == {"NR"}
    assert entry["response_code_details"] == "route_not_found"
    assert up.accepted == 0


def test_no_matching_route_is_404_nr(gateway, upstream):
    gw, ups = start(gateway, upstream, [cfg.route(to("a"), match={"uri": {"prefix": "/only"}})], names=("a",))
    r = gw.get("/other")
    assert r.status_code == 404
    assert r.content == b""
    entry = gw.log_for_path("/other")
    assert entry["response_code"] == 404
    assert flags(entry) == {"NR"}
    assert entry["response_code_details"] == "route_not_found"
    assert len(ups["a"].requests) == 0


def test_host_wildcards_and_exact_hosts(gateway, upstream):
    ups, entries = backends(upstream, "a", "b", "c")
    gw = gateway(entries + [
        cfg.virtual_service("wild", [cfg.route(to("a"))], hosts=["*.example.com"]),
        cfg.virtual_service("exact", [cfg.route(to("b"))], hosts=["api.example.com"]),
        cfg.virtual_service("longer", [cfg.route(to("c"))], hosts=["*.internal.example.com"]),
    ])
    assert served_by(gw, "/", headers={"Host": "api.example.com"}) == "b", "exact host beats wildcard"
    assert served_by(gw, "/", headers={"Host": "www.example.com"}) == "a"
    assert served_by(gw, "/", headers={"Host": "x.internal.example.com"}) == "c", "longest wildcard wins"
    assert served_by(gw, "/", headers={"Host": "example.com"}) == 404, "*.example.com does not match example.com"
    assert served_by(gw, "/", headers={"Host": "example.org"}) == 404
    assert served_by(gw, "/", headers={"Host": "API.Example.COM"}) == "b", "hosts are case-insensitive"


def test_host_port_is_ignored_for_host_selection(gateway, upstream):
    ups, entries = backends(upstream, "a", "b")
    gw = gateway(entries + [
        cfg.virtual_service("exact", [cfg.route(to("a"))], hosts=["api.example.com"]),
        cfg.virtual_service("wild", [cfg.route(to("b"))], hosts=["*.example.com"]),
    ])
    assert served_by(gw, "/", headers={"Host": "api.example.com:12345"}) == "a"
    assert served_by(gw, "/", headers={"Host": f"api.example.com:{gw.port}"}) == "a"
    assert served_by(gw, "/", headers={"Host": "www.example.com:80"}) == "b"


def test_catch_all_host_takes_the_rest(gateway, upstream):
    ups, entries = backends(upstream, "a", "b")
    gw = gateway(entries + [
        cfg.virtual_service("exact", [cfg.route(to("a"))], hosts=["api.example.com"]),
        cfg.virtual_service("any", [cfg.route(to("b"))], hosts=["*"]),
    ])
    assert served_by(gw, "/", headers={"Host": "api.example.com"}) == "a"
    assert served_by(gw, "/", headers={"Host": "other.org"}) == "b"
    assert served_by(gw, "/") == "b", "Host 127.0.0.1:PORT falls to *"


def test_gateway_server_hosts_limit_what_binds(gateway, upstream):
    ups, entries = backends(upstream, "a")
    gw = gateway(entries + [cfg.virtual_service("any", [cfg.route(to("a"))], hosts=["*"])],
                 hosts=["*.example.com"])
    assert served_by(gw, "/", headers={"Host": "api.example.com"}) == "a"
    assert served_by(gw, "/", headers={"Host": "other.org"}) == 404


def test_catch_all_routes_sort_last_across_virtual_services(gateway, upstream):
    """Istio moves catch-all routes (prefix "/" without header/query match) after specific ones when it
    merges VirtualServices for one host (reference §2 step 3)."""
    ups, entries = backends(upstream, "a", "b")
    gw = gateway(entries + [
        cfg.virtual_service("a-catch-all", [cfg.route(to("a"), match={"uri": {"prefix": "/"}})]),
        cfg.virtual_service("b-specific", [cfg.route(to("b"), match={"uri": {"prefix": "/special"}})]),
    ])
    assert served_by(gw, "/special/x") == "b"
    assert served_by(gw, "/other") == "a"


@pytest.mark.parametrize("namespace", ["default", "team"])
def test_gateway_reference_by_namespace(gateway, upstream, namespace):
    """A VS in another namespace binds with ``ns/name``; a bare name means the VS's own namespace."""
    up = upstream("a")
    reference = "gw" if namespace == "default" else "default/gw"
    gw = gateway([
        cfg.service_entry("a.test", [cfg.endpoint(up)]),
        cfg.virtual_service("main", [cfg.route(to("a"))], gateways=[reference], namespace=namespace),
    ])
    assert served_by(gw, "/ns") == "a"
