"""TLS termination on HTTPS Gateway servers: certificates chosen by SNI, client certificates (MUTUAL,
OPTIONAL_MUTUAL), protocol versions and ciphers, rotation on disk, and the access-log fields TLS adds.
Certificates are made by the tests (harness/certs.py); clients are curl, openssl s_client and Python's ssl."""
from __future__ import annotations

import shutil
import ssl
import time
from pathlib import Path

import pytest

from harness import config as cfg
from harness import tlsclient
from harness.certs import CA
from harness.config import files_tls
from harness.gateway import free_port
from harness.upstream import ConnectionClosed

#: How a refused TLS connection shows to a client: a failed handshake, or a close before any response.
REFUSED = (ssl.SSLError, ConnectionError, OSError, ConnectionClosed)


def start_tls(gateway, upstream, servers, **kwargs):
    up = upstream("backend")
    gw = gateway([cfg.gateway_of(servers), *cfg.simple_backend(up)], gateway_resource=False, **kwargs)
    return gw, up


def test_https_is_terminated_and_proxied_with_https_forwarding_headers(gateway, upstream, pki):
    port = free_port()
    gw, up = start_tls(gateway, upstream, [cfg.https_server(port, ["a.test"], files_tls(pki.a_files))], port=port)
    result = tlsclient.curl(port, "a.test", "/hello", ca=pki.ca_file)
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    assert status == "200"
    echo = echo_of_text(body)
    assert echo["path"] == "/hello"
    assert header(echo, "x-forwarded-proto") == "https"
    entry = gw.log_for_path("/hello")
    assert entry["requested_server_name"] == "a.test"
    assert entry["tls_version"] == "TLSv1.3"
    assert entry["protocol"] == "HTTP/1.1"
    assert entry["source_principal"] is None


def test_sni_picks_the_certificate_among_servers_on_one_port(gateway, upstream, pki):
    port = free_port()
    start_tls(gateway, upstream, [cfg.https_server(port, ["a.test"], files_tls(pki.a_files), name="https-a"),
                                  cfg.https_server(port, ["*.b.test"], files_tls(pki.b_files), name="https-b")],
              port=port)
    for sni, issued in [("a.test", pki.a), ("x.b.test", pki.b), ("deep.x.b.test", pki.b)]:
        if sni == "deep.x.b.test":
            # *.b.test covers one label only in X.509, but SNI matching (Istio's) takes the longest suffix.
            with tlsclient.TLSConnection(port, sni, tlsclient.context(None)) as conn:
                assert conn.tls.peer_certificate.serial_number == issued.serial
            continue
        with tlsclient.TLSConnection(port, sni, tlsclient.context(pki.ca_file)) as conn:
            assert conn.tls.peer_certificate.serial_number == issued.serial, sni
            conn.send(b"GET /sni HTTP/1.1\r\nHost: " + sni.encode() + b"\r\n\r\n")
            assert conn.read_response().status == 200


def test_client_without_sni_gets_the_catch_all_server_or_the_first(gateway, upstream, pki):
    port = free_port()
    start_tls(gateway, upstream, [cfg.https_server(port, ["a.test"], files_tls(pki.a_files), name="https-a"),
                                  cfg.https_server(port, ["*"], files_tls(pki.b_files), name="https-any")],
              port=port)
    with tlsclient.TLSConnection(port, None, tlsclient.context(None)) as conn:
        assert conn.tls.peer_certificate.serial_number == pki.b.serial
    other = free_port()
    start_tls(gateway, upstream, [cfg.https_server(other, ["a.test"], files_tls(pki.a_files))], port=other)
    with tlsclient.TLSConnection(other, None, tlsclient.context(None)) as conn:
        assert conn.tls.peer_certificate.serial_number == pki.a.serial


def test_unknown_sni_fails_the_handshake_and_the_gateway_keeps_serving(gateway, upstream, pki):
    port = free_port()
    gw, _ = start_tls(gateway, upstream, [cfg.https_server(port, ["a.test"], files_tls(pki.a_files))], port=port)
    with pytest.raises(REFUSED):
        tlsclient.get(port, "/", sni="unknown.test", ca=pki.ca_file)
    assert tlsclient.get(port, "/after", sni="a.test", ca=pki.ca_file).status == 200
    assert gw.running()


