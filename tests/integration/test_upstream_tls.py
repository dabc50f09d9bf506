"""DestinationRule ``tls``: the gateway originates TLS to upstreams (SIMPLE, MUTUAL, ISTIO_MUTUAL with its
own SPIFFE identity from the Bootstrap), checks their certificates, and fails a request whose upstream
presents a bad one with 503 ``UF`` and a transport failure reason that says why — never plaintext
instead. The upstreams are TLS servers the tests start; they report who connected (SPIFFE id), the SNI
and the ALPN protocol."""
from __future__ import annotations

import ssl
import time

import pytest

from harness import config as cfg
from harness.certs import CA
from harness.upstream import echo_of

GATEWAY_ID = "spiffe://cluster.local/ns/istio-system/sa/edge-gateway"
BACKEND_ID = "spiffe://cluster.local/ns/apps/sa/backend"


class Mesh:
    """A throwaway mesh CA, the gateway's identity files and certificates for test upstreams."""

    def __init__(self, directory):
        self.dir = directory
        self.root = CA("mesh root")
        self.root_file = self.root.write(directory / "root-cert.pem")
        self.chain_file, self.key_file = self.root.issue("edge-gateway", uris=[GATEWAY_ID], client=True).write(directory, "gateway")

    def identity(self, trust_domain: str = "cluster.local") -> dict:
        return {"certChain": str(self.chain_file), "privateKey": str(self.key_file), "rootCert": str(self.root_file),
                "trustDomain": trust_domain}

    def server_context(self, issued=None, *, require_client: bool = True, alpn=("h2", "http/1.1")) -> ssl.SSLContext:
        """A server context for an upstream: ``issued`` (default: backend.test with BACKEND_ID) as its
        certificate, client certificates from the mesh root required unless told otherwise."""
        issued = issued or self.root.issue("backend", dns=["backend.test"], uris=[BACKEND_ID], ips=["127.0.0.1"])
        name = f"server-{id(issued)}"
        crt, key = issued.write(self.dir, name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(crt, key)
        if require_client:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.root_file)
        context.set_alpn_protocols(list(alpn))
        return context


@pytest.fixture
def mesh(tmp_path):
    return Mesh(tmp_path / "mesh")


def proxied_with_tls(gateway, up, tls, *, identity=None, endpoint=None, host="backend.test", subject_alt_names=None,
                     connection_pool=None):
    entry = cfg.service_entry(host, [endpoint or cfg.endpoint(up)])
    if subject_alt_names:
        entry["spec"]["subjectAltNames"] = subject_alt_names
    bootstrap = {"identity": identity} if identity else {}
    policy = {"tls": tls}
    if connection_pool:
        policy["connectionPool"] = connection_pool
    return gateway([entry,
                    cfg.resource("DestinationRule", "backend-tls", {"host": host, "trafficPolicy": policy}),
                    cfg.virtual_service("main", [cfg.route(cfg.destination(host))])],
                   bootstrap=bootstrap)


def assert_tls_refused(gw, path, *words):
    response = gw.get(path, headers={"host": "backend.test"})
    assert response.status_code == 503, response.text
    assert "transport failure reason: TLS_error:" in response.text, response.text
    entry = gw.log_for_path(path)
    # Istio's default retries try twice more (connect-failure), each refused the same way.
    assert entry["response_flags"] == "UF,URX"
    reason = entry["upstream_transport_failure_reason"]
    assert "CERTIFICATE_VERIFY_FAILED" in reason, reason
    for word in words:
        assert word in reason, reason
    return reason


def test_istio_mutual_presents_the_gateway_identity_with_istio_sni_and_alpn(gateway, upstream, mesh):
    up = upstream("mesh-backend", tls=mesh.server_context())
    gw = proxied_with_tls(gateway, up, {"mode": "ISTIO_MUTUAL"}, identity=mesh.identity())
    echo = echo_of(gw.get("/m", headers={"host": "backend.test"}))
    assert echo["tls"]["peer"] == GATEWAY_ID
    # Istio's SNI for mesh traffic, and the HTTP protocol after Istio's ALPN markers.
    assert echo["tls"]["sni"] == "outbound_.80_._.backend.test"
    assert echo["tls"]["alpn"] == "http/1.1"
    assert gw.log_for_path("/m")["response_flags"] == "-"


