"""HTTPRedirect: default 301, redirectCode, uri, scheme, port, authority; the query is kept."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from harness import config as cfg

HOST = "www.example.com"


@pytest.fixture
def gw(gateway, upstream):
    up = upstream("backend")
    return gateway(cfg.simple_backend(up, [
        cfg.action("redirect", {"uri": "/new-place"}, match={"uri": {"exact": "/moved"}}),
        cfg.action("redirect", {"uri": "/t", "redirectCode": 302}, match={"uri": {"prefix": "/temp"}}),
        cfg.action("redirect", {"uri": "/p", "redirectCode": 308}, match={"uri": {"prefix": "/perm"}}),
        cfg.action("redirect", {"uri": "/s", "redirectCode": 307}, match={"uri": {"prefix": "/seven"}}),
        cfg.action("redirect", {"scheme": "https", "port": 8443}, match={"uri": {"prefix": "/secure"}}),
        cfg.action("redirect", {"authority": "other.example.com"}, match={"uri": {"prefix": "/elsewhere"}}),
        cfg.action("redirect", {"authority": "all.example.net", "uri": "/all", "scheme": "https",
                                "redirectCode": 302}, match={"uri": {"prefix": "/everything"}}),
        cfg.route(),
    ]))


def redirect(gw, path: str):
    response = gw.get(path, headers={"Host": HOST}, follow_redirects=False)
    location = response.headers.get("location")
    assert location, f"no Location on {response.status_code} for {path}"
    return response, location, urlsplit(location)


def test_default_code_is_301_and_uri_replaces_the_path(gw):
    response, location, url = redirect(gw, "/moved")
    assert response.status_code == 301
    assert url.path == "/new-place"
    assert url.hostname in (None, HOST), location
    if url.scheme:
        assert url.scheme == "http"


def test_query_is_kept(gw):
    response, location, url = redirect(gw, "/moved?a=1&b=two")
    assert response.status_code == 301
    assert url.path == "/new-place"
    assert parse_qs(url.query) == {"a": ["1"], "b": ["two"]}, location


@pytest.mark.parametrize("path, code, target", [("/temp/x", 302, "/t"), ("/perm", 308, "/p"),
                                                 ("/seven", 307, "/s")])
def test_redirect_code(gw, path, code, target):
    response, _, url = redirect(gw, path)
    assert response.status_code == code
    assert url.path == target


def test_scheme_and_port(gw):
    response, location, url = redirect(gw, "/secure/area?x=1")
    assert response.status_code == 301
    assert url.scheme == "https", location
    assert url.hostname == HOST, location
    assert url.port == 8443, location
    assert url.path == "/secure/area", "without uri the path is kept"
    assert parse_qs(url.query) == {"x": ["1"]}


def test_authority(gw):
    response, location, url = redirect(gw, "/elsewhere/page?q=1")
    assert response.status_code == 301
    assert url.hostname == "other.example.com", location
    assert url.path == "/elsewhere/page"
    assert parse_qs(url.query) == {"q": ["1"]}


def test_everything_at_once(gw):
    response, location, url = redirect(gw, "/everything/x?k=v")
    assert response.status_code == 302
    assert url.scheme == "https" and url.hostname == "all.example.net" and url.path == "/all", location
    assert parse_qs(url.query) == {"k": ["v"]}


def test_redirect_does_not_reach_the_upstream_and_is_logged(gw):
    response, _, _ = redirect(gw, "/moved")
    entry = gw.log_for_path("/moved")
    assert entry["response_code"] == 301
    assert entry["upstream_host"] is None
    assert entry["response_flags"] == "-"
