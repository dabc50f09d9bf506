"""The ``redis`` rate-limit store (Bootstrap ``rateLimitStore: {type: redis, url, failureMode, timeout}``):
every counter lives in one real ``redis-server``, so gateways sharing it enforce one combined limit. Each
request's rules are taken in one atomic Lua script; while Redis answers, the request waits with its body
unread (HTTP/1.1) or held within the stream's window (HTTP/2). When Redis cannot answer, ``failureMode``
decides (allow: let through; deny: 500 with flag RLSE), with one log line each way and metrics, and the
gateway enforces again once Redis is back."""
from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from harness import config as cfg
from harness.admin import admin_get, samples, wait_for_sample
from harness.certs import CA
from harness.gateway import free_port, run_cli
from harness.h2client import H2Client

HOUR_BUCKET = {"requests": 6, "unit": "Hour", "burst": 6}
PER_IP = {"name": "per-ip", "key": ["source.ip"], "limit": HOUR_BUCKET}


def redis_gateway(gateway, up, url: str, rules=(PER_IP,), **store):
    admin = free_port()
    bootstrap = {"admin": {"address": "127.0.0.1", "port": admin},
                 "rateLimitStore": {"type": "redis", "url": url, **store}}
    gw = gateway(cfg.simple_backend(up, [cfg.route(cfg.destination(), name="to-backend")])
                 + [cfg.rate_limit_policy("limits", list(rules))], bootstrap=bootstrap, extra_args=["--no-watch-config"])
    gw.admin = admin
    return gw


def fresh_get(gw, path: str = "/", headers: dict | None = None) -> httpx.Response:
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        return client.get(path, headers=headers or {})


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)


def test_two_gateways_sharing_one_redis_enforce_one_combined_limit(gateway, upstream, redis_server):
    redis = redis_server()
    up = upstream("backend")
    first, second = redis_gateway(gateway, up, redis.url), redis_gateway(gateway, up, redis.url)
    # Alternating between the gateways: one bucket of 6, counted down across both. Half-way, Redis forgets
    # its scripts (as after a restart or SCRIPT FLUSH): the gateways send theirs again and nothing is lost.
    responses = [fresh_get(gw) for gw in [first, second] * 2]
    assert redis.cli("SCRIPT", "FLUSH") == "OK"
    responses += [fresh_get(gw) for gw in [first, second] * 2]
    assert [r.status_code for r in responses] == [200] * 6 + [429] * 2
    assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["5", "4", "3", "2", "1", "0", "0", "0"]
    refused = responses[-1]
    assert refused.text == "local_rate_limited"
    assert refused.headers["x-ratelimit-limit"] == "6"
    assert 1 <= int(refused.headers["retry-after"]) <= 600
    assert len(up.requests) == 6
    # The counter is one key in Redis, which expires once the bucket would be full again (at the latest
    # an hour after the last take), with a second's grace.
    keys = redis.cli("--scan", "--pattern", "gatehouse:rl:*").split()
    assert len(keys) == 1 and keys[0].endswith(":127.0.0.1")
    assert 0 < int(redis.cli("PTTL", keys[0])) <= 3_600_000 + 1_000 + 1_000
    entry = second.log_entry(lambda e: e["response_code"] == 429)
    assert entry["response_flags"] == "RL" and entry["ratelimit"] == "istio-system/limits/per-ip remaining=0"


def test_a_parallel_burst_across_two_gateways_gets_exactly_the_limit(gateway, upstream, redis_server):
    redis = redis_server()
    up = upstream("backend")
    gateways = [redis_gateway(gateway, up, redis.url), redis_gateway(gateway, up, redis.url)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda i: fresh_get(gateways[i % 2], "/burst").status_code, range(40)))
    assert statuses.count(200) == 6 and statuses.count(429) == 34, statuses
    assert len(up.requests) == 6


