"""Bootstrap ``pathNormalization`` (Istio's meshConfig setting, reference §7): the normalized path is what
routing matches and what the upstream receives; a path that cannot be normalized safely gets 400."""
from __future__ import annotations

import pytest

from harness import config as cfg
from harness.checks import backends, to
from harness.h2client import H2Client


def start(gateway, upstream, mode: str | None):
    ups, entries = backends(upstream, "admin", "public")
    routes = [
        cfg.route(to("admin"), match={"uri": {"exact": "/admin"}}),
        cfg.route(to("public"), match={"uri": {"prefix": "/"}}),
    ]
    extra = {} if mode is None else {"pathNormalization": mode}
    gw = gateway(entries + [cfg.virtual_service("main", routes)], bootstrap=extra)
    return gw, ups


def fetch(gw, target: str):
    """(status, name of the upstream that answered or None) for a raw request target."""
    with gw.raw() as conn:
        response = conn.request("GET", target)
    return response.status, response.header("x-upstream-name")


def seen_path(ups, name: str) -> str:
    return ups[name].requests[-1].path


# Every spelling here must reach the /admin route (and so any policy on /admin) under BASE.
BASE_ADMIN = ["/admin", "/public/../admin", "/./admin", "/%61dmin", "/%2e%2e/admin", "/%2E/admin",
              "/x/%2e%2e/admin", "/admin#frag", "/admin?q=1", "/admin#x?y", "/public\\..\\admin", "/x\\..\\.\\admin"]


@pytest.mark.parametrize("target", BASE_ADMIN)
def test_base_is_the_default_and_routes_every_spelling_of_admin(gateway, upstream, target):
    gw, ups = start(gateway, upstream, None)
    status, name = fetch(gw, target)
    assert (status, name) == (200, "admin"), target
    assert seen_path(ups, "admin") == "/admin", "the upstream receives the normalized path"


def test_base_keeps_the_query_and_uppercases_reserved_escapes(gateway, upstream):
    gw, ups = start(gateway, upstream, "BASE")
    assert fetch(gw, "/a/./b/../c%2fd?x=%2e") == (200, "public")
    request = ups["public"].requests[-1]
    assert request.target == "/a/c%2Fd?x=%2e", "only the path is normalized; the query is forwarded as sent"


@pytest.mark.parametrize("target", ["//admin", "/admin%2F", "/%2Fadmin", "/%5Cadmin"])
def test_base_leaves_slashes_alone(gateway, upstream, target):
    gw, _ = start(gateway, upstream, "BASE")
    assert fetch(gw, target) == (200, "public"), "BASE neither merges nor decodes slashes (Istio's default)"


@pytest.mark.parametrize("target", ["//admin", "/public/..//admin", "///admin"])
def test_merge_slashes(gateway, upstream, target):
    gw, ups = start(gateway, upstream, "MERGE_SLASHES")
    assert fetch(gw, target) == (200, "admin"), target
    assert seen_path(ups, "admin") == "/admin"


@pytest.mark.parametrize("target", ["/%2Fadmin", "/%2fadmin", "/%5Cadmin", "/%5cadmin", "/x/..%2Fadmin", "//%2F/admin"])
def test_decode_and_merge_slashes(gateway, upstream, target):
    gw, ups = start(gateway, upstream, "DECODE_AND_MERGE_SLASHES")
    assert fetch(gw, target) == (200, "admin"), target
    assert seen_path(ups, "admin") == "/admin"


def test_none_routes_the_path_as_received(gateway, upstream):
    gw, ups = start(gateway, upstream, "NONE")
    assert fetch(gw, "/public/../admin") == (200, "public")
    assert seen_path(ups, "public") == "/public/../admin"


@pytest.mark.parametrize("mode", ["NONE", "BASE", "DECODE_AND_MERGE_SLASHES"])
@pytest.mark.parametrize("target", ["/admin%00", "/a%00/../admin"])
def test_escaped_nul_is_rejected_in_every_mode(gateway, upstream, mode, target):
    gw, ups = start(gateway, upstream, mode)
    status, name = fetch(gw, target)
    assert status == 400 and name is None
    entry = gw.log_entry(lambda e: e.get("response_code") == 400)
    assert entry["response_code_details"] == "path_normalization_failed"
    assert not ups["admin"].requests and not ups["public"].requests


@pytest.mark.parametrize("target", ["/%%36%31dmin", "/adm%2%46in", "/100%"])
def test_a_percent_that_starts_no_escape_is_rejected(gateway, upstream, target):
    """Left in place it pairs with what decoding produces beside it (`%%36%31` -> `%61`): an escape no
    policy saw, which the upstream decodes."""
    gw, ups = start(gateway, upstream, "DECODE_AND_MERGE_SLASHES")
    assert fetch(gw, target) == (400, None)
    assert gw.log_entry(lambda e: e.get("response_code") == 400)["response_code_details"] == "path_normalization_failed"
    assert not ups["admin"].requests and not ups["public"].requests


def test_http2_paths_are_normalized_too(gateway, upstream):
    gw, ups = start(gateway, upstream, "MERGE_SLASHES")
    with H2Client(gw.port) as client:
        ok, bad = client.wait(client.request("GET", "//public/..//admin"), client.request("GET", "/x%00"))
    assert ok.status == 200 and ok.header("x-upstream-name") == "admin"
    assert seen_path(ups, "admin") == "/admin"
    assert bad.status == 400
