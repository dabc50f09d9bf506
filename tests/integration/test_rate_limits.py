"""RateLimitPolicy (gatehouse.dev/v1alpha1): token-bucket limits and calendar quotas per key, enforced
in the memory store. A refused request gets Envoy's local rate limit reply (429 ``local_rate_limited``,
flag RL) with ``x-ratelimit-*`` and ``retry-after``; allowed ones carry the limit headers too unless the
policy switches them off. Parallel clients on any event loop never get more than the limit allows, a
shadow rule only counts and logs, a refused request counts against no rule, and a reload keeps the
counters of the rules it leaves unchanged."""
from __future__ import annotations

import json
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx

from harness import config as cfg
from harness.admin import admin_get, samples, wait_for_sample
from harness.gateway import free_port, run_cli
from harness.h2client import H2Client

HOUR_BUCKET = {"requests": 10, "unit": "Hour", "burst": 10}


def limited_gateway(gateway, upstream, rules, admin: bool = False, **spec):
    up = upstream("backend")
    bootstrap = {"admin": {"address": "127.0.0.1", "port": free_port()}} if admin else None
    gw = gateway(cfg.simple_backend(up, [cfg.route(cfg.destination(), name="to-backend")])
                 + [cfg.rate_limit_policy("limits", rules, **spec)], bootstrap=bootstrap,
                 extra_args=["--no-watch-config"])
    if admin:
        gw.admin = bootstrap["admin"]["port"]
    return gw, up


def fresh_get(gw, path: str, headers: dict | None = None) -> httpx.Response:
    """A GET on a connection of its own: each may land on another event loop."""
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        return client.get(path, headers=headers or {})


def parallel(gw, path: str, count: int, headers: dict | None = None) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda _: fresh_get(gw, path, headers), range(count)))


def test_a_parallel_burst_gets_exactly_the_limit_whatever_loop_it_lands_on(gateway, upstream):
    gw, up = limited_gateway(gateway, upstream, [{"name": "per-ip", "key": ["source.ip"], "limit": HOUR_BUCKET}])
    responses = parallel(gw, "/burst", 60)
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10 and statuses.count(429) == 50, statuses
    assert len(up.requests) == 10
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.text == "local_rate_limited"
    assert refused.headers["x-ratelimit-limit"] == "10"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    # 10 per hour: the next token comes within 6 minutes, the bucket is full again within the hour.
    assert 1 <= int(refused.headers["retry-after"]) <= 360
    assert 3000 <= int(refused.headers["x-ratelimit-reset"]) <= 3600
    entries = gw.access_log_lines(min_count=60)
    limited = [e for e in entries if e["response_code"] == 429]
    assert len(limited) == 50
    assert {e["response_flags"] for e in limited} == {"RL"}
    assert {e["response_code_details"] for e in limited} == {"local_rate_limited"}
    assert {e["ratelimit"] for e in limited} == {"istio-system/limits/per-ip remaining=0"}
    allowed = sorted(e["ratelimit"] for e in entries if e["response_code"] == 200)
    assert allowed == sorted(f"istio-system/limits/per-ip remaining={n}" for n in range(10))


def test_allowed_responses_carry_the_limit_headers(gateway, upstream):
    gw, _ = limited_gateway(gateway, upstream, [{"name": "per-ip", "key": ["source.ip"], "limit": HOUR_BUCKET}])
    first = gw.get("/a")
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit"] == "10" and first.headers["x-ratelimit-remaining"] == "9"
    assert int(first.headers["x-ratelimit-reset"]) >= 1
    assert "retry-after" not in first.headers
    assert gw.get("/a").headers["x-ratelimit-remaining"] == "8"


def test_the_allowed_response_headers_can_be_switched_off(gateway, upstream):
    gw, _ = limited_gateway(gateway, upstream, [{"name": "per-ip", "key": ["source.ip"],
                                                 "limit": {"requests": 1, "unit": "Hour", "burst": 1}}],
                            allowedResponseHeaders=False)
    first = gw.get("/a")
    assert first.status_code == 200 and "x-ratelimit-limit" not in first.headers
    refused = gw.get("/a")
    assert refused.status_code == 429 and refused.headers["x-ratelimit-limit"] == "1"