def test_a_quota_is_counted_per_calendar_period_in_redis(gateway, upstream, redis_server):
    redis = redis_server()
    up = upstream("backend")
    quota = {"name": "daily", "key": ["request.headers[x-api-key]"], "quota": {"requests": 3, "period": "Day"}}
    first, second = (redis_gateway(gateway, up, redis.url, rules=[quota]) for _ in range(2))
    alice = {"x-api-key": "alice"}
    statuses = [fresh_get(gw, headers=alice).status_code for gw in [first, second, first, second]]
    assert statuses == [200, 200, 200, 429]
    assert fresh_get(first, headers={"x-api-key": "bob"}).headers["x-ratelimit-remaining"] == "2"
    # One key per API key and day, expiring a little after the day ends (UTC).
    key = redis.cli("--scan", "--pattern", "gatehouse:rl:*:alice:*")
    day_start = int(key.rsplit(":", 1)[1])
    assert day_start % 86_400 == 0 and day_start <= time.time() < day_start + 86_400
    assert redis.cli("GET", key) == "3"
    expires_in = int(redis.cli("PTTL", key)) / 1000
    assert day_start + 86_400 - time.time() < expires_in <= day_start + 86_400 + 300 - time.time() + 1


def test_a_refusal_by_a_later_rule_takes_nothing_and_a_shadow_rule_only_counts(gateway, upstream, redis_server):
    redis = redis_server()
    up = upstream("backend")
    watch = {"name": "watch", "key": ["request.headers[x-api-key]"], "quota": {"requests": 1, "period": "Day"},
             "shadow": True}
    daily = {"name": "daily", "key": ["request.headers[x-api-key]"], "quota": {"requests": 2, "period": "Day"}}
    gw = redis_gateway(gateway, up, redis.url, rules=[PER_IP, watch, daily])
    alice = {"x-api-key": "alice"}
    # The second request exhausts the shadow quota (counted, let through); the third the daily one.
    assert [fresh_get(gw, headers=alice).status_code for _ in range(3)] == [200, 200, 429]
    # In Redis: the shadow rule counted the one request it allowed, the daily quota two; the refused
    # request took nothing from the bucket before it, so a client without the key (to whom neither
    # quota applies) finds 6 - 2 requests left in it.
    keys = redis.cli("--scan", "--pattern", "gatehouse:rl:*:alice:*").split()
    assert sorted(redis.cli("GET", key) for key in keys) == ["1", "2"]
    assert [fresh_get(gw).status_code for _ in range(5)] == [200] * 4 + [429]
    assert len(up.requests) == 2 + 4


def test_redis_stopped_mid_test_lets_requests_through_then_limits_again(gateway, upstream, redis_server):
    redis = redis_server()
    up = upstream("backend")
    gw = redis_gateway(gateway, up, redis.url)
    assert [fresh_get(gw).status_code for _ in range(7)] == [200] * 6 + [429]
    redis.stop()
    # failureMode allow (the default): unlimited while Redis is away, each request logged as such.
    assert [fresh_get(gw).status_code for _ in range(5)] == [200] * 5
    entry = gw.log_entry(lambda e: e.get("ratelimit") == "istio-system/limits/per-ip store_unavailable")
    assert entry["response_code"] == 200
    assert wait_for_sample(gw.admin, "gatehouse_ratelimit_store_failure_mode_total", {"outcome": "allowed"}, at_least=5)
    assert samples(gw.admin, "gatehouse_ratelimit_store_up")[0][1] == 0
    logs = gw.stderr_text() + gw.stdout_text()
    assert logs.count(f"rate-limit store {redis.url}/0 unavailable") == 1, logs
    assert "failureMode allow: requests pass unlimited" in logs
    # Back on the same port, empty: the gateway reconnects within its back-off and counts afresh.
    redis.start()
    wait_until(lambda: fresh_get(gw).headers.get("x-ratelimit-remaining") is not None)
    assert wait_until(lambda: fresh_get(gw).status_code == 429, timeout=10)
    assert "answers again: limits are enforced" in gw.stderr_text() + gw.stdout_text()
    assert samples(gw.admin, "gatehouse_ratelimit_store_up")[0][1] == 1


