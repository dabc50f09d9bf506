"""``gatehouse explain``: a described request goes through the dispatcher that serves traffic, and the
report names the normalized path, the JWT outcome, each policy rule tried and why, the decision and the
route. Its verdict must be what the running gateway does with the same request."""
from __future__ import annotations

import pytest

from harness import config as cfg
from harness import jwt_keys as keys
from harness.gateway import run_cli
from harness.jwt_keys import ISSUER

POLICIES = [
    cfg.authorization_policy("deny-admin", {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}),
    cfg.authorization_policy("allow-api", {"rules": [
        {"to": [{"operation": {"methods": ["GET"]}}]},
        {"from": [{"source": {"requestPrincipals": [f"{ISSUER}/*"]}}]}]}),
    cfg.request_authentication("jwt", [{"issuer": ISSUER, "jwks": keys.jwks()}]),
]


@pytest.fixture
def served(gateway, upstream):
    up = upstream("backend")
    return gateway(cfg.simple_backend(up, [cfg.route(cfg.destination(), name="to-backend")]) + POLICIES)


def explain(gw, *args: str) -> tuple[int, str]:
    result = run_cli(["explain", "--config", str(gw.config_paths[0]), *args])
    return result.returncode, result.stdout + result.stderr


def test_a_denial_names_the_normalized_path_and_the_rule(served):
    code, out = explain(served, f"http://127.0.0.1:{served.port}/public/%2e%2e/admin")
    assert code == 0, out
    assert "path:      /admin  (BASE normalization)" in out
    assert "DENY  istio-system/deny-admin[rule 0]: MATCHED" in out
    assert "decision:  denied by istio-system/deny-admin[rule 0]" in out
    assert 'result:    403 "RBAC: access denied"' in out


def test_why_each_rule_did_not_match(served):
    code, out = explain(served, "-X", "POST", f"http://127.0.0.1:{served.port}/items")
    assert "ALLOW istio-system/allow-api[rule 0]: no match, to[0].operation.methods did not match" in out
    assert "ALLOW istio-system/allow-api[rule 1]: no match, from[0].source.requestPrincipals did not match" in out
    assert "default-deny" in out


def test_jwt_outcomes_and_the_route(served):
    code, out = explain(served, "-X", "POST", "--jwt", keys.EC.sign(), f"http://127.0.0.1:{served.port}/items")
    assert f"jwt:       verified by istio-system/jwt[jwtRules 0]: request principal {ISSUER}/alice" in out
    assert "decision:  allowed by istio-system/allow-api[rule 1]" in out
    assert "route:     to-backend" in out and "result:    forwarded to outbound|" in out
    code, out = explain(served, "--jwt", keys.RSA.sign(exp=1), f"http://127.0.0.1:{served.port}/items")
    assert "jwt:       refused: Jwt is expired" in out and "result:    401" in out


@pytest.mark.parametrize("method,path,token", [
    ("GET", "/admin", None), ("GET", "/./items", None), ("POST", "/items", None), ("POST", "/items", "valid"),
    ("GET", "/items", "expired"), ("DELETE", "/a/../admin", "valid"),
])
def test_explain_agrees_with_the_gateway(served, method, path, token):
    jwt = {"valid": keys.RSA.sign(), "expired": keys.RSA.sign(exp=1), None: None}[token]
    args = ["-X", method] + (["--jwt", jwt] if jwt else []) + [f"http://127.0.0.1:{served.port}{path}"]
    code, out = explain(served, *args)
    result_line = next(line for line in out.splitlines() if line.startswith("result:"))
    headers = [("Authorization", f"Bearer {jwt}")] if jwt else []
    with served.raw() as conn:
        live = conn.request(method, path, headers=headers, host=f"127.0.0.1:{served.port}")
    expected = "forwarded" if live.status == 200 else str(live.status)
    assert expected in result_line, f"{result_line} vs live {live.status}"


def test_bad_arguments_are_errors(served):
    code, out = explain(served, "not-a-url")
    assert code == 1 and "expected an absolute http(s) URL" in out
    code, out = explain(served, "http://127.0.0.1:1/x")
    assert code == 1 and "no listener on port 1" in out
    code, out = explain(served, "-H", "no-colon", "http://x/")
    assert code != 0 and "is not of the form" in out