def test_the_key_separates_clients_and_a_request_without_it_is_not_limited(gateway, upstream):
    gw, _ = limited_gateway(gateway, upstream, [{"name": "per-key", "key": ["request.headers[x-api-key]"],
                                                 "limit": {"requests": 2, "unit": "Hour", "burst": 2}}])
    alice, bob = {"x-api-key": "alice"}, {"x-api-key": "bob"}
    assert [gw.get("/", headers=alice).status_code for _ in range(3)] == [200, 200, 429]
    assert gw.get("/", headers=bob).status_code == 200
    # No key: the rule does not apply (documented; a rule with an empty key limits every request).
    assert [gw.get("/").status_code for _ in range(4)] == [200] * 4
    assert "x-ratelimit-limit" not in gw.get("/").headers


def test_a_match_limits_only_the_requests_it_names(gateway, upstream):
    gw, _ = limited_gateway(gateway, upstream, [{
        "name": "api-writes", "key": ["source.ip"], "limit": {"requests": 1, "unit": "Hour", "burst": 1},
        "match": {"to": [{"operation": {"paths": ["/api/*"], "methods": ["POST"]}}]}}])
    assert gw.request("POST", "/api/items").status_code == 200
    assert gw.request("POST", "/api/items").status_code == 429
    assert gw.get("/api/items").status_code == 200
    assert gw.request("POST", "/other").status_code == 200


def test_a_shadow_rule_counts_and_logs_but_never_refuses(gateway, upstream):
    gw, up = limited_gateway(gateway, upstream, [{"name": "trial", "key": ["source.ip"], "shadow": True,
                                                  "limit": {"requests": 2, "unit": "Hour", "burst": 2}}], admin=True)
    assert [gw.get(f"/s{i}").status_code for i in range(4)] == [200] * 4
    assert len(up.requests) == 4
    # Shadow figures are not the client's business: no headers from a shadow rule.
    assert "x-ratelimit-limit" not in gw.get("/s4").headers
    assert gw.log_for_path("/s3")["ratelimit"] == "istio-system/limits/trial remaining=0 shadow_limited"
    assert gw.log_for_path("/s1")["ratelimit"] is None
    rule = "istio-system/limits/trial"
    assert wait_for_sample(gw.admin, "gatehouse_ratelimit_requests_total", {"rule": rule, "outcome": "shadow_limited"},
                           at_least=3) == 3
    assert wait_for_sample(gw.admin, "gatehouse_ratelimit_requests_total", {"rule": rule, "outcome": "allowed"}) == 2
    status, text = admin_get(gw.admin, "/config_dump")
    assert status == 200
    assert json.loads(text)["rate_limits"] == [{"rule": rule, "limit": "limit 2/hour, burst 2", "key": ["source.ip"],
                                                "shadow": True, "match": False, "allowed_response_headers": True}]


