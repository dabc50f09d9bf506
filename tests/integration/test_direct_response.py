"""HTTPDirectResponse: the gateway answers by itself with a status and an optional body."""
from __future__ import annotations

import base64

import pytest

from harness import config as cfg


@pytest.fixture
def setup(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up, [
        cfg.action("directResponse", {"status": 200, "body": {"string": "hello from the gateway"}},
                   name="hello", match={"uri": {"exact": "/hello"}}),
        cfg.action("directResponse", {"status": 503, "body": {"string": "down for maintenance"}},
                   match={"uri": {"prefix": "/maintenance"}}),
        cfg.action("directResponse", {"status": 418}, match={"uri": {"exact": "/teapot"}}),
        cfg.action("directResponse", {"status": 204}, match={"uri": {"exact": "/empty"}}),
        cfg.action("directResponse", {"status": 200, "body": {"bytes": base64.b64encode(b"\x00\x01bin").decode()}},
                   match={"uri": {"exact": "/bytes"}}),
        cfg.route(),
    ]))
    return gw, up


def test_status_and_body(setup):
    gw, up = setup
    r = gw.get("/hello")
    assert r.status_code == 200
    assert r.text == "hello from the gateway"
    assert r.headers.get("content-length") == str(len("hello from the gateway"))
    r = gw.request("POST", "/maintenance/x", content=b"ignored")
    assert r.status_code == 503
    assert r.text == "down for maintenance"
    assert len(up.requests) == 0


def test_status_without_body(setup):
    gw, _ = setup
    r = gw.get("/teapot")
    assert r.status_code == 418
    assert r.content == b""
    r = gw.get("/empty")
    assert r.status_code == 204
    assert r.content == b""


def test_bytes_body(setup):
    gw, _ = setup
    r = gw.get("/bytes")
    assert r.status_code == 200
    assert r.content == b"\x00\x01bin"


def test_other_paths_still_proxied(setup):
    gw, up = setup
    r = gw.get("/proxied")
    assert r.status_code == 200
    assert r.headers["x-upstream-name"] == "backend"


def test_direct_response_is_logged(setup):
    gw, _ = setup
    gw.get("/hello")
    entry = gw.log_for_path("/hello")
    assert entry["response_code"] == 200
    assert entry["response_flags"] == "-"
    assert entry["route_name"] == "hello"
    assert entry["upstream_host"] is None
    assert entry["upstream_cluster"] is None
    assert entry["bytes_sent"] == len("hello from the gateway")
