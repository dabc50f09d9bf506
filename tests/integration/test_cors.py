"""VirtualService ``corsPolicy``, as Envoy's CORS filter applies it: the gateway answers a preflight from an
allowed origin itself; an actual request from an allowed origin gets the CORS headers on its response; an
origin not allowed gets none (and its preflight goes on to the upstream, unless unmatchedPreflights is
IGNORE)."""
from __future__ import annotations

from harness import config as cfg

POLICY = {"allowOrigins": [{"exact": "https://app.example.com"}, {"regex": r"https://.*\.partner\.example"}],
          "allowMethods": ["GET", "POST"], "allowHeaders": ["authorization", "x-trace"],
          "exposeHeaders": ["x-request-id"], "maxAge": "24h", "allowCredentials": True}


def with_cors(gateway, up, policy):
    return gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(up)]),
                    cfg.virtual_service("main", [cfg.route(corsPolicy=policy)])])


def preflight(origin):
    return {"origin": origin, "access-control-request-method": "POST"}


def test_an_allowed_preflight_is_answered_by_the_gateway(gateway, upstream):
    up = upstream()
    gw = with_cors(gateway, up, POLICY)
    response = gw.request("OPTIONS", "/api", headers=preflight("https://eu.partner.example"))
    assert response.status_code == 200 and response.content == b""
    assert response.headers["access-control-allow-origin"] == "https://eu.partner.example"
    assert response.headers["access-control-allow-methods"] == "GET,POST"
    assert response.headers["access-control-allow-headers"] == "authorization,x-trace"
    assert response.headers["access-control-max-age"] == "86400"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert up.requests == []
    assert gw.log_for_path("/api")["response_code_details"] == "cors_response"


def test_an_allowed_actual_request_gets_the_cors_headers(gateway, upstream):
    up = upstream()
    gw = with_cors(gateway, up, POLICY)
    response = gw.get("/data", headers={"origin": "https://app.example.com"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert response.headers["access-control-expose-headers"] == "x-request-id"
    assert response.headers["access-control-allow-credentials"] == "true"


def test_an_origin_not_allowed_gets_no_cors_headers_and_its_preflight_is_forwarded(gateway, upstream):
    up = upstream()
    gw = with_cors(gateway, up, POLICY)
    response = gw.get("/data", headers={"origin": "https://evil.example"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
    forwarded = gw.request("OPTIONS", "/pre", headers=preflight("https://evil.example"))
    assert "access-control-allow-origin" not in forwarded.headers
    assert [r.method for r in up.requests] == ["GET", "OPTIONS"]


def test_unmatched_preflights_can_be_ignored(gateway, upstream):
    up = upstream()
    gw = with_cors(gateway, up, dict(POLICY, unmatchedPreflights="IGNORE"))
    response = gw.request("OPTIONS", "/pre", headers=preflight("https://evil.example"))
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
    assert up.requests == []