def test_every_matching_rule_applies_and_a_refused_request_counts_against_none(gateway, upstream):
    gw, _ = limited_gateway(gateway, upstream, [
        {"name": "daily", "key": ["source.ip"], "quota": {"requests": 100, "period": "Day"}},
        {"name": "slow-path", "key": ["source.ip"], "limit": {"requests": 2, "unit": "Hour", "burst": 2},
         "match": {"to": [{"operation": {"paths": ["/slow"]}}]}},
    ], admin=True)
    statuses = [gw.get("/slow").status_code for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    # The quota counted the two requests that went through, not the three refused: 97 left after this one.
    other = gw.get("/other")
    assert other.status_code == 200 and other.headers["x-ratelimit-remaining"] == "97"
    assert other.headers["x-ratelimit-limit"] == "100"
    # The day's end, in UTC.
    now = time.time()
    assert abs(int(other.headers["x-ratelimit-reset"]) - (86400 - now % 86400)) <= 2
    assert gw.log_for_path("/other")["ratelimit"] == "istio-system/limits/daily remaining=97"
    metrics = {(labels["rule"], labels["outcome"]): value
               for labels, value in samples(gw.admin, "gatehouse_ratelimit_requests_total")}
    assert metrics[("istio-system/limits/slow-path", "limited")] == 3
    assert metrics[("istio-system/limits/daily", "allowed")] == 6


def test_a_reload_keeps_the_counters_of_unchanged_rules(gateway, upstream):
    up = upstream("backend")
    per_ip = {"name": "per-ip", "key": ["source.ip"], "limit": {"requests": 2, "unit": "Hour", "burst": 2}}
    policy = lambda *rules: cfg.to_yaml(cfg.rate_limit_policy("limits", rules))
    gw = gateway(cfg.simple_backend(up), files={"limits.yaml": policy(per_ip)}, extra_args=["--no-watch-config"])
    assert [gw.get("/").status_code for _ in range(3)] == [200, 200, 429]

    def reload(text: str, version: int) -> None:
        (gw.config_paths[0] / "limits.yaml").write_text(text)
        gw.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while f"reloaded: version {version}" not in gw.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"reloaded: version {version}" in gw.stderr_text(), gw.describe()

    # Another rule added before it, this one unchanged: still exhausted.
    reload(policy({"name": "extra", "quota": {"requests": 1000, "period": "Day"}}, per_ip), 2)
    assert gw.get("/").status_code == 429
    # Its limit changed: a new counter.
    reload(policy(dict(per_ip, limit={"requests": 3, "unit": "Hour", "burst": 3})), 3)
    assert [gw.get("/").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_a_refused_grpc_request_is_answered_trailers_only_with_unavailable(gateway, upstream):
    gw, _ = limited_gateway(gateway, upstream, [{"name": "one", "limit": {"requests": 1, "unit": "Hour", "burst": 1}}])
    assert gw.get("/").status_code == 200
    refused = gw.request("POST", "/pkg.Service/Method", headers={"content-type": "application/grpc"}, content=b"")
    assert refused.status_code == 200
    assert refused.headers["grpc-status"] == "14" and refused.headers["grpc-message"] == "local_rate_limited"
    assert refused.headers["x-ratelimit-remaining"] == "0"


def test_http2_streams_are_limited_by_the_same_counters_as_http1_requests(gateway, upstream):
    gw, up = limited_gateway(gateway, upstream, [{"name": "per-ip", "key": ["source.ip"], "limit": HOUR_BUCKET}])
    assert [gw.get("/h1").status_code for _ in range(4)] == [200] * 4
    with H2Client(gw.port) as client:
        streams = [client.request("GET", f"/h2/{i}") for i in range(8)]
        responses = client.wait(*streams)
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] * 6 + [429] * 2, statuses
    refused = next(r for r in responses if r.status == 429)
    assert refused.body == b"local_rate_limited" and refused.header("x-ratelimit-remaining") == "0"
    assert int(refused.header("retry-after")) >= 1
    allowed = next(r for r in responses if r.status == 200)
    assert allowed.header("x-ratelimit-limit") == "10"
    assert len(up.requests) == 10


def test_requests_no_route_takes_are_limited_too(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up, [cfg.route(cfg.destination(), match=[{"uri": {"prefix": "/app"}}])])
                 + [cfg.rate_limit_policy("limits", [{"name": "per-ip", "key": ["source.ip"],
                                                      "limit": {"requests": 2, "unit": "Hour", "burst": 2}}])])
    assert [gw.get("/nowhere").status_code for _ in range(3)] == [404, 404, 429]
    assert gw.get("/app").status_code == 429


def test_explain_names_the_rule_that_would_limit_and_what_is_left(gateway, upstream):
    gw, _ = limited_gateway(gateway, upstream, [
        {"name": "per-key", "key": ["request.headers[x-api-key]"], "limit": {"requests": 100, "unit": "Minute", "burst": 20}},
        {"name": "writes", "key": ["source.ip"], "limit": {"requests": 5, "unit": "Second"},
         "match": {"to": [{"operation": {"methods": ["POST"]}}]}},
    ])
    result = run_cli(["explain", "--config", str(gw.config_paths[0]), "-H", "x-api-key: k1",
                      f"http://127.0.0.1:{gw.port}/x"])
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "ratelimit: 2 rule(s) of istio-system/limits" in out
    assert 'istio-system/limits/per-key (limit 100/minute, burst 20): key "k1": 19 of 100 left after this request' in out
    assert "istio-system/limits/writes (limit 5/second, burst 5): no match, match.to[0].operation.methods did not match" in out
    result = run_cli(["explain", "--config", str(gw.config_paths[0]), f"http://127.0.0.1:{gw.port}/x"])
    assert "per-key (limit 100/minute, burst 20): not applied: the request lacks request.headers[x-api-key]" in result.stdout


