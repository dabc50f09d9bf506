"""HTTPRewrite: uri (prefix rewrite), authority, uriRegexRewrite."""
from __future__ import annotations

from harness import config as cfg
from harness.upstream import echo_of


def start(gateway, upstream, http):
    up = upstream("backend")
    return gateway(cfg.simple_backend(up, http)), up


def test_prefix_rewrite_replaces_the_matched_prefix(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(match={"uri": {"prefix": "/old/"}}, rewrite={"uri": "/new/"}),
        cfg.route(match={"uri": {"prefix": "/api/"}}, rewrite={"uri": "/"}),
    ])
    echo = echo_of(gw.get("/old/a/b?x=1&y=2"))
    assert echo.target == "/new/a/b?x=1&y=2"
    echo = echo_of(gw.get("/api/users/7"))
    assert echo.target == "/users/7"


def test_exact_match_rewrite_replaces_the_whole_path(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(match={"uri": {"exact": "/login"}}, rewrite={"uri": "/auth/v2/login"}),
    ])
    echo = echo_of(gw.get("/login?next=/home"))
    assert echo.path == "/auth/v2/login"
    assert echo["query"] == {"next": ["/home"]}


def test_no_rewrite_forwards_the_path_unchanged(gateway, upstream):
    gw, _ = start(gateway, upstream, [cfg.route()])
    echo = echo_of(gw.get("/keep/this/path?and=query"))
    assert echo.target == "/keep/this/path?and=query"


def test_authority_rewrite(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(match={"uri": {"prefix": "/auth"}}, rewrite={"authority": "internal.example"}),
        cfg.route(),
    ])
    echo = echo_of(gw.get("/auth/x", headers={"Host": "public.example.com"}))
    assert echo.header_values("host") == ["internal.example"]
    assert echo.path == "/auth/x", "an authority-only rewrite keeps the path"
    echo = echo_of(gw.get("/plain", headers={"Host": "public.example.com"}))
    assert echo.header_values("host") == ["public.example.com"], "without rewrite, Host is passed through"


def test_prefix_and_authority_rewrite_together(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(match={"uri": {"prefix": "/v1/"}}, rewrite={"uri": "/v2/", "authority": "v2.internal"}),
    ])
    echo = echo_of(gw.get("/v1/items?page=3"))
    assert echo.target == "/v2/items?page=3"
    assert echo.header("host") == "v2.internal"


def test_uri_regex_rewrite(gateway, upstream):
    gw, _ = start(gateway, upstream, [
        cfg.route(match={"uri": {"prefix": "/users/"}},
                  rewrite={"uriRegexRewrite": {"match": "^/users/([^/]+)/profile$", "rewrite": "/profiles/\\1"}}),
    ])
    echo = echo_of(gw.get("/users/42/profile"))
    assert echo.path == "/profiles/42"
    echo = echo_of(gw.get("/users/abc/profile?v=1"))
    assert echo.path == "/profiles/abc"
    assert echo["query"] == {"v": ["1"]}, "the query string is not part of a regex rewrite"
    echo = echo_of(gw.get("/users/42/settings"))
    assert echo.path == "/users/42/settings", "a regex that does not match leaves the path alone"


def test_uri_regex_rewrite_replaces_every_match(gateway, upstream):
    """Envoy's regex_rewrite substitutes all matches (RE2 GlobalReplace)."""
    gw, _ = start(gateway, upstream, [
        cfg.route(match={"uri": {"prefix": "/"}}, rewrite={"uriRegexRewrite": {"match": "-", "rewrite": "/"}}),
    ])
    echo = echo_of(gw.get("/a-b-c"))
    assert echo.path == "/a/b/c"