def test_host_outside_the_sni_server_gets_421(gateway, upstream, pki):
    """SNI guest (SIMPLE) + Host admin (MUTUAL) must not reach admin's routes (Istio's Host/SNI advice)."""
    port = free_port()
    client = pki.client_ca.issue("client", uris=["spiffe://cluster.local/ns/default/sa/client"], client=True)
    gw, up = start_tls(gateway, upstream, [
        cfg.https_server(port, ["a.test"], files_tls(pki.a_files), name="https-guest"),
        cfg.https_server(port, ["admin.test"], files_tls(pki.admin_files, "MUTUAL",
                                                         caCertificates=str(pki.client_ca_file)), name="https-admin"),
    ], port=port)
    response = tlsclient.get(port, "/admin-only", sni="a.test", host="admin.test", ca=pki.ca_file)
    assert response.status == 421
    assert up.requests == []
    crt_key = client.write(pki.dir, "client")
    ok = tlsclient.get(port, "/admin-only", sni="admin.test", ca=pki.ca_file, cert=crt_key)
    assert ok.status == 200


class TestMutual:
    @pytest.fixture
    def mutual(self, gateway, upstream, pki):
        port = free_port()
        tls = files_tls(pki.a_files, "MUTUAL", caCertificates=str(pki.client_ca_file))
        gw, up = start_tls(gateway, upstream, [cfg.https_server(port, ["a.test"], tls)], port=port)
        return port, gw, up

    def test_a_trusted_client_certificate_is_required_and_its_spiffe_id_logged(self, mutual, pki):
        port, gw, _ = mutual
        spiffe = "spiffe://cluster.local/ns/default/sa/client"
        files = pki.client_ca.issue("client", uris=[spiffe], client=True).write(pki.dir, "client")
        result = tlsclient.curl(port, "a.test", "/mtls", ca=pki.ca_file, cert=files)
        assert result.returncode == 0, result.stderr
        assert result.stdout.endswith("\n200")
        assert gw.log_for_path("/mtls")["source_principal"] == spiffe

    def test_no_client_certificate_is_refused(self, mutual, pki):
        port, gw, up = mutual
        result = tlsclient.curl(port, "a.test", "/no-cert", ca=pki.ca_file)
        assert result.returncode != 0
        assert up.requests == []
        assert gw.running()

    @pytest.mark.parametrize("kind", ["untrusted", "expired"])
    def test_bad_client_certificates_are_refused(self, mutual, pki, kind):
        port, _, up = mutual
        issuer = CA("Rogue CA") if kind == "untrusted" else pki.client_ca
        files = issuer.issue("client", uris=["spiffe://x/y"], client=True,
                             expired=kind == "expired").write(pki.dir, kind)
        result = tlsclient.curl(port, "a.test", f"/{kind}", ca=pki.ca_file, cert=files)
        assert result.returncode != 0, result.stdout
        assert up.requests == []


def test_subject_alt_names_restrict_client_certificates(gateway, upstream, pki):
    port = free_port()
    allowed = "spiffe://cluster.local/ns/prod/sa/allowed"
    tls = files_tls(pki.a_files, "MUTUAL", caCertificates=str(pki.client_ca_file), subjectAltNames=[allowed])
    _, up = start_tls(gateway, upstream, [cfg.https_server(port, ["a.test"], tls)], port=port)
    good = pki.client_ca.issue("ok", uris=[allowed], client=True).write(pki.dir, "good")
    bad = pki.client_ca.issue("other", uris=["spiffe://cluster.local/ns/prod/sa/other"], client=True).write(pki.dir, "bad")
    assert tlsclient.get(port, "/good", sni="a.test", ca=pki.ca_file, cert=good).status == 200
    with pytest.raises(REFUSED):
        response = tlsclient.get(port, "/bad", sni="a.test", ca=pki.ca_file, cert=bad)
        raise AssertionError(f"a certificate without the SAN got {response.status}")
    assert [r.path for r in up.requests] == ["/good"]


def test_optional_mutual_accepts_clients_with_and_without_certificates(gateway, upstream, pki):
    port = free_port()
    tls = files_tls(pki.a_files, "OPTIONAL_MUTUAL", caCertificates=str(pki.client_ca_file))
    gw, _ = start_tls(gateway, upstream, [cfg.https_server(port, ["a.test"], tls)], port=port)
    assert tlsclient.get(port, "/anonymous", sni="a.test", ca=pki.ca_file).status == 200
    files = pki.client_ca.issue("c", uris=["spiffe://td/ns/a/sa/b"], client=True).write(pki.dir, "opt")
    assert tlsclient.get(port, "/named", sni="a.test", ca=pki.ca_file, cert=files).status == 200
    assert gw.log_for_path("/anonymous")["source_principal"] is None
    assert gw.log_for_path("/named")["source_principal"] == "spiffe://td/ns/a/sa/b"
    rogue = CA("Rogue").issue("c", uris=["spiffe://td/x"], client=True).write(pki.dir, "rogue")
    with pytest.raises(REFUSED):
        tlsclient.get(port, "/rogue", sni="a.test", ca=pki.ca_file, cert=rogue)