def test_allowed_responses_carry_the_gateways_figures_over_the_upstreams(gateway, upstream):
    gw, _ = limited_gateway(gateway, upstream, [{"name": "per-ip", "key": ["source.ip"], "limit": HOUR_BUCKET}])
    # The upstream sends its own figures (any case): the client sees the gateway's, once each; other
    # x-ratelimit-* fields pass through.
    response = gw.get("/x?resp_header=X-RateLimit-Limit:999&resp_header=x-ratelimit-remaining:998"
                      "&resp_header=x-ratelimit-policy:upstream")
    assert response.status_code == 200
    assert response.headers.get_list("x-ratelimit-limit") == ["10"]
    assert response.headers.get_list("x-ratelimit-remaining") == ["9"]
    assert response.headers.get_list("x-ratelimit-reset") == ["360"]
    assert response.headers["x-ratelimit-policy"] == "upstream"


def test_explain_admin_reads_a_running_gateways_memory_counters(gateway, upstream, tmp_path):
    rule = {"name": "per-key", "key": ["request.headers[x-api-key]"], "limit": {"requests": 3, "unit": "Hour", "burst": 3}}
    gw, _ = limited_gateway(gateway, upstream, [rule], admin=True)
    k1 = {"x-api-key": "k1"}

    def explain(config=gw.config_paths[0]):
        result = run_cli(["explain", "--config", str(config), "--admin", f"127.0.0.1:{gw.admin}",
                          "-H", "x-api-key: k1", f"http://127.0.0.1:{gw.port}/x"])
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    head = 'istio-system/limits/per-key (limit 3/hour, burst 3): key "k1": '
    out = explain()
    assert f"figures from the gateway 127.0.0.1:{gw.admin} counters as they are now" in out
    assert head + "2 of 3 left after this request" in out
    assert [fresh_get(gw, "/x", k1).status_code for _ in range(2)] == [200, 200]
    assert head + "0 of 3 left after this request" in explain()
    # Explaining takes nothing: the gateway still lets the third request through, and then refuses.
    assert fresh_get(gw, "/x", k1).status_code == 200
    out = explain()
    assert head + "EXHAUSTED, refuses with 429" in out
    assert 'result:    429 "local_rate_limited"' in out
    assert fresh_get(gw, "/x", k1).status_code == 429

    # The endpoint itself: the counter's state by the rule's identity; a key never counted is null.
    identity = "istio-system/limits/per-key|request.headers[x-api-key]|limit:3/3600000000000ns/3"
    status, text = admin_get(gw.admin, f"/ratelimit_counters?rule={quote(identity, safe='')}&key=k1")
    assert status == 200 and json.loads(text)["state"] > 0, text
    status, text = admin_get(gw.admin, f"/ratelimit_counters?rule={quote(identity, safe='')}&key=k2")
    assert (status, json.loads(text)["state"]) == (200, None)
    assert admin_get(gw.admin, "/ratelimit_counters?rule=x")[0] == 400
    status, text = admin_get(gw.admin, "/ratelimit_counters?rule=%zz&key=k1")
    assert status == 400 and "is not NAME=VALUE with %-escapes" in text
    status, text = admin_get(gw.admin, "/ratelimit_counters?rule=x&key=k1&who=me")
    assert status == 400 and 'unknown parameter "who"' in text
    result = run_cli(["explain", "--config", str(gw.config_paths[0]), "--admin", "no-port",
                      f"http://127.0.0.1:{gw.port}/x"])
    assert result.returncode != 0 and "--admin must be HOST:PORT, got no-port" in result.stdout + result.stderr

    # A configuration the gateway has not loaded (another limit) names a rule it does not run: said so,
    # with a first request's figures, never another rule's count.
    changed = tmp_path / "changed"
    shutil.copytree(gw.config_paths[0], changed)
    for file in changed.glob("*.yaml"):
        file.write_text(file.read_text().replace("requests: 3", "requests: 4"))
    out = explain(changed)
    assert "(limit 4/hour, burst 3)" in out and "2 of 4 left after this request" in out
    assert (f"(the gateway 127.0.0.1:{gw.admin} counters cannot be read: 404 the gateway runs no rule "
            "istio-system/limits/per-key|request.headers[x-api-key]|limit:4/") in out