@pytest.mark.parametrize("account, allowed", [("backend", True), ("payments", False)])
def test_istio_mutual_expects_the_service_account_of_the_endpoints(gateway, upstream, mesh, account, allowed):
    # The ServiceEntry is in namespace "default": its endpoint running as `account` must present
    # spiffe://cluster.local/ns/default/sa/<account>.
    server = mesh.root.issue("backend", uris=["spiffe://cluster.local/ns/default/sa/backend"])
    up = upstream("mesh-backend", tls=mesh.server_context(server))
    gw = proxied_with_tls(gateway, up, {"mode": "ISTIO_MUTUAL"}, identity=mesh.identity(),
                          endpoint=dict(cfg.endpoint(up), serviceAccount=account))
    if allowed:
        assert echo_of(gw.get("/sa", headers={"host": "backend.test"}))["tls"]["peer"] == GATEWAY_ID
    else:
        assert_tls_refused(gw, "/sa", "SAN matcher", "spiffe://cluster.local/ns/default/sa/payments")


def test_istio_mutual_refuses_an_upstream_with_another_identity(gateway, upstream, mesh):
    up = upstream("mesh-backend", tls=mesh.server_context())
    gw = proxied_with_tls(gateway, up, {"mode": "ISTIO_MUTUAL", "subjectAltNames": ["spiffe://cluster.local/ns/apps/sa/payments"]},
                          identity=mesh.identity())
    reason = assert_tls_refused(gw, "/other-sa", "SAN matcher", "spiffe://cluster.local/ns/apps/sa/payments")
    assert BACKEND_ID in reason


def test_istio_mutual_refuses_a_plaintext_upstream(gateway, upstream, mesh):
    # The harness upstream waits for an HTTP head that a ClientHello never completes: the handshake runs
    # out of the connect timeout, which bounds it.
    up = upstream("plain")
    gw = proxied_with_tls(gateway, up, {"mode": "ISTIO_MUTUAL"}, identity=mesh.identity(),
                          connection_pool={"tcp": {"connectTimeout": "500ms"}})
    response = gw.get("/plain", headers={"host": "backend.test"})
    assert response.status_code == 503
    entry = gw.log_for_path("/plain")
    assert entry["response_flags"] == "UF,URX"
    assert entry["upstream_transport_failure_reason"] == "TLS_error:|handshake timed out:TLS_error_end"
    assert up.requests == [], "nothing may reach the upstream in plaintext"


def test_simple_sends_the_request_host_as_sni_and_checks_the_certificate_is_for_it(gateway, upstream, mesh):
    up = upstream("api", tls=mesh.server_context(require_client=False))
    gw = proxied_with_tls(gateway, up, {"mode": "SIMPLE", "caCertificates": str(mesh.root_file)})
    echo = echo_of(gw.get("/s", headers={"host": "backend.test"}))
    assert echo["tls"] == {"peer": None, "sni": "backend.test", "alpn": "http/1.1", "version": echo["tls"]["version"]}
    assert echo["tls"]["version"] in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize("kind, words", [
    ("expired", ["certificate has expired"]),
    ("other-ca", ["unable to get local issuer certificate"]),
    ("wrong-name", ["SAN matcher", "backend.test"]),
])
def test_simple_refuses_a_bad_upstream_certificate_and_says_why(gateway, upstream, mesh, kind, words):
    if kind == "expired":
        issued = mesh.root.issue("backend", dns=["backend.test"], expired=True)
    elif kind == "other-ca":
        issued = CA("someone else").issue("backend", dns=["backend.test"])
    else:
        issued = mesh.root.issue("elsewhere", dns=["elsewhere.test"])
    up = upstream("bad", tls=mesh.server_context(issued, require_client=False))
    gw = proxied_with_tls(gateway, up, {"mode": "SIMPLE", "caCertificates": str(mesh.root_file)})
    assert_tls_refused(gw, f"/bad-{kind}", *words)
    assert up.requests == []


