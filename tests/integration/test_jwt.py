"""RequestAuthentication through the real gateway, with tokens PyJWT signs (reference §6): valid tokens
give the request an identity, invalid ones get Envoy's 401, missing ones pass to authorization, and
tokens and claims reach the upstream only as configured."""
from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from harness import config as cfg
from harness import jwt_keys as keys
from harness.admin import wait_for_sample
from harness.gateway import free_port
from harness.jwt_keys import ISSUER


def rule(**fields) -> dict:
    out = {"issuer": ISSUER, "jwks": keys.jwks()}
    out.update(fields)
    return out


def start(gateway, upstream, *rules, policies=(), bootstrap=None):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up) + [cfg.request_authentication("jwt", list(rules or [rule()]))] + list(policies),
                 bootstrap=bootstrap)
    return gw, up


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("key,algorithm", [(keys.RSA, "RS256"), (keys.RSA, "PS256"), (keys.EC, "ES256"), (keys.ED, "EdDSA")])
def test_valid_tokens_authenticate_and_are_stripped(gateway, upstream, key, algorithm):
    gw, up = start(gateway, upstream)
    response = gw.get("/", headers=bearer(key.sign(algorithm=algorithm)))
    assert response.status_code == 200
    assert not up.requests[-1].has_header("authorization"), "forwardOriginalToken defaults to false"
    assert gw.log_entry(lambda e: e.get("response_code") == 200)["request_principal"] == f"{ISSUER}/alice"


@pytest.mark.parametrize("case,token,body", [
    ("expired", lambda: keys.RSA.sign(exp=int(time.time()) - 120), "Jwt is expired"),
    ("not yet valid", lambda: keys.RSA.sign(nbf=int(time.time()) + 600), "Jwt not yet valid"),
    ("bad signature", lambda: keys.OTHER_RSA.sign(), "Jwt verification fails"),
    ("tampered payload", lambda: tamper(keys.EC.sign()), "Jwt verification fails"),
    ("wrong audience", lambda: keys.RSA.sign(aud="other"), "Audiences in Jwt are not allowed"),
    ("unknown issuer", lambda: keys.RSA.sign(iss="https://evil.test"), "Jwt issuer is not configured"),
    ("unknown kid", lambda: keys.RSA.sign(kid="rotated-away"), "Jwks doesn't have key to match kid or alg from Jwt"),
    ("alg none", lambda: jwt.encode({"iss": ISSUER, "sub": "x"}, None, algorithm="none"), "Jwt header [alg] is not supported"),
    ("HMAC with the public key", lambda: hmac_confusion(), "Jwt header [alg] is not supported"),
    ("garbage", lambda: "not-a-jwt", "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"),
    ("oversized", lambda: keys.RSA.sign(pad="x" * 20000), "Jwt is too large"),
])
def test_invalid_tokens_get_401_with_envoys_message(gateway, upstream, case, token, body):
    gw, up = start(gateway, upstream, rule(audiences=["api"]))
    response = gw.get("/", headers=bearer(token()))
    assert response.status_code == 401, case
    assert response.text == body
    assert response.headers["www-authenticate"].startswith(f'Bearer realm="http://127.0.0.1:{gw.port}/"')
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert not up.requests
    entry = gw.log_entry(lambda e: e.get("response_code") == 401)
    assert entry["response_code_details"] == "jwt_authn_access_denied{" + body.replace(" ", "_") + "}"


def tamper(token: str) -> str:
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


def hmac_confusion() -> str:
    """The classic key-confusion forgery: HS256 keyed with the published RSA key."""
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"rsa-1"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps({"iss": ISSUER, "sub": "admin"}).encode()).rstrip(b"=").decode()
    return f"{head}.{body}.c2lnbmF0dXJl"


