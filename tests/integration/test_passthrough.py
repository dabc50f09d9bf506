"""TLS PASSTHROUGH (routed by SNI with VirtualService tls routes, never decrypted) and TCP servers
(tcp routes): bytes relayed both ways, one access-log line per connection."""
from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from harness import config as cfg
from harness.certs import CA
from harness.gateway import free_port


class EchoServer:
    """Echoes every byte back, over TLS when given a context; counts connections."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.port = free_port()
        self.tls = tls
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            while data := conn.recv(65536):
                conn.sendall(data)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def pki(tmp_path: Path):
    ca = CA()
    crt, key = ca.issue("x.test", dns=["x.test"]).write(tmp_path, "x")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(crt), str(key))
    return ca.write(tmp_path / "ca.crt"), server


def stream_gateway(gateway, port, protocol, backend_port, route_kind, match=None, extra=(), **options):
    """A Gateway server of `protocol` on `port` for x.test, routed to echo.test (`backend_port`) by a
    `route_kind` route; `extra` resources and factory `options` (bootstrap…) are passed on."""
    server = {"port": {"number": port, "name": protocol.lower(), "protocol": protocol}, "hosts": ["x.test"],
              "bind": "127.0.0.1"}
    if protocol == "TLS":
        server["tls"] = {"mode": "PASSTHROUGH"}
    entry = cfg.service_entry("echo.test", [cfg.endpoint(backend_port, port_name="tcp")], port_name="tcp",
                              protocol="TCP")
    route = {"route": [{"destination": {"host": "echo.test"}}]}
    if match is not None:
        route["match"] = match
    vs = cfg.resource("VirtualService", "relay", {"hosts": ["x.test"], "gateways": [cfg.GATEWAY_NAME],
                                                  route_kind: [route]})
    return gateway([cfg.gateway_of([server]), entry, vs, *extra], gateway_resource=False, port=port, **options)


def test_tls_passthrough_routes_by_sni_without_decrypting(gateway, pki):
    ca_file, server_ctx = pki
    backend = EchoServer(server_ctx)
    port = free_port()
    gw = stream_gateway(gateway, port, "TLS", backend.port, "tls", match=[{"sniHosts": ["x.test"]}])
    client = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client.wrap_socket(raw, server_hostname="x.test") as tls:
            # The certificate is the backend's: the gateway has none, it only relays.
            assert tls.getpeercert()["subject"][0][0][1] == "x.test"
            tls.sendall(b"through the tunnel")
            assert tls.recv(100) == b"through the tunnel"
    entry = gw.log_entry(lambda e: e.get("requested_server_name") == "x.test")
    assert entry["upstream_cluster"] == "outbound|80||echo.test"
    assert entry["bytes_received"] > 18 and entry["bytes_sent"] > 18
    assert entry["route_name"] == "default/relay tls[0]"
    backend.close()


def test_tls_passthrough_with_an_unknown_sni_is_closed(gateway, pki):
    ca_file, server_ctx = pki
    backend = EchoServer(server_ctx)
    port = free_port()
    gw = stream_gateway(gateway, port, "TLS", backend.port, "tls", match=[{"sniHosts": ["x.test"]}])
    client = ssl.create_default_context(cafile=str(ca_file))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with client.wrap_socket(raw, server_hostname="other.test"):
                pass
    assert gw.log_entry(lambda e: e.get("requested_server_name") == "other.test")["response_flags"] == "NR"
    assert backend.connections == 0
    backend.close()


def test_tcp_server_relays_bytes_both_ways(gateway):
    backend = EchoServer()
    port = free_port()
    gw = stream_gateway(gateway, port, "TCP", backend.port, "tcp")
    payload = bytes(range(256)) * 4096
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        sender = threading.Thread(target=conn.sendall, args=(payload,))
        sender.start()
        received = b""
        while len(received) < len(payload):
            chunk = conn.recv(65536)
            assert chunk, "closed early"
            received += chunk
        sender.join()
    assert received == payload
    # (The harness's readiness probe made a connection too: pick the one that carried bytes.)
    entry = gw.log_entry(lambda e: (e.get("bytes_received") or 0) > 0)
    assert entry["upstream_cluster"] == "outbound|80||echo.test"
    assert entry["bytes_received"] == len(payload) and entry["bytes_sent"] == len(payload), entry
    backend.close()


def test_tcp_connections_in_quick_succession_each_reach_the_upstream(gateway):
    """The relay picks its upstream once the accepted socket is active: a loopback connect can finish
    before the client side is registered, and such a connection used to hang with nothing relayed."""
    backend = EchoServer()
    port = free_port()
    stream_gateway(gateway, port, "TCP", backend.port, "tcp")
    for i in range(200):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            message = f"connection {i}".encode()
            conn.sendall(message)
            received = b""
            while len(received) < len(message):
                chunk = conn.recv(100)
                assert chunk, f"connection {i} closed early"
                received += chunk
            assert received == message
    backend.close()


def test_tcp_upstream_down_closes_the_connection_with_uf(gateway):
    port = free_port()
    gw = stream_gateway(gateway, port, "TCP", free_port(), "tcp")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"hello?")
        try:
            assert conn.recv(10) == b"", "nothing comes back"
        except ConnectionResetError:
            pass  # closed with the client's bytes unread: the kernel resets instead of FIN
    assert gw.log_entry(lambda e: e.get("response_flags") == "UF")["upstream_cluster"] == "outbound|80||echo.test"


def tcp_exchange(port: int) -> bytes:
    """Sends a line and returns what came back before the gateway closed (b"" when refused)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        try:
            conn.sendall(b"ping\n")
            return conn.recv(100)
        except (ConnectionResetError, BrokenPipeError):
            return b""


@pytest.mark.parametrize("policy,allowed", [
    ({"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]}, False),
    ({"rules": [{"to": [{"operation": {"paths": ["/anything"]}}]}]}, False),
    ({"rules": [{"from": [{"source": {"ipBlocks": ["127.0.0.1"]}}]}]}, True),
    ({"rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}, False),
])
def test_tcp_connections_follow_istios_tcp_policy_semantics(gateway, policy, allowed):
    """HTTP-only fields: a DENY ignores them (so it denies every connection), an ALLOW rule using them is
    dropped; connection attributes (ipBlocks, ports) apply as they are."""
    backend = EchoServer()
    port = free_port()
    gw = stream_gateway(gateway, port, "TCP", backend.port, "tcp",
                        extra=[cfg.authorization_policy("tcp-policy", policy)])
    try:
        assert tcp_exchange(port) == (b"ping\n" if allowed else b"")
        if not allowed:
            entry = gw.log_entry(lambda e: str(e.get("connection_termination_details", "")).startswith("rbac_access_denied"))
            assert entry["upstream_host"] is None
    finally:
        backend.close()