def test_a_slow_redis_times_requests_out_to_failure_mode_and_a_stalled_connection_is_replaced(
        gateway, upstream, redis_server):
    redis = redis_server()
    up = upstream("backend")
    gw = redis_gateway(gateway, up, redis.url, timeout="100ms")
    assert fresh_get(gw).headers["x-ratelimit-remaining"] == "5"
    # Redis busy for 3 s (a slow script, a fork, a network stall): each request waits its 100 ms, then
    # goes on unlimited; the connection, owing replies for more than 20 × 100 ms, is dropped.
    sleeper = threading.Thread(target=lambda: subprocess.run(
        ["redis-cli", "-p", str(redis.port), "DEBUG", "SLEEP", "3"], capture_output=True, timeout=20))
    sleeper.start()
    time.sleep(0.2)
    started = time.monotonic()
    response = fresh_get(gw)
    assert response.status_code == 200 and "x-ratelimit-remaining" not in response.headers
    assert time.monotonic() - started < 1.5
    assert wait_for_sample(gw.admin, "gatehouse_ratelimit_store_errors_total", {"reason": "timeout"})
    wait_until(lambda: "no answer within 100 ms" in gw.stderr_text() + gw.stdout_text())
    sleeper.join()
    # Answering again, on a new connection: the count goes on where Redis has it.
    assert wait_until(lambda: fresh_get(gw).headers.get("x-ratelimit-remaining") is not None)
    assert "answers again: limits are enforced" in gw.stderr_text() + gw.stdout_text()
    # The stalled connection was dropped (and a new one made), not waited on.
    assert wait_for_sample(gw.admin, "gatehouse_ratelimit_store_errors_total", {"reason": "connection"})


def test_failure_mode_deny_refuses_with_500_until_redis_answers(gateway, upstream, redis_server, tmp_path):
    redis = redis_server()
    redis.stop()
    up = upstream("backend")
    # Redis is down at start: the gateway starts anyway and follows failureMode.
    gw = redis_gateway(gateway, up, redis.url, failureMode="deny", timeout="200ms")
    refused = fresh_get(gw)
    assert refused.status_code == 500
    entry = gw.log_for_path("/")
    assert entry["response_flags"] == "RLSE" and entry["response_code_details"] == "rate_limiter_error"
    assert entry["ratelimit"] == "istio-system/limits/per-ip store_unavailable"
    assert not up.requests
    assert wait_for_sample(gw.admin, "gatehouse_ratelimit_store_failure_mode_total", {"outcome": "denied"})
    redis.start()
    wait_until(lambda: fresh_get(gw).status_code == 200)
    assert len(up.requests) >= 1


def test_request_bodies_wait_for_redis_and_arrive_whole(gateway, upstream, redis_server):
    redis = redis_server()
    up = upstream("backend")
    rules = [{"name": "per-ip", "key": ["source.ip"], "limit": {"requests": 100, "unit": "Hour", "burst": 100}}]
    gw = redis_gateway(gateway, up, redis.url, rules=rules)
    body = bytes(range(256)) * 4096  # 1 MiB: more than any buffer between client and upstream
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        for _ in range(3):  # keep-alive: the connection goes on after each suspended request
            echoed = client.post("/upload", content=body).json()
            assert echoed["body_length"] == len(body)
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()
    # HTTP/2: the DATA that comes while Redis answers is held, then forwarded in order. The client sends
    # its whole first window (64 KiB, in frames of 16 KiB) at once, before any answer can have come.
    h2_body = body[:65_535]
    with H2Client(gw.port) as h2:
        stream = h2.request("POST", "/h2-upload", end=False)
        for start in range(0, len(h2_body), 16_384):
            h2.conn.send_data(stream, h2_body[start:start + 16_384], end_stream=start + 16_384 >= len(h2_body))
        h2._flush()
        response, = h2.wait(stream)
    assert response.status == 200 and response.header("x-ratelimit-limit") == "100"
    echoed = json.loads(response.body)
    assert echoed["body_length"] == len(h2_body)
    assert echoed["body_sha256"] == hashlib.sha256(h2_body).hexdigest()


