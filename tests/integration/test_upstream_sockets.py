"""DestinationRule ``connectionPool.tcp.tcpKeepalive``: upstream connections get SO_KEEPALIVE with the
probe settings the rule sets. Read from /proc/net/tcp (the keepalive timer of the gateway's socket), so
no tool is needed."""
from __future__ import annotations

from harness import config as cfg


def keepalive_timers_to(port: int) -> list[float]:
    """Seconds until the keepalive timer fires on each established socket connected to 127.0.0.1:``port``
    (the gateway's end); 0.0 for a socket with no keepalive timer."""
    timers = []
    with open("/proc/net/tcp") as f:
        for row in f.read().splitlines()[1:]:
            fields = row.split()
            local, remote, state, timer = fields[1], fields[2], fields[3], fields[5]
            if state != "01" or int(remote.rsplit(":", 1)[1], 16) != port or int(local.rsplit(":", 1)[1], 16) == port:
                continue
            active, when = timer.split(":")
            # tm->when is in USER_HZ (100 per second).
            timers.append(int(when, 16) / 100 if active == "02" else 0.0)
    return timers


def gateway_with_pool(gateway, up, pool):
    rule = cfg.resource("DestinationRule", "backend", {"host": cfg.BACKEND_HOST, "trafficPolicy": {"connectionPool": pool}})
    return gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(up)]), rule, cfg.virtual_service("main", [cfg.route()])])


def test_tcp_keepalive_probes_idle_upstream_connections(gateway, upstream):
    up = upstream("kept-alive")
    gw = gateway_with_pool(gateway, up, {"tcp": {"tcpKeepalive": {"time": "40s", "interval": "5s", "probes": 3}}})
    assert gw.get("/ka").status_code == 200
    timers = keepalive_timers_to(up.port)
    assert len(timers) == 1, timers
    # The pooled connection is idle: its keepalive fires after `time` (less what already elapsed).
    assert 30 < timers[0] <= 40, timers


def test_without_tcp_keepalive_upstream_connections_have_no_probes(gateway, upstream):
    up = upstream("plain")
    gw = gateway_with_pool(gateway, up, {"tcp": {"connectTimeout": "2s"}})
    assert gw.get("/no-ka").status_code == 200
    assert keepalive_timers_to(up.port) == [0.0]
