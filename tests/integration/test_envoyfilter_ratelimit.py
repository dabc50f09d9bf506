"""Istio's "Enabling rate limits using Envoy" local rate limit recipe, as written for an ingress gateway:
an EnvoyFilter inserting ``envoy.filters.http.local_ratelimit`` (one token bucket for the gateway, or per
route through ``typed_per_filter_config``) limits as Envoy would: ``max_tokens`` at once, refilled at
``tokens_per_fill`` per ``fill_interval``, 429 ``local_rate_limited`` with ``x-envoy-ratelimited`` and the
configured ``response_headers_to_add``, applied only to the ``filter_enabled`` share. Any other
EnvoyFilter that would apply to the gateway is refused naming what is not supported; sidecar ones load
and do nothing, as in Istio."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from harness import config as cfg
from harness.gateway import run_cli

LABELS = {"labels": {"istio": "ingressgateway"}}

BUCKET = """
              token_bucket:
                max_tokens: {max_tokens}
                tokens_per_fill: {max_tokens}
                fill_interval: 60s"""

ENFORCED = """
              filter_enabled:
                runtime_key: local_rate_limit_enabled
                default_value:
                  numerator: 100
                  denominator: HUNDRED
              filter_enforced:
                runtime_key: local_rate_limit_enforced
                default_value:
                  numerator: 100
                  denominator: HUNDRED
              response_headers_to_add:
              - append_action: OVERWRITE_IF_EXISTS_OR_ADD
                header:
                  key: x-local-rate-limit
                  value: 'true'"""

# Istio's recipe for the ingress gateway: context GATEWAY, the filter in the HTTP connection manager.
GATEWAY_FILTER = """\
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: filter-local-ratelimit-gw
  namespace: istio-system
spec:
  workloadSelector:
    labels:
      istio: ingressgateway
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: GATEWAY
        listener:
          filterChain:
            filter:
              name: "envoy.filters.network.http_connection_manager"
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.filters.http.local_ratelimit
          typed_config:
            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
            type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            value:
              stat_prefix: http_local_rate_limiter{bucket}{enforced}
"""

ROUTE_PATCH = """\
    - applyTo: HTTP_ROUTE
      match:
        context: GATEWAY
        routeConfiguration:
          vhost:
            name: "*:{port}"
            route:
              name: {route}
              action: ANY
      patch:
        operation: MERGE
        value:
          typed_per_filter_config:
            envoy.filters.http.local_ratelimit:
              "@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              value:
                stat_prefix: http_local_rate_limiter_{route}{bucket}{enforced}