def test_pipelined_requests_each_wait_for_redis_and_are_answered_in_order(gateway, upstream, redis_server):
    redis = redis_server()
    up = upstream("backend")
    rules = [{"name": "two", "key": ["source.ip"], "limit": {"requests": 2, "unit": "Hour", "burst": 2}}]
    gw = redis_gateway(gateway, up, redis.url, rules=rules)
    with gw.raw() as conn:
        conn.send(b"POST /one HTTP/1.1\r\nHost: gatehouse.test\r\nContent-Length: 3\r\n\r\nabc"
                  b"GET /two HTTP/1.1\r\nHost: gatehouse.test\r\n\r\n"
                  b"GET /three HTTP/1.1\r\nHost: gatehouse.test\r\n\r\n"
                  b"GET /four HTTP/1.1\r\nHost: gatehouse.test\r\n\r\n")
        responses = [conn.read_response() for _ in range(4)]
    assert [r.status for r in responses] == [200, 200, 429, 429]
    assert [r.json()["path"] for r in responses[:2]] == ["/one", "/two"]
    assert responses[0].json()["body_length"] == 3
    assert [r.path for r in up.requests] == ["/one", "/two"]


def test_a_refused_post_leaves_the_connection_usable(gateway, upstream, redis_server):
    redis = redis_server()
    up = upstream("backend")
    rules = [{"name": "one", "key": ["source.ip"], "limit": {"requests": 1, "unit": "Hour", "burst": 1}}]
    gw = redis_gateway(gateway, up, redis.url, rules=rules)
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        assert client.post("/a", content=b"x" * 100_000).status_code == 200
        refused = client.post("/b", content=b"y" * 100_000)
        assert refused.status_code == 429 and refused.text == "local_rate_limited"
        assert client.get("/c").status_code == 429
    assert len(up.requests) == 1


def test_auth_and_database_from_the_url(gateway, upstream, redis_server):
    redis = redis_server(password="s3cret")
    up = upstream("backend")
    gw = redis_gateway(gateway, up, f"redis://:s3cret@127.0.0.1:{redis.port}/2")
    assert fresh_get(gw).headers["x-ratelimit-remaining"] == "5"
    assert redis.cli("-n", "2", "DBSIZE") == "1" and redis.cli("-n", "0", "DBSIZE") == "0"
    status, dump = admin_get(gw.admin, "/config_dump")
    assert status == 200
    assert json.loads(dump)["settings"]["rate_limit_store"] == {
        "type": "redis", "url": f"redis://:***@127.0.0.1:{redis.port}/2", "failure_mode": "allow", "timeout_ms": 50}
    # A wrong password: Redis refuses the handshake, failureMode decides, the log says why (not the password).
    wrong = redis_gateway(gateway, up, f"redis://:not-it@127.0.0.1:{redis.port}/2")
    assert fresh_get(wrong).status_code == 200
    logs = wait_until(lambda: (lambda text: text if "refused AUTH: WRONGPASS" in text else None)(
        wrong.stderr_text() + wrong.stdout_text()))
    assert f"rate-limit store redis://:***@127.0.0.1:{redis.port}/2 unavailable" in logs
    assert "not-it" not in logs


def test_tls_to_redis_verifies_its_certificate(gateway, upstream, redis_server, tmp_path):
    ca = CA("Redis CA")
    ca_file = ca.write(tmp_path / "redis-ca.crt")
    cert, key = ca.issue("localhost", dns=["localhost"]).write(tmp_path, "redis")
    redis = redis_server(tls={"cert": str(cert), "key": str(key), "ca": str(ca_file)})
    up = upstream("backend")
    gw = redis_gateway(gateway, up, f"rediss://localhost:{redis.port}", caCertificates=str(ca_file))
    assert [fresh_get(gw).status_code for _ in range(7)] == [200] * 6 + [429]
    # Another CA's certificate is not Redis's: nothing is counted, failureMode decides.
    other = CA("Other CA").write(tmp_path / "other-ca.crt")
    untrusting = redis_gateway(gateway, up, f"rediss://localhost:{redis.port}", caCertificates=str(other))
    assert fresh_get(untrusting).status_code == 200
    wait_until(lambda: "unavailable" in untrusting.stderr_text() + untrusting.stdout_text())
    assert fresh_get(untrusting).headers.get("x-ratelimit-remaining") is None