def test_insecure_skip_verify_accepts_any_certificate(gateway, upstream, mesh):
    issued = CA("someone else").issue("backend", dns=["elsewhere.test"], expired=True)
    up = upstream("lenient", tls=mesh.server_context(issued, require_client=False))
    gw = proxied_with_tls(gateway, up, {"mode": "SIMPLE", "insecureSkipVerify": True})
    assert echo_of(gw.get("/skip", headers={"host": "backend.test"}))["tls"]["sni"] == "backend.test"


def test_mutual_presents_the_configured_client_certificate(gateway, upstream, mesh):
    client_id = "spiffe://partner.example/ns/x/sa/gatehouse"
    crt, key = mesh.root.issue("partner-client", uris=[client_id], client=True).write(mesh.dir, "partner")
    up = upstream("partner", tls=mesh.server_context())
    gw = proxied_with_tls(gateway, up, {"mode": "MUTUAL", "clientCertificate": str(crt), "privateKey": str(key),
                                        "caCertificates": str(mesh.root_file), "sni": "backend.test",
                                        "subjectAltNames": [BACKEND_ID]})
    echo = echo_of(gw.get("/mutual"))
    assert echo["tls"]["peer"] == client_id and echo["tls"]["sni"] == "backend.test"


def test_a_rotated_identity_is_used_by_new_upstream_connections(gateway, upstream, mesh):
    up = upstream("mesh-backend", tls=mesh.server_context())
    gw = proxied_with_tls(gateway, up, {"mode": "ISTIO_MUTUAL"}, identity=mesh.identity())
    assert echo_of(gw.get("/before", headers={"host": "backend.test"}))["tls"]["peer"] == GATEWAY_ID
    rotated = "spiffe://cluster.local/ns/istio-system/sa/edge-gateway-v2"
    issued = mesh.root.issue("edge-gateway", uris=[rotated], client=True)
    # As istio-agent writes them: key first, then the chain (the watch keeps the old pair until both parse).
    mesh.key_file.write_bytes(issued.key_pem)
    mesh.chain_file.write_bytes(issued.chain_pem)
    deadline = time.monotonic() + 10
    while True:
        peer = echo_of(gw.get("/after", headers={"host": "backend.test"}))["tls"]["peer"]
        if peer == rotated:
            break
        assert time.monotonic() < deadline, f"still {peer} after the rotation"
        time.sleep(0.2)
    # The new material serves as soon as it is installed; the notice is logged just after.
    while "mesh identity changed on disk" not in gw.stderr_text() + gw.stdout_text():
        assert time.monotonic() < deadline, gw.describe()
        time.sleep(0.05)


def test_an_identity_outside_its_trust_domain_is_a_load_error(gateway, mesh):
    gw = gateway([], bootstrap={"identity": mesh.identity("other.domain")}, start=False)
    from harness.gateway import run_cli
    result = run_cli(["validate", "--config", str(gw.config_paths[0])])
    assert result.returncode != 0
    assert "spec.identity" in result.stdout + result.stderr
    assert "is not in trust domain other.domain" in result.stdout + result.stderr


