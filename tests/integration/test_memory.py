"""Memory stays flat under churn: connections opened and closed, and HTTP/2 streams opened and ended, give
their memory back. (Each handler used to keep its channel context, and the context its handler: every
connection and every stream leaked a few KiB, hundreds of MiB a day at the edge.)"""
from __future__ import annotations

import socket
import subprocess

from harness.gateway import free_port  # noqa: F401  (fixtures come from conftest)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def churn_connections(port: int, count: int) -> None:
    request = b"GET /churn HTTP/1.1\r\nHost: churn.test\r\nConnection: close\r\n\r\n"
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(request)
            while sock.recv(65536):
                pass


def test_closed_connections_give_their_memory_back(proxied):
    gw = proxied.gw
    churn_connections(gw.port, 1500)  # warm-up: pools, allocator arenas, caches reach their size
    before = rss_kib(gw.pid)
    churn_connections(gw.port, 6000)
    grown = rss_kib(gw.pid) - before
    # A leak of 3 KiB per connection is 18 MiB here; allocator noise is well under 6 MiB.
    assert grown < 6 * 1024, f"RSS grew {grown} KiB over 6000 closed connections"


def test_ended_http2_streams_give_their_memory_back(proxied):
    gw = proxied.gw

    def h2load(n: int) -> None:
        result = subprocess.run(["h2load", "-n", str(n), "-c", "4", "-m", "10", f"{gw.url}/streams"],
                                capture_output=True, text=True, timeout=120)
        assert f"{n} succeeded" in result.stdout, result.stdout[-800:]

    h2load(5000)
    before = rss_kib(gw.pid)
    h2load(30000)
    grown = rss_kib(gw.pid) - before
    # A leak of 1 KiB per stream is 30 MiB here.
    assert grown < 8 * 1024, f"RSS grew {grown} KiB over 30000 HTTP/2 streams"