"""


def indent(text: str, spaces: int) -> str:
    return "\n".join((" " * spaces + line) if line else line for line in text.splitlines())


def gateway_filter(max_tokens: int | None = 4, enforced: bool = True) -> str:
    bucket = BUCKET.format(max_tokens=max_tokens) if max_tokens else ""
    return GATEWAY_FILTER.format(bucket=bucket, enforced=ENFORCED if enforced else "")


def route_patch(port: int, route: str, max_tokens: int) -> str:
    return ROUTE_PATCH.format(port=port, route=route, bucket=indent(BUCKET.format(max_tokens=max_tokens), 2),
                              enforced=indent(ENFORCED, 2))


def routed(upstream):
    up = upstream("backend")
    return up, cfg.simple_backend(up, [
        cfg.route(cfg.destination(), name="api", match=[{"uri": {"prefix": "/api"}}]),
        cfg.route(cfg.destination(), name="rest")])


def parallel(gw, path: str, count: int) -> list[httpx.Response]:
    def one(_):
        with httpx.Client(base_url=gw.url, timeout=10) as client:
            return client.get(path)
    with ThreadPoolExecutor(max_workers=12) as pool:
        return list(pool.map(one, range(count)))


def test_the_gateway_wide_recipe_limits_every_request_as_envoy_would(gateway, upstream):
    up, resources = routed(upstream)
    gw = gateway(resources, files={"ratelimit.yaml": gateway_filter(max_tokens=4)}, bootstrap=LABELS)
    responses = parallel(gw, "/api/x", 10)
    assert sorted(r.status_code for r in responses) == [200] * 4 + [429] * 6
    assert len(up.requests) == 4
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.text == "local_rate_limited"
    assert refused.headers["x-local-rate-limit"] == "true"
    assert refused.headers["x-envoy-ratelimited"] == "true"
    # Without enable_x_ratelimit_headers, Envoy adds no x-ratelimit-* headers, and no retry-after.
    assert "x-ratelimit-limit" not in refused.headers and "retry-after" not in refused.headers
    # One bucket for the whole gateway: another route is limited by the same one.
    assert gw.get("/elsewhere").status_code == 429
    entry = gw.log_entry(lambda e: e["response_code"] == 429)
    assert entry["response_flags"] == "RL" and entry["response_code_details"] == "local_rate_limited"
    assert entry["ratelimit"] == "istio-system/filter-local-ratelimit-gw/http_local_rate_limiter remaining=0"


def test_the_per_route_recipe_limits_that_route_with_its_own_bucket(gateway, upstream):
    up, resources = routed(upstream)
    gw = gateway(resources, start=False, bootstrap=LABELS)
    # The filter with no bucket of its own (Istio's per-route recipe), and a bucket for route "api".
    text = gateway_filter(max_tokens=None, enforced=False) + route_patch(gw.port, "api", 2)
    (gw.config_paths[0] / "ratelimit.yaml").write_text(text)
    gw.start()
    assert [gw.get("/api/x").status_code for _ in range(3)] == [200, 200, 429]
    assert [gw.get("/other").status_code for _ in range(5)] == [200] * 5


def test_a_per_route_bucket_replaces_the_gateway_wide_one_on_its_route(gateway, upstream):
    up, resources = routed(upstream)
    gw = gateway(resources, start=False, bootstrap=LABELS)
    text = gateway_filter(max_tokens=1) + route_patch(gw.port, "api", 3)
    (gw.config_paths[0] / "ratelimit.yaml").write_text(text)
    gw.start()
    assert [gw.get("/api/x").status_code for _ in range(4)] == [200, 200, 200, 429]
    # The route's requests took nothing from the gateway-wide bucket.
    assert [gw.get("/other").status_code for _ in range(2)] == [200, 429]


def test_without_filter_enabled_the_recipe_limits_nothing_as_in_envoy(gateway, upstream):
    up, resources = routed(upstream)
    gw = gateway(resources, files={"ratelimit.yaml": gateway_filter(max_tokens=1, enforced=False)}, bootstrap=LABELS)
    assert [gw.get("/api/x").status_code for _ in range(3)] == [200] * 3
    assert "filter_enabled is unset or 0%" in gw.stderr_text() + gw.stdout_text()


def test_an_envoyfilter_the_gateway_would_not_enforce_is_refused_naming_the_field(config_dir):
    lua = """\
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: lua, namespace: istio-system}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    match: {context: GATEWAY}
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.lua
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
  - applyTo: CLUSTER
    match: {context: ANY}
    patch: {operation: MERGE}