def test_protocol_versions_and_cipher_suites(gateway, upstream, pki):
    only12, only13, default = free_port(), free_port(), free_port()
    cipher = "ECDHE-ECDSA-AES128-GCM-SHA256"
    start_tls(gateway, upstream, [cfg.https_server(only12, ["a.test"], files_tls(
        pki.a_files, maxProtocolVersion="TLSV1_2", cipherSuites=[cipher]))], port=only12)
    start_tls(gateway, upstream, [cfg.https_server(only13, ["a.test"], files_tls(
        pki.a_files, minProtocolVersion="TLSV1_3"))], port=only13)
    start_tls(gateway, upstream, [cfg.https_server(default, ["a.test"], files_tls(pki.a_files))], port=default)
    out = tlsclient.s_client(only12, "-servername", "a.test", "-tls1_3")
    assert "alert protocol version" in out or "no protocols available" in out or "Cipher is (NONE)" in out, out
    out = tlsclient.s_client(only12, "-servername", "a.test", "-tls1_2")
    assert f"Cipher is {cipher}" in out, out
    out = tlsclient.s_client(only13, "-servername", "a.test", "-tls1_2")
    assert "Cipher is (NONE)" in out or "alert protocol version" in out, out
    assert "TLSv1.3" in tlsclient.s_client(only13, "-servername", "a.test", "-tls1_3")
    # Istio's default minimum is TLS 1.2.
    out = tlsclient.s_client(default, "-servername", "a.test", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert "Cipher is (NONE)" in out or "alert" in out or "no protocols available" in out, out


def test_alpn_prefers_h2_and_falls_back_to_http11(gateway, upstream, pki):
    port = free_port()
    start_tls(gateway, upstream, [cfg.https_server(port, ["a.test"], files_tls(pki.a_files))], port=port)
    assert "ALPN protocol: h2" in tlsclient.s_client(port, "-servername", "a.test", "-alpn", "h2,http/1.1")
    out = tlsclient.s_client(port, "-servername", "a.test", "-alpn", "http/1.1")
    assert "ALPN protocol: http/1.1" in out, out
    # No ALPN at all: HTTP/1.1, as before ALPN existed.
    assert tlsclient.get(port, "/no-alpn", sni="a.test", ca=pki.ca_file).status == 200


def test_credential_name_reads_the_credentials_directory(gateway, upstream, pki, tmp_path):
    port = free_port()
    credentials = tmp_path / "creds"
    (credentials / "a-cert").mkdir(parents=True)
    shutil.copy(pki.a_files[0], credentials / "a-cert" / "tls.crt")
    shutil.copy(pki.a_files[1], credentials / "a-cert" / "tls.key")
    start_tls(gateway, upstream, [cfg.https_server(port, ["a.test"], {"mode": "SIMPLE", "credentialName": "a-cert"})],
              port=port, bootstrap={"credentialsDir": str(credentials)})
    response = tlsclient.get(port, "/cred", sni="a.test", ca=pki.ca_file)
    assert response.status == 200


def test_certificates_rotated_on_disk_are_used_by_new_handshakes_without_breaking_open_ones(gateway, upstream, pki):
    port = free_port()
    crt, key = pki.a.write(pki.dir, "rotating")
    gw, _ = start_tls(gateway, upstream, [cfg.https_server(port, ["a.test"], files_tls((crt, key)))], port=port)
    with tlsclient.TLSConnection(port, "a.test", tlsclient.context(pki.ca_file)) as kept:
        assert kept.tls.peer_certificate.serial_number == pki.a.serial
        renewed = pki.ca.issue("a.test", dns=["a.test"])
        # Write elsewhere and rename over the old files, as cert-manager and secret volumes do.
        staged_crt, staged_key = renewed.write(pki.dir / "staging", "rotating")
        staged_key.replace(key)
        staged_crt.replace(crt)
        deadline = time.monotonic() + 10
        serial = None
        while time.monotonic() < deadline:
            with tlsclient.TLSConnection(port, "a.test", tlsclient.context(pki.ca_file)) as fresh:
                serial = fresh.tls.peer_certificate.serial_number
            if serial == renewed.serial:
                break
            time.sleep(0.2)
        assert serial == renewed.serial, "new handshakes must use the rotated certificate"
        kept.send(b"GET /still-open HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert kept.read_response().status == 200, "an open connection keeps working across a rotation"
    assert "certificate files changed" in gw.stderr_text()


def test_plain_http_on_a_tls_port_and_tls_on_a_plain_port_are_refused(gateway, upstream, pki):
    port = free_port()
    gw, up = start_tls(gateway, upstream, [cfg.https_server(port, ["a.test"], files_tls(pki.a_files))], port=port)
    from harness.rawhttp import RawConnection
    with RawConnection("127.0.0.1", port) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert conn.is_closed_by_peer(timeout=5)
    plain = gateway(cfg.simple_backend(up))
    with pytest.raises(REFUSED):
        tlsclient.get(plain.port, "/", sni="a.test", ca=pki.ca_file)
    assert tlsclient.get(port, "/fine", sni="a.test", ca=pki.ca_file).status == 200
    assert plain.get("/fine").status_code == 200


def test_handshake_timeout_closes_silent_connections(gateway, upstream, pki):
    port = free_port()
    start_tls(gateway, upstream, [cfg.https_server(port, ["a.test"], files_tls(pki.a_files))], port=port,
              limits={"tlsHandshakeTimeout": "1s"})
    from harness.rawhttp import RawConnection
    with RawConnection("127.0.0.1", port) as conn:
        started = time.monotonic()
        assert conn.is_closed_by_peer(timeout=5)
        assert time.monotonic() - started < 4


def echo_of_text(body: str) -> dict:
    import json
    return json.loads(body)


def header(echo: dict, name: str) -> str | None:
    for key, value in echo["headers"]:
        if key.lower() == name:
            return value
    return None


def test_policies_see_the_client_certificate_identity(gateway, upstream, pki):
    """principals, namespaces and connection.sni over OPTIONAL_MUTUAL: a request without a certificate has
    no identity, so a DENY on a namespace never fires for it and an ALLOW on a principal never admits it
    (ISTIO-SECURITY-2021-004)."""
    port = free_port()
    tls = files_tls(pki.a_files, "OPTIONAL_MUTUAL", caCertificates=str(pki.client_ca_file))
    up = upstream("backend")
    policies = [
        cfg.authorization_policy("deny-untrusted-ns", {"action": "DENY", "rules": [
            {"from": [{"source": {"namespaces": ["untrusted"]}}]}]}),
        cfg.authorization_policy("allow-apps", {"rules": [
            {"from": [{"source": {"principals": ["cluster.local/ns/apps/*"]}}],
             "when": [{"key": "connection.sni", "values": ["a.test"]}]},
            {"to": [{"operation": {"paths": ["/public"]}}]}]}),
    ]
    gw = gateway([cfg.gateway_of([cfg.https_server(port, ["a.test"], tls)]), *cfg.simple_backend(up), *policies],
                 gateway_resource=False, port=port)
    apps = pki.client_ca.issue("c1", uris=["spiffe://cluster.local/ns/apps/sa/web"], client=True).write(pki.dir, "apps")
    untrusted = pki.client_ca.issue("c2", uris=["spiffe://cluster.local/ns/untrusted/sa/web"],
                                    client=True).write(pki.dir, "untrusted")
    other = pki.client_ca.issue("c3", uris=["spiffe://cluster.local/ns/other/sa/web"], client=True).write(pki.dir, "other")
    assert tlsclient.get(port, "/private", sni="a.test", ca=pki.ca_file, cert=apps).status == 200
    assert tlsclient.get(port, "/private", sni="a.test", ca=pki.ca_file, cert=other).status == 403
    assert tlsclient.get(port, "/private", sni="a.test", ca=pki.ca_file).status == 403
    assert tlsclient.get(port, "/public", sni="a.test", ca=pki.ca_file).status == 200, "no identity: the DENY does not fire"
    denied = tlsclient.get(port, "/public", sni="a.test", ca=pki.ca_file, cert=untrusted)
    assert (denied.status, denied.body) == (403, b"RBAC: access denied")
    allowed = gw.log_entry(lambda e: e.get("path") == "/private" and e.get("response_code") == 200)
    assert allowed["authz_policy"] == "istio-system/allow-apps[rule 0]"