def test_an_expired_identity_is_measured_and_warned_about(gateway, upstream, mesh):
    from harness.admin import admin_get
    from harness.gateway import free_port
    issued = mesh.root.issue("edge-gateway", uris=[GATEWAY_ID], client=True, expired=True)
    mesh.key_file.write_bytes(issued.key_pem)
    mesh.chain_file.write_bytes(issued.chain_pem)
    admin = free_port()
    up = upstream("mesh-backend", tls=mesh.server_context())
    gw = gateway([cfg.service_entry("backend.test", [cfg.endpoint(up)]),
                  cfg.resource("DestinationRule", "backend-tls", {"host": "backend.test", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
                  cfg.virtual_service("main", [cfg.route(cfg.destination("backend.test"))])],
                 bootstrap={"identity": mesh.identity(), "admin": {"address": "127.0.0.1", "port": admin}})
    status, text = admin_get(admin, "/stats/prometheus")
    assert status == 200
    line = next(l for l in text.splitlines() if l.startswith("gatehouse_identity_cert_expiry_timestamp_seconds{"))
    assert f'spiffe_id="{GATEWAY_ID}"' in line and int(line.split()[-1]) < time.time()
    # Istio's metrics name the gateway by its identity once it has one.
    assert gw.get("/labelled", headers={"host": "backend.test"}).status_code == 503
    _, text = admin_get(admin, "/stats/prometheus")
    assert f'source_principal="{GATEWAY_ID}"' in text
    deadline = time.monotonic() + 5
    while "mesh identity " + GATEWAY_ID + " expired at" not in gw.stderr_text() + gw.stdout_text():
        assert time.monotonic() < deadline, gw.describe()
        time.sleep(0.1)
    # The upstream refuses the expired client certificate: the request fails, it is not sent in plaintext.
    assert gw.get("/expired", headers={"host": "backend.test"}).status_code == 503
    assert up.requests == []


def test_a_missing_ca_file_is_a_load_error_at_the_tls_block(gateway, upstream):
    from harness.gateway import run_cli
    up = upstream("api")
    docs = [cfg.service_entry("backend.test", [cfg.endpoint(up)]),
            cfg.resource("DestinationRule", "backend-tls",
                         {"host": "backend.test", "trafficPolicy": {"tls": {"mode": "SIMPLE", "caCertificates": "/nonexistent/mesh-ca.pem"}}}),
            cfg.virtual_service("main", [cfg.route(cfg.destination("backend.test"))])]
    unstarted = gateway(docs, start=False)
    result = run_cli(["validate", "--config", str(unstarted.config_paths[0])])
    assert result.returncode == 1, result.stdout
    line = next(l for l in result.stdout.splitlines() if "CA bundle" in l)
    assert "DestinationRule default/backend-tls: spec.trafficPolicy.tls: CA bundle /nonexistent/mesh-ca.pem: no such file" in line


def test_tls_and_connect_failures_are_counted_per_cluster(gateway, upstream, mesh):
    from harness.admin import admin_get
    from harness.gateway import free_port
    issued = mesh.root.issue("elsewhere", dns=["elsewhere.test"])
    up = upstream("wrong-name", tls=mesh.server_context(issued, require_client=False))
    admin = free_port()
    gw = gateway([cfg.service_entry("backend.test", [cfg.endpoint(up)]),
                  cfg.resource("DestinationRule", "backend-tls", {"host": "backend.test", "trafficPolicy": {"tls": {
                      "mode": "SIMPLE", "caCertificates": str(mesh.root_file)}}}),
                  cfg.virtual_service("main", [cfg.route(cfg.destination("backend.test"))])],
                 bootstrap={"admin": {"address": "127.0.0.1", "port": admin}})
    for _ in range(3):
        assert gw.get("/count", headers={"host": "backend.test"}).status_code == 503
    _, metrics = admin_get(admin, "/stats/prometheus")
    cluster = 'cluster_name="outbound|80||backend.test"'
    # Each request is tried three times (Istio's default: two retries on connect-failure).
    assert f"envoy_cluster_ssl_connection_error{{{cluster}}} 9" in metrics
    assert f"envoy_cluster_upstream_cx_connect_fail{{{cluster}}} 9" in metrics
    assert f"envoy_cluster_upstream_rq_retry{{{cluster}}} 6" in metrics
    assert f"envoy_cluster_upstream_rq_retry_limit_exceeded{{{cluster}}} 3" in metrics
    assert f"envoy_cluster_upstream_rq_pending_overflow{{{cluster}}} 0" in metrics
    _, clusters = admin_get(admin, "/clusters")
    assert "outbound|80||backend.test::tls::SIMPLE" in clusters
    assert "outbound|80||backend.test::ssl_connection_error::9" in clusters


def test_an_http_server_answering_the_client_hello_is_a_tls_error_at_once(gateway, mesh):
    import socket
    import threading
    server = socket.create_server(("127.0.0.1", 0))

    def answer_in_plaintext():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            conn.close()

    threading.Thread(target=answer_in_plaintext, daemon=True).start()
    gw = proxied_with_tls(gateway, None, {"mode": "SIMPLE", "caCertificates": str(mesh.root_file)},
                          endpoint=cfg.endpoint(server.getsockname()[1]))
    assert gw.get("/plain-http", headers={"host": "backend.test"}).status_code == 503
    reason = gw.log_for_path("/plain-http")["upstream_transport_failure_reason"]
    assert reason.startswith("TLS_error:|") and "WRONG_VERSION_NUMBER" in reason, reason
    server.close()
