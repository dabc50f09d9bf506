"""Egress: ServiceEntry ``resolution: NONE`` forwards to the host each request names (Host, or SNI on a
TLS route), resolved by DNS with the answer's TTL, only if the ServiceEntry's hosts cover it (502 ``NR``
otherwise, as REGISTRY_ONLY wants); Bootstrap ``outboundTrafficPolicy: ALLOW_ANY`` lets a route name a host
no ServiceEntry declares; Istio's "egress TLS origination" set-up works as written. Names are answered by
a DNS server the tests run (Bootstrap ``dns.resolvers``)."""
from __future__ import annotations

import socket
import ssl
import threading

import pytest

from harness import config as cfg
from harness.certs import CA
from harness.dns import DNSServer
from harness.gateway import free_port, run_cli
from harness.upstream import echo_of


@pytest.fixture
def dns():
    server = DNSServer(ttl=30).start()
    yield server
    server.stop()


def none_entry(hosts, port, target_port, protocol="HTTP", name="external"):
    return cfg.resource("ServiceEntry", name, {
        "hosts": list(hosts), "location": "MESH_EXTERNAL", "resolution": "NONE",
        "ports": [{"number": port, "name": protocol.lower(), "protocol": protocol, "targetPort": target_port}]})


def test_resolution_none_forwards_to_the_host_the_request_names_within_the_entry(gateway, upstream, dns):
    up = upstream("external-api")
    dns.set("api.egress.test", ["127.0.0.1"])
    gw = gateway([none_entry(["*.egress.test"], 80, up.port),
                  cfg.virtual_service("egress", [cfg.route(cfg.destination("*.egress.test", port=80))])],
                 bootstrap={"dns": {"resolvers": [dns.address]}})
    # A host the wildcard covers: resolved and forwarded, Host kept.
    echo = echo_of(gw.get("/v1/things", headers={"host": "api.egress.test"}))
    assert echo.upstream == "external-api" and echo.header("host") == "api.egress.test"
    entry = gw.log_for_path("/v1/things")
    assert entry["upstream_host"] == f"127.0.0.1:{up.port}"
    assert entry["upstream_cluster"] == "outbound|80||*.egress.test"
    # The answer is kept for its TTL: a second request asks no one.
    gw.get("/again", headers={"host": "api.egress.test"})
    assert dns.count("api.egress.test") == 1
    # Covered but not resolvable: no healthy upstream, and the DNS failure is logged.
    response = gw.get("/dns", headers={"host": "missing.egress.test"})
    assert response.status_code == 503
    assert gw.log_for_path("/dns")["upstream_transport_failure_reason"] == "dns_resolution_failure"
    # Outside the entry's hosts: not in the registry, never looked up nor forwarded.
    for host in ("elsewhere.test", "egress.test", "api.egress.test.evil"):
        response = gw.get("/other", headers={"host": host})
        assert response.status_code == 502, host
        logged = gw.log_for_path("/other")
        assert logged["response_flags"] == "NR" and logged["response_code_details"] == "outbound_host_not_in_registry"
        assert dns.count(host) == 0
    assert len(up.requests) == 2


def test_resolution_none_on_a_tls_passthrough_route_forwards_by_sni(gateway, tmp_path, dns):
    ca = CA()
    crt, key = ca.issue("secure.egress.test", dns=["secure.egress.test"]).write(tmp_path, "secure")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(crt), str(key))
    backend = socket.create_server(("127.0.0.1", 0))
    backend_port = backend.getsockname()[1]

    def serve():
        while True:
            try:
                conn, _ = backend.accept()
            except OSError:
                return
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello over passthrough")
            except (OSError, ssl.SSLError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    dns.set("secure.egress.test", ["127.0.0.1"])
    port = free_port()
    server = {"port": {"number": port, "name": "tls", "protocol": "TLS"}, "hosts": ["*"], "bind": "127.0.0.1",
              "tls": {"mode": "PASSTHROUGH"}}
    vs = cfg.resource("VirtualService", "egress-sni", {
        "hosts": ["*"], "gateways": [cfg.GATEWAY_NAME],
        "tls": [{"match": [{"sniHosts": ["*"]}],
                 "route": [{"destination": {"host": "*.egress.test", "port": {"number": 443}}}]}]})
    gw = gateway([cfg.gateway_of([server]), none_entry(["*.egress.test"], 443, backend_port, protocol="TLS"), vs],
                 gateway_resource=False, port=port, bootstrap={"dns": {"resolvers": [dns.address]}})
    client = ssl.create_default_context(cafile=str(ca.write(tmp_path / "ca.crt")))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client.wrap_socket(raw, server_hostname="secure.egress.test") as tls:
            assert tls.recv(100) == b"hello over passthrough"
    # Another SNI is refused without a connection upstream.
    refused = ssl.create_default_context()
    refused.check_hostname = False
    refused.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises((OSError, ssl.SSLError)):
            with refused.wrap_socket(raw, server_hostname="elsewhere.test") as tls:
                tls.recv(10)
    entry = gw.log_entry(lambda e: e.get("requested_server_name") == "elsewhere.test")
    assert entry["response_flags"] == "NR" and entry["connection_termination_details"] == "outbound_host_not_in_registry"
    backend.close()


def test_allow_any_lets_a_route_name_a_host_no_service_entry_declares(gateway, upstream):
    up = upstream("anywhere")
    route = cfg.virtual_service("egress", [cfg.route(cfg.destination("127.0.0.1", port=up.port))])
    refused = gateway([route], start=False)
    result = run_cli(["validate", "--config", str(refused.config_paths[0])])
    assert result.returncode == 1 and "outboundTrafficPolicy is REGISTRY_ONLY" in result.stdout, result.stdout
    gw = gateway([route], bootstrap={"outboundTrafficPolicy": "ALLOW_ANY"})
    assert echo_of(gw.get("/any")).upstream == "anywhere"
    assert gw.log_for_path("/any")["upstream_cluster"] == f"outbound|{up.port}||127.0.0.1"


def test_istio_egress_tls_origination_as_written(gateway, upstream, tmp_path):
    """Istio's "Egress TLS Origination" task: the app sends plain HTTP to port 80, the ServiceEntry maps it to
    443 (`targetPort`), and the DestinationRule's port-level `tls: SIMPLE` makes the gateway originate TLS
    with the Host as SNI. Only the endpoint (a local TLS server) and the CA differ from the task."""
    ca = CA()
    crt, key = ca.issue("api.origin.test", dns=["api.origin.test"]).write(tmp_path, "api")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(crt), str(key))
    up = upstream("external-https", tls=server)
    entry = cfg.resource("ServiceEntry", "origin", {
        "hosts": ["api.origin.test"], "location": "MESH_EXTERNAL", "resolution": "STATIC",
        "ports": [{"number": 80, "name": "http-port", "protocol": "HTTP", "targetPort": up.port},
                  {"number": 443, "name": "https-port", "protocol": "HTTPS"}],
        "endpoints": [{"address": "127.0.0.1"}]})
    rule = cfg.resource("DestinationRule", "origin", {"host": "api.origin.test", "trafficPolicy": {"portLevelSettings": [
        {"port": {"number": 80}, "tls": {"mode": "SIMPLE", "caCertificates": str(ca.write(tmp_path / "ca.crt"))}}]}})
    gw = gateway([entry, rule, cfg.virtual_service("egress", [cfg.route(cfg.destination("api.origin.test", port=80))])])
    echo = echo_of(gw.get("/politics", headers={"host": "api.origin.test"}))
    assert echo["tls"]["sni"] == "api.origin.test" and echo.path == "/politics"