def test_counters_outlive_a_restart_and_a_reload_that_keeps_the_rule(gateway, upstream, redis_server):
    redis = redis_server()
    up = upstream("backend")
    per_ip = {"name": "per-ip", "key": ["source.ip"], "limit": {"requests": 2, "unit": "Hour", "burst": 2}}
    policy = lambda *rules: cfg.to_yaml(cfg.rate_limit_policy("limits", rules))
    gw = gateway(cfg.simple_backend(up), files={"limits.yaml": policy(per_ip)}, extra_args=["--no-watch-config"],
                 bootstrap={"rateLimitStore": {"type": "redis", "url": redis.url}})
    assert [fresh_get(gw).status_code for _ in range(3)] == [200, 200, 429]
    # The counters are Redis's: a restarted gateway finds the client exhausted.
    assert gw.stop() == 0
    gw.start()
    assert fresh_get(gw).status_code == 429

    def reload(text: str, version: int) -> None:
        (gw.config_paths[0] / "limits.yaml").write_text(text)
        gw.send_signal(signal.SIGHUP)
        wait_until(lambda: f"reloaded: version {version}" in gw.stderr_text(), timeout=5)

    # Another rule added before it, this one unchanged: still exhausted.
    reload(policy({"name": "extra", "quota": {"requests": 1000, "period": "Day"}}, per_ip), 2)
    assert fresh_get(gw).status_code == 429
    # Its limit changed: other keys in Redis, a fresh bucket.
    reload(policy(dict(per_ip, limit={"requests": 3, "unit": "Hour", "burst": 3})), 3)
    assert [fresh_get(gw).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_explain_reads_the_counters_in_redis_without_taking(gateway, upstream, redis_server):
    redis = redis_server()
    up = upstream("backend")
    gw = redis_gateway(gateway, up, redis.url)
    assert [fresh_get(gw).status_code for _ in range(4)] == [200] * 4

    def explain() -> str:
        result = run_cli(["explain", "--config", str(gw.config_paths[0]), f"http://127.0.0.1:{gw.port}/x"])
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    out = explain()
    assert f"figures from the redis redis://127.0.0.1:{redis.port}/0 counters as they are now" in out
    assert 'istio-system/limits/per-ip (limit 6/hour, burst 6): key "127.0.0.1": 1 of 6 left after this request' in out
    assert "result:    forwarded to" in out
    # Explaining took nothing: the gateway still has two requests.
    assert [fresh_get(gw).status_code for _ in range(3)] == [200, 200, 429]
    out = explain()
    assert "EXHAUSTED, refuses with 429" in out
    assert 'result:    429 "local_rate_limited" (local_rate_limited, by the redis' in out


def test_bad_redis_settings_are_load_errors(config_dir):
    cfg.write_config(config_dir, [
        cfg.bootstrap("-", rateLimitStore={"type": "redis", "url": "redis://:hunter2@127.0.0.1:99999", "timeout": "30s"}),
    ])
    result = run_cli(["validate", "--config", str(config_dir)])
    assert result.returncode == 1
    assert "spec.rateLimitStore.url: expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or rediss://…, " \
           "got \"redis://:***@127.0.0.1:99999\": the port must be 1-65535" in result.stdout
    assert "hunter2" not in result.stdout
    assert "spec.rateLimitStore.timeout: must be between 1ms and 10s" in result.stdout
    cfg.write_config(config_dir, [cfg.bootstrap("-", rateLimitStore={"type": "redis"})])
    result = run_cli(["validate", "--config", str(config_dir)])
    assert "spec.rateLimitStore.url: required for a redis store" in result.stdout
    cfg.write_config(config_dir, [cfg.bootstrap("-", rateLimitStore={
        "type": "redis", "url": "redis://127.0.0.1", "caCertificates": "/nonexistent.pem"})])
    result = run_cli(["validate", "--config", str(config_dir)])
    assert "spec.rateLimitStore.caCertificates: only a rediss:// (TLS) URL takes caCertificates" in result.stdout
    cfg.write_config(config_dir, [cfg.bootstrap("-", rateLimitStore={
        "type": "redis", "url": "rediss://redis.internal", "caCertificates": "missing-ca.pem"})])
    result = run_cli(["validate", "--config", str(config_dir)])
    assert result.returncode == 1
    assert "spec.rateLimitStore.caCertificates: expected the path of a PEM file of CA certificates, " \
           "got \"missing-ca.pem\" (cannot read a certificate from" in result.stdout
