"""``x-forwarded-client-cert`` (issue 12): a client's own header never reaches the upstream by default, on
any protocol; on MUTUAL servers the gateway sets it from the verified client certificate, as an Istio
gateway does (SANITIZE_SET); the Bootstrap's ``forwardClientCertDetails`` picks Envoy's other modes."""
from __future__ import annotations

import hashlib
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from harness import config as cfg
from harness import tlsclient
from harness.gateway import free_port, run_cli
from harness.h2client import H2Client

FORGED = "By=spiffe://cluster.local/ns/prod/sa/api;URI=spiffe://cluster.local/ns/prod/sa/admin"
SPIFFE = "spiffe://cluster.local/ns/default/sa/client"


def xfcc(request) -> list[str]:
    return request.header_values("x-forwarded-client-cert")


def mutual_gateway(gateway, upstream, pki, mode: str | None = None, tls_mode: str = "MUTUAL"):
    port = free_port()
    up = upstream("backend")
    tls = cfg.files_tls(pki.a_files, tls_mode, caCertificates=str(pki.client_ca_file))
    bootstrap = {"forwardClientCertDetails": mode} if mode else None
    gw = gateway([cfg.gateway_of([cfg.https_server(port, ["a.test"], tls)]), *cfg.simple_backend(up)],
                 gateway_resource=False, port=port, bootstrap=bootstrap)
    client = pki.client_ca.issue("client", uris=[SPIFFE], dns=["client.test"], client=True)
    return port, gw, up, client


def element_for(client) -> str:
    digest = hashlib.sha256(client.cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return f'Hash={digest};Subject="CN=client";URI={SPIFFE};DNS=client.test'


def test_plain_http_and_h2c_clients_cannot_forge_it(proxied):
    assert proxied.gw.get("/h1", headers={"x-forwarded-client-cert": FORGED}).status_code == 200
    assert xfcc(proxied.up.requests[-1]) == []
    with H2Client(proxied.gw.port) as client:
        (response,) = client.wait(client.request("GET", "/h2", headers=[("x-forwarded-client-cert", FORGED)]))
    assert response.status == 200
    assert xfcc(proxied.up.requests[-1]) == []


def test_tls_without_a_client_certificate_strips_it(gateway, upstream, pki):
    port, gw, up, _ = mutual_gateway(gateway, upstream, pki, tls_mode="OPTIONAL_MUTUAL")
    result = tlsclient.curl(port, "a.test", "/anon", ca=pki.ca_file, extra=["-H", f"x-forwarded-client-cert: {FORGED}"])
    assert result.stdout.endswith("\n200"), result.stderr
    assert xfcc(up.requests[-1]) == []


def test_mutual_sets_it_from_the_verified_certificate(gateway, upstream, pki):
    port, gw, up, client = mutual_gateway(gateway, upstream, pki)
    files = client.write(pki.dir, "client")
    result = tlsclient.curl(port, "a.test", "/mtls", ca=pki.ca_file, cert=files,
                            extra=["-H", f"x-forwarded-client-cert: {FORGED}"])
    assert result.stdout.endswith("\n200"), result.stderr
    assert xfcc(up.requests[-1]) == [element_for(client)]


@pytest.mark.parametrize("mode,expected", [
    ("SANITIZE", lambda element: []),
    ("FORWARD_ONLY", lambda element: [FORGED]),
    ("APPEND_FORWARD", lambda element: [f"{FORGED},{element}"]),
    ("SANITIZE_SET", lambda element: [element]),
    ("ALWAYS_FORWARD_ONLY", lambda element: [FORGED]),
])
def test_forward_client_cert_details_modes_on_mutual(gateway, upstream, pki, mode, expected):
    port, _, up, client = mutual_gateway(gateway, upstream, pki, mode)
    files = client.write(pki.dir, "client")
    result = tlsclient.curl(port, "a.test", "/mode", ca=pki.ca_file, cert=files,
                            extra=["-H", f"x-forwarded-client-cert: {FORGED}"])
    assert result.stdout.endswith("\n200"), result.stderr
    assert xfcc(up.requests[-1]) == expected(element_for(client))


@pytest.mark.parametrize("mode,forwarded", [("FORWARD_ONLY", False), ("APPEND_FORWARD", False),
                                            ("ALWAYS_FORWARD_ONLY", True)])
def test_only_always_forward_only_passes_a_plain_clients_header(gateway, upstream, mode, forwarded):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), bootstrap={"forwardClientCertDetails": mode})
    assert gw.get("/plain", headers={"x-forwarded-client-cert": FORGED}).status_code == 200
    assert xfcc(up.requests[-1]) == ([FORGED] if forwarded else [])


def test_an_unknown_mode_is_a_load_error(config_dir):
    cfg.write_config(config_dir, [cfg.bootstrap("-", forwardClientCertDetails="SANITISE")])
    result = run_cli(["validate", "--config", str(config_dir)])
    assert result.returncode == 1
    assert "spec.forwardClientCertDetails" in result.stdout + result.stderr