def test_no_token_passes_unless_a_policy_requires_one(gateway, upstream):
    gw, up = start(gateway, upstream)
    assert gw.get("/").status_code == 200
    assert gw.get("/", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 200, \
        "another auth scheme is not a bearer token"
    require = cfg.authorization_policy("require-jwt", {"rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]})
    gw2, up2 = start(gateway, upstream, policies=[require])
    assert gw2.get("/").status_code == 403
    assert gw2.get("/", headers=bearer(keys.RSA.sign())).status_code == 200


def test_claims_drive_authorization(gateway, upstream):
    policy = cfg.authorization_policy("admins", {"rules": [{
        "from": [{"source": {"requestPrincipals": [f"{ISSUER}/*"]}}],
        "when": [{"key": "request.auth.claims[groups]", "values": ["admins"]},
                 {"key": "request.auth.claims[org][tier]", "values": ["gold"]}]}]})
    gw, up = start(gateway, upstream, policies=[policy])
    good = keys.RSA.sign({"groups": ["dev", "admins"], "org": {"tier": "gold"}})
    assert gw.get("/", headers=bearer(good)).status_code == 200
    assert gw.get("/", headers=bearer(keys.RSA.sign({"groups": ["dev"], "org": {"tier": "gold"}}))).status_code == 403
    assert gw.get("/", headers=bearer(keys.RSA.sign({"groups": "admins", "org": {"tier": "silver"}}))).status_code == 403


def test_forwarding_and_output_headers(gateway, upstream):
    gw, up = start(gateway, upstream, rule(
        forwardOriginalToken=True, outputPayloadToHeader="x-jwt-payload",
        outputClaimToHeaders=[{"header": "x-jwt-sub", "claim": "sub"}, {"header": "x-jwt-tier", "claim": "org.tier"}]))
    token = keys.EC.sign({"org": {"tier": "gold"}})
    assert gw.get("/", headers={**bearer(token), "x-jwt-sub": "forged"}).status_code == 200
    seen = up.requests[-1]
    assert seen.header("authorization") == f"Bearer {token}"
    assert seen.header_values("x-jwt-sub") == ["alice"], "the claim replaces what the client sent"
    assert seen.header("x-jwt-tier") == "gold"
    payload = json.loads(base64.urlsafe_b64decode(seen.header("x-jwt-payload") + "=="))
    assert payload["sub"] == "alice" and payload["org"] == {"tier": "gold"}
    assert gw.get("/", headers={"x-jwt-sub": "forged"}).status_code == 200
    assert not up.requests[-1].has_header("x-jwt-sub"), "without a token a client cannot supply claim headers"


def test_configured_locations(gateway, upstream):
    gw, up = start(gateway, upstream, rule(fromHeaders=[{"name": "x-token", "prefix": "Token "}],
                                           fromParams=["jwt"], fromCookies=["session"]))
    token = keys.RSA.sign()
    assert gw.get("/", headers={"x-token": f"Token {token}"}).status_code == 200
    assert not up.requests[-1].has_header("x-token")
    assert gw.get(f"/?jwt={token}").status_code == 200
    assert gw.get("/", headers={"cookie": f"a=1; session={token}"}).status_code == 200
    assert gw.get("/", headers={"x-token": f"Token {keys.OTHER_RSA.sign()}"}).status_code == 401
    assert gw.get("/", headers=bearer(keys.OTHER_RSA.sign())).status_code == 200, \
        "Authorization is not a location once others are configured"


def test_jwks_from_a_file_uri(gateway, upstream, tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(keys.jwks(keys.ED))
    gw, up = start(gateway, upstream, {"issuer": ISSUER, "jwksUri": f"file://{path}"})
    assert gw.get("/", headers=bearer(keys.ED.sign())).status_code == 200
    assert gw.get("/", headers=bearer(keys.RSA.sign())).status_code == 401


class JWKSServer:
    """Serves the JWKS over HTTP; answers 503 until ``up`` is set."""

    def __init__(self):
        self.up = False
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                body = keys.jwks().encode() if outer.up else b"unavailable"
                self.send_response(200 if outer.up else 503)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_jwks_uri_down_fails_closed_then_recovers(gateway, upstream):
    server = JWKSServer()
    admin = free_port()
    try:
        gw, up = start(gateway, upstream, {"issuer": ISSUER, "jwksUri": f"http://127.0.0.1:{server.port}/jwks"},
                       bootstrap={"admin": {"port": admin}})
        token = keys.RSA.sign()
        response = gw.get("/", headers=bearer(token))
        assert (response.status_code, response.text) == (401, "Jwks remote fetch is failed")
        assert gw.get("/").status_code == 200, "requests without a token still pass"
        server.up = True
        deadline = time.monotonic() + 10
        while gw.get("/", headers=bearer(token)).status_code != 200:
            assert time.monotonic() < deadline, "keys never loaded after the JWKS endpoint came up"
            time.sleep(0.2)
        assert gw.running
        assert wait_for_sample(admin, "gatehouse_jwt_authentications_total", {"outcome": "authenticated"}) >= 1
    finally:
        server.close()


def test_jwks_uri_served_over_http(gateway, upstream):
    server = JWKSServer()
    server.up = True
    try:
        gw, up = start(gateway, upstream, {"issuer": ISSUER, "jwksUri": f"http://127.0.0.1:{server.port}/jwks"})
        assert gw.get("/", headers=bearer(keys.RSA.sign())).status_code == 200, "keys are fetched before listening"
    finally:
        server.close()


def test_http2_requests_are_authenticated_the_same_way(gateway, upstream):
    from harness.h2client import H2Client
    gw, up = start(gateway, upstream, rule(outputClaimToHeaders=[{"header": "x-jwt-sub", "claim": "sub"}]))
    with H2Client(gw.port) as client:
        good, bad = client.wait(
            client.request("GET", "/ok", headers=[("authorization", f"Bearer {keys.ED.sign()}"), ("x-jwt-sub", "forged")]),
            client.request("GET", "/bad", headers=[("authorization", f"Bearer {keys.RSA.sign(exp=1)}")]))
    assert good.status == 200
    assert (bad.status, bad.body) == (401, b"Jwt is expired")
    seen = up.requests[-1]
    assert seen.path == "/ok" and seen.header_values("x-jwt-sub") == ["alice"] and not seen.has_header("authorization")


def test_a_reload_that_adds_a_jwks_uri_has_its_keys_before_it_goes_live(gateway, upstream, tmp_path):
    import signal
    jwks = tmp_path / "jwks.json"
    jwks.write_text(keys.jwks(keys.EC))
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up))
    token = keys.EC.sign()
    assert gw.get("/", headers=bearer(token)).status_code == 200, "no RequestAuthentication yet: the token is ignored"
    (gw.config_paths[0] / "jwt.yaml").write_text(cfg.to_yaml(cfg.request_authentication(
        "jwt", [{"issuer": ISSUER, "jwksUri": f"file://{jwks}"}])) + "\n")
    gw.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reloaded: version 2" not in gw.stderr_text():
        assert time.monotonic() < deadline, gw.stderr_text()
        time.sleep(0.02)
    assert gw.get("/", headers=bearer(token)).status_code == 200, "keys were loaded before the snapshot went live"
    assert gw.get("/", headers=bearer(keys.RSA.sign())).status_code == 401
