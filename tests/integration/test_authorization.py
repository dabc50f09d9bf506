"""AuthorizationPolicy through the real gateway (reference §5 and the advisories of §7): denials are
403 ``RBAC: access denied`` with Envoy's details, the deciding policy is logged and counted, and a DENY
on a path or host holds for every spelling of it."""
from __future__ import annotations

import signal
import time

import pytest

from harness import config as cfg
from harness.admin import wait_for_sample
from harness.gateway import free_port
from harness.h2client import H2Client

DENIED = b"RBAC: access denied"


def start(gateway, upstream, *policies, bootstrap=None):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up) + list(policies), bootstrap=bootstrap)
    return gw, up


def deny(name: str, rule: dict) -> dict:
    return cfg.authorization_policy(name, {"action": "DENY", "rules": [rule]})


def raw_status(gw, target: str, headers=None, host="gatehouse.test"):
    with gw.raw() as conn:
        response = conn.request("GET", target, headers=headers, host=host)
    return response.status, response.body


DENY_ADMIN = deny("deny-admin", {"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]})


@pytest.mark.parametrize("target", [
    "/admin", "/admin/", "/admin/x", "/public/../admin", "/./admin", "/%61dmin", "/%2e%2e/admin",
    "/public/%2E%2E/admin", "/admin?x=1", "/admin#frag", "/admin#/../public", "/public\\..\\admin",
])
def test_deny_on_admin_holds_for_every_spelling(gateway, upstream, target):
    """CVE-2019-9901, CVE-2020-8595, CVE-2021-39156: normalized before the policy looks."""
    gw, up = start(gateway, upstream, DENY_ADMIN)
    status, body = raw_status(gw, target)
    assert (status, body) == (403, DENIED), target
    assert not up.requests
    entry = gw.log_entry(lambda e: e.get("response_code") == 403)
    assert entry["authz_policy"] == "istio-system/deny-admin[rule 0]"
    assert entry["response_code_details"] == "rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-admin]-rule[0]]"
    assert entry["response_flags"] == "-"


@pytest.mark.parametrize("mode,targets", [
    ("MERGE_SLASHES", ["//admin", "///admin/x", "/public/..//admin"]),
    ("DECODE_AND_MERGE_SLASHES", ["/%2Fadmin", "/%2fadmin", "/%5Cadmin", "//%2F/admin", "/admin%2Fx"]),
])
def test_slash_tricks_are_denied_when_slashes_are_normalized(gateway, upstream, mode, targets):
    """CVE-2021-31920: the spellings BASE leaves alone are caught by the modes Istio recommends."""
    gw, up = start(gateway, upstream, DENY_ADMIN, bootstrap={"pathNormalization": mode})
    for target in targets:
        assert raw_status(gw, target) == (403, DENIED), target
    assert raw_status(gw, "/public")[0] == 200
    assert len(up.requests) == 1


def test_hosts_are_case_insensitive_and_port_sensitive(gateway, upstream):
    """CVE-2021-39155 (case) and the `host:*` advice for ports; a trailing dot is the same name."""
    gw, up = start(gateway, upstream,
                   deny("deny-secret", {"to": [{"operation": {"hosts": ["secret.example.com"]}}]}),
                   deny("deny-ported", {"to": [{"operation": {"hosts": ["ported.example.com", "ported.example.com:*"]}}]}))
    assert raw_status(gw, "/", host="Secret.Example.COM")[0] == 403
    assert raw_status(gw, "/", host="secret.example.com.")[0] == 403
    assert raw_status(gw, "/", host="secret.example.com:80")[0] == 200, "Istio's hosts match the port too"
    assert raw_status(gw, "/", host="ported.example.com:80")[0] == 403
    assert raw_status(gw, "/", host="PORTED.example.com.:8080")[0] == 403
    assert raw_status(gw, "/", host="other.example.com")[0] == 200


def test_every_value_of_a_repeated_header_is_checked(gateway, upstream):
    """CVE-2026-26308: `x-role: user` + `x-role: admin` must not slip past a DENY on admin."""
    gw, up = start(gateway, upstream,
                   deny("deny-admin-role", {"when": [{"key": "request.headers[x-role]", "values": ["admin"]}]}))
    assert raw_status(gw, "/", headers=[("x-role", "user"), ("x-role", "admin")])[0] == 403
    assert raw_status(gw, "/", headers=[("X-Role", "admin")])[0] == 403
    assert raw_status(gw, "/", headers=[("x-role", "user")])[0] == 200


def test_allow_policies_deny_what_they_do_not_match(gateway, upstream):
    admin = free_port()
    gw, up = start(gateway, upstream,
                   cfg.authorization_policy("local-gets", {"rules": [
                       {"from": [{"source": {"ipBlocks": ["127.0.0.0/8"]}}], "to": [{"operation": {"methods": ["GET"]}}]}]}),
                   cfg.authorization_policy("never", {"rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}),
                   bootstrap={"admin": {"port": admin}})
    assert gw.get("/").status_code == 200
    response = gw.request("POST", "/", content=b"x")
    assert (response.status_code, response.content) == (403, DENIED)
    entry = gw.log_entry(lambda e: e.get("method") == "POST")
    assert entry["authz_policy"] == "default-deny"
    assert entry["response_code_details"] == "rbac_access_denied_matched_policy[none]"
    assert gw.log_entry(lambda e: e.get("method") == "GET")["authz_policy"] == "istio-system/local-gets[rule 0]"
    name = "gatehouse_authz_decisions_total"
    assert wait_for_sample(admin, name, {"policy": "istio-system/local-gets", "decision": "allow"}) == 1
    assert wait_for_sample(admin, name, {"policy": "default-deny", "decision": "deny"}) == 1


def test_allow_nothing(gateway, upstream):
    gw, up = start(gateway, upstream, cfg.authorization_policy("allow-nothing", {}))
    assert raw_status(gw, "/anything") == (403, DENIED)
    assert gw.log_entry(lambda e: e.get("response_code") == 403)["authz_policy"] == "allow-nothing"


def test_policies_in_other_namespaces_or_for_other_workloads_do_not_apply(gateway, upstream):
    gw, up = start(gateway, upstream,
                   cfg.authorization_policy("elsewhere", {}, namespace="apps"),
                   cfg.authorization_policy("reviews-only", {"selector": {"matchLabels": {"app": "reviews"}}}))
    assert gw.get("/").status_code == 200


def test_remote_ip_honours_trusted_proxies(gateway, upstream):
    gw, up = start(gateway, upstream,
                   deny("deny-net", {"from": [{"source": {"remoteIpBlocks": ["203.0.113.0/24"]}}]}),
                   bootstrap={"numTrustedProxies": 1})
    assert raw_status(gw, "/", headers=[("X-Forwarded-For", "198.51.100.1, 203.0.113.9")])[0] == 403
    assert raw_status(gw, "/", headers=[("X-Forwarded-For", "203.0.113.9, 198.51.100.1")])[0] == 200, \
        "only the entry the trusted proxy appended is the client"
    assert raw_status(gw, "/")[0] == 200


def test_remote_ip_ignores_forwarded_for_without_trusted_proxies(gateway, upstream):
    gw, up = start(gateway, upstream, deny("deny-net", {"from": [{"source": {"remoteIpBlocks": ["203.0.113.0/24"]}}]}))
    assert raw_status(gw, "/", headers=[("X-Forwarded-For", "203.0.113.9")])[0] == 200, "a client cannot pick its IP"


def test_ports_pick_the_listener(gateway, upstream):
    gw, up = start(gateway, upstream,
                   cfg.authorization_policy("other-port", {"rules": [{"to": [{"operation": {"ports": ["1"]}}]}]}))
    assert raw_status(gw, "/")[0] == 403, "an ALLOW for another port still denies this one"


def test_http2_requests_are_checked_the_same_way(gateway, upstream):
    gw, up = start(gateway, upstream, DENY_ADMIN)
    with H2Client(gw.port) as client:
        denied, allowed = client.wait(client.request("GET", "/public/../admin"), client.request("GET", "/public"))
    assert (denied.status, denied.body) == (403, DENIED)
    assert allowed.status == 200
    assert [r.path for r in up.requests] == ["/public"]


def test_a_denial_happens_before_routing(gateway, upstream):
    """Envoy's rbac filter runs before the router: no route does not turn a 403 into a 404."""
    up = upstream("backend")
    gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(up)]),
                  cfg.virtual_service("main", [cfg.route(cfg.destination(), match={"uri": {"prefix": "/app"}})]),
                  DENY_ADMIN])
    assert raw_status(gw, "/admin")[0] == 403
    assert raw_status(gw, "/nothing-here")[0] == 404


POLICY_FILE = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: guard, namespace: istio-system}}
spec:
  action: DENY
  rules: [{{to: [{{operation: {{paths: ["{path}"]}}}}]}}]
"""


def wait_for_stderr(gw, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in gw.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    return gw.stderr_text()


def test_policies_reload_and_a_bad_one_keeps_the_last_good(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), files={"policy.yaml": POLICY_FILE.format(path="/one")})
    assert raw_status(gw, "/one")[0] == 403 and raw_status(gw, "/two")[0] == 200
    policy = gw.config_paths[0] / "policy.yaml"
    policy.write_text(POLICY_FILE.format(path="/two"))
    gw.send_signal(signal.SIGHUP)
    assert "reloaded: version 2" in wait_for_stderr(gw, "reloaded: version 2")
    assert raw_status(gw, "/one")[0] == 200 and raw_status(gw, "/two")[0] == 403
    policy.write_text(POLICY_FILE.format(path="/three/{**}/{*}"))
    gw.send_signal(signal.SIGHUP)
    stderr = wait_for_stderr(gw, "reload rejected")
    assert "policy.yaml:6:" in stderr and "{**} must be the last operator" in stderr
    assert raw_status(gw, "/two")[0] == 403, "the last good policies keep being enforced"