"""
    cfg.write_config(config_dir, [cfg.bootstrap("-")])
    (config_dir / "lua.yaml").write_text(lua)
    result = run_cli(["validate", "--config", str(config_dir)])
    assert result.returncode == 1
    out = result.stdout
    assert "lua.yaml:13:" in out and "spec.configPatches[0].patch.value.name: \"envoy.filters.http.lua\": only Istio's local rate limit recipe is enforced" in out
    assert "spec.configPatches[1].applyTo: applyTo CLUSTER is not supported" in out


def test_descriptors_in_the_filters_own_configuration_are_refused_rather_than_ignored(config_dir):
    text = gateway_filter(max_tokens=4).replace("              stat_prefix: http_local_rate_limiter",
                                                "              stat_prefix: http_local_rate_limiter\n"
                                                "              descriptors:\n"
                                                "              - entries: [{key: path, value: /x}]")
    cfg.write_config(config_dir, [cfg.bootstrap("-", labels={"istio": "ingressgateway"})])
    (config_dir / "ratelimit.yaml").write_text(text)
    result = run_cli(["validate", "--config", str(config_dir)])
    assert result.returncode == 1
    assert "typed_config.value.descriptors: descriptors are supported in a per-route configuration" in result.stdout


def test_sidecar_and_other_workloads_envoyfilters_load_and_do_nothing(gateway, upstream):
    sidecar = gateway_filter(max_tokens=1).replace("context: GATEWAY", "context: SIDECAR_INBOUND")
    other = gateway_filter(max_tokens=1).replace("istio: ingressgateway", "app: productpage").replace(
        "name: filter-local-ratelimit-gw", "name: productpage-limit")
    up, resources = routed(upstream)
    gw = gateway(resources, files={"sidecar.yaml": sidecar.replace("filter-local-ratelimit-gw", "sidecar-limit"),
                                   "other.yaml": other}, bootstrap=LABELS)
    assert [gw.get("/api/x").status_code for _ in range(3)] == [200] * 3
    logs = gw.stderr_text() + gw.stdout_text()
    assert "applies to sidecars" in logs


DESCRIPTOR_ROUTE = """\
    - applyTo: HTTP_ROUTE
      match:
        context: GATEWAY
        routeConfiguration:
          vhost:
            name: "*:{port}"
            route:
              name: api
      patch:
        operation: MERGE
        value:
          route:
            rate_limits:
            - actions:
              - request_headers:
                  header_name: ":path"
                  descriptor_key: path
          typed_per_filter_config:
            envoy.filters.http.local_ratelimit:
              "@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              value:
                stat_prefix: api
                token_bucket: {{max_tokens: 3, tokens_per_fill: 3, fill_interval: 60s}}
                descriptors:
                - entries:
                  - key: path
                    value: /api/limited
                  token_bucket: {{max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s}}
                filter_enabled: {{default_value: {{numerator: 100, denominator: HUNDRED}}}}
                filter_enforced: {{default_value: {{numerator: 100, denominator: HUNDRED}}}}{always_consume}
"""


def test_route_descriptors_give_a_path_its_own_bucket_and_the_route_bucket_takes_every_request(gateway, upstream):
    up, resources = routed(upstream)
    gw = gateway(resources, start=False, bootstrap=LABELS)
    (gw.config_paths[0] / "ratelimit.yaml").write_text(
        gateway_filter(max_tokens=None, enforced=False) + DESCRIPTOR_ROUTE.format(port=gw.port, always_consume=""))
    gw.start()
    # The descriptor's bucket (1) refuses the second; each request also took from the route's bucket (3).
    assert [gw.get("/api/limited").status_code for _ in range(2)] == [200, 429]
    assert [gw.get("/api/other").status_code for _ in range(3)] == [200, 200, 429]
    assert gw.log_for_path("/api/limited")["ratelimit"] is not None


def test_without_always_consume_the_route_bucket_takes_only_what_no_descriptor_took(gateway, upstream):
    up, resources = routed(upstream)
    gw = gateway(resources, start=False, bootstrap=LABELS)
    (gw.config_paths[0] / "ratelimit.yaml").write_text(
        gateway_filter(max_tokens=None, enforced=False)
        + DESCRIPTOR_ROUTE.format(port=gw.port, always_consume="\n                always_consume_default_token_bucket: false"))
    gw.start()
    assert [gw.get("/api/limited").status_code for _ in range(2)] == [200, 429]
    assert [gw.get("/api/other").status_code for _ in range(4)] == [200, 200, 200, 429]
