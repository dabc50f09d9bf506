"""A tiny authoritative DNS responder on loopback UDP, for the Kubernetes-service-name tests.

``DNSServer(records={"reviews.default.svc.cluster.local": ["127.0.0.1"]}, ttl=30)`` answers A queries
for the names it holds (AAAA with no records, anything else NXDOMAIN), and counts the queries per name so
a test can check what the gateway asked and how often. Records can be changed while it runs.
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter
from typing import Mapping, Sequence


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    labels = []
    while True:
        size = data[offset]
        if size == 0:
            return ".".join(labels).lower(), offset + 1
        labels.append(data[offset + 1:offset + 1 + size].decode("ascii", "replace"))
        offset += 1 + size


class DNSServer:
    def __init__(self, records: Mapping[str, Sequence[str]] | None = None, ttl: int = 30):
        self.records = {name.lower(): list(addresses) for name, addresses in (records or {}).items()}
        self.ttl = ttl
        self.queries: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "DNSServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def set(self, name: str, addresses: Sequence[str]) -> None:
        with self._lock:
            self.records[name.lower()] = list(addresses)

    def count(self, name: str) -> int:
        with self._lock:
            return self.queries[name.lower()]

    def wait_for_query(self, name: str, count: int = 1, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while self.count(name) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.count(name)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                reply = self._answer(data)
            except (IndexError, struct.error):
                continue
            self.sock.sendto(reply, peer)

    def _answer(self, data: bytes) -> bytes:
        query_id, _flags, qdcount = struct.unpack("!HHH", data[:6])
        name, end = _read_name(data, 12)
        qtype, _qclass = struct.unpack("!HH", data[end:end + 4])
        question = data[12:end + 4]
        with self._lock:
            if qtype == 1:
                self.queries[name] += 1
            addresses = self.records.get(name)
        if addresses is None:
            return struct.pack("!HHHHHH", query_id, 0x8183, 1, 0, 0, 0) + question
        answers = b""
        count = 0
        if qtype == 1:
            for address in addresses:
                answers += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, self.ttl, 4) + socket.inet_aton(address)
                count += 1
        return struct.pack("!HHHHHH", query_id, 0x8180, 1, count, 0, 0) + question + answers
