"""Traps an attacker can use against a config that looks right (issue 12): a regex that gives up must
not let the request through to another route, a DENY on a host without its port (Istio's semantics, kept)
is flagged by validate and explained, and with two valid tokens the identity that was authorized is the
one whose claims reach the upstream."""
from __future__ import annotations

import pytest

from harness import config as cfg
from harness import jwt_keys as keys
from harness.admin import wait_for_sample
from harness.gateway import free_port, run_cli
from harness.jwt_keys import ISSUER

EVENTS = "gatehouse_downstream_protection_events_total"


def validate(config_dir):
    result = run_cli(["validate", "--config", str(config_dir)])
    return result.returncode, result.stdout + result.stderr


# ---------------------------------------------------------------------------------- regex limits


def blocking_route_gateway(gateway, upstream, admin=None):
    """`/files/<name>` with a name made of word groups is blocked (403); everything else is served."""
    up = upstream("backend")
    routes = [
        cfg.action("directResponse", {"status": 403, "body": {"string": "blocked"}}, name="block",
                   match={"uri": {"regex": "/files/(\\w+\\s?)*"}}),
        cfg.route(cfg.destination(), name="rest"),
    ]
    bootstrap = {"admin": {"port": admin}} if admin else None
    return cfg.simple_backend(up, routes), up, bootstrap


def test_a_regex_that_hits_its_match_limit_refuses_the_request(gateway, upstream):
    admin = free_port()
    resources, up, bootstrap = blocking_route_gateway(gateway, upstream, admin)
    gw = gateway(resources, bootstrap=bootstrap)
    assert gw.get("/files/readme").text == "blocked"
    hostile = "/files/" + "a" * 64 + "%21"     # almost matches: PCRE2 backtracks until its limit
    response = gw.get(hostile)
    assert response.status_code == 400, "undecided is not 'no match': the next route must not take it"
    assert up.requests == []
    entry = gw.log_for_path(hostile)
    assert entry["response_code_details"] == "regex_match_limit_exceeded"
    assert wait_for_sample(admin, EVENTS, {"event": "regex_match_limit"}) >= 1
    assert gw.get("/other").status_code == 200


def test_validate_warns_about_nested_quantifiers(gateway, upstream, config_dir):
    resources, _, _ = blocking_route_gateway(gateway, upstream)
    cfg.write_config(config_dir, [cfg.bootstrap("-"), cfg.gateway(free_port()), *resources])
    code, out = validate(config_dir)
    assert code == 0, out
    warning = next(line for line in out.splitlines() if "regex" in line)
    assert "spec.http[0].match[0].uri.regex" in warning and "nested quantifiers" in warning, warning


# ------------------------------------------------------------------------------ hosts and ports


HOST_DENY = cfg.authorization_policy("deny-a", {"action": "DENY",
                                                "rules": [{"to": [{"operation": {"hosts": ["a.test"]}}]}]})


def test_deny_on_a_host_without_port_keeps_istios_semantics_and_is_flagged(gateway, upstream, config_dir):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up) + [HOST_DENY])
    assert gw.get("/", headers={"Host": "a.test"}).status_code == 403
    assert gw.get("/", headers={"Host": "a.test:8080"}).status_code == 200, "Istio matches hosts port included"

    code, out = validate(gw.config_paths[0])
    assert code == 0, out
    warning = next(line for line in out.splitlines() if "2021-008" in line)
    assert "spec.rules[0].to[0].operation.hosts[0]" in warning and '"a.test:*"' in warning

    result = run_cli(["explain", "--config", str(gw.config_paths[0]), f"http://a.test:8080/", "--port", str(gw.port)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'carries a port' in result.stdout and '"a.test:*"' in result.stdout, result.stdout


# ------------------------------------------------------------------------------------ two tokens


def test_with_two_tokens_the_authorized_identity_is_the_forwarded_one(gateway, upstream):
    up = upstream("backend")
    authn = cfg.request_authentication("jwt", [{
        "issuer": ISSUER, "jwks": keys.jwks(), "outputClaimToHeaders": [{"header": "x-user", "claim": "sub"}]}])
    only_alice = cfg.authorization_policy("alice-only", {"rules": [{"from": [{"source": {
        "requestPrincipals": [f"{ISSUER}/alice"]}}]}]})
    gw = gateway(cfg.simple_backend(up) + [authn, only_alice])
    alice, bob = keys.RSA.sign(sub="alice"), keys.RSA.sign(sub="bob")
    response = gw.get(f"/two?access_token={bob}", headers={"Authorization": f"Bearer {alice}"})
    assert response.status_code == 200
    assert up.requests[-1].header_values("x-user") == ["alice"]
    assert gw.log_entry(lambda e: e.get("path", "").startswith("/two"))["request_principal"] == f"{ISSUER}/alice"
    # The other way round, bob is the identity: refused, and nothing of alice's is used.
    response = gw.get(f"/swap?access_token={alice}", headers={"Authorization": f"Bearer {bob}"})
    assert response.status_code == 403
