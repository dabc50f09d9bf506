"""The admin server's views of the running gateway: /config_dump, /clusters (Envoy's text form and
JSON), `gatehouse ready` (the container HEALTHCHECK), and a taken admin port at start-up."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

from harness import config as cfg
from harness.admin import admin_get
from harness.gateway import free_port, gatehouse_bin


def with_admin(gateway, upstream, **kwargs):
    up = upstream("backend")
    admin = free_port()
    gw = gateway(cfg.simple_backend(up), bootstrap={"admin": {"address": "127.0.0.1", "port": admin}},
                 extra_args=["--no-watch-config"], **kwargs)
    gw.admin = admin
    gw.up = up
    return gw


def test_config_dump_shows_the_serving_snapshot(gateway, upstream):
    gw = with_admin(gateway, upstream)
    status, text = admin_get(gw.admin, "/config_dump")
    assert status == 200
    dump = json.loads(text)
    assert dump["version"] == 1 and dump["loaded_at"].endswith("Z")
    [listener] = dump["listeners"]
    assert listener["address"] == f"127.0.0.1:{gw.port}" and listener["protocol"] == "HTTP"
    assert listener["gateways"] == ["Gateway default/gw"]
    routes = [route for host in listener["virtual_hosts"] for route in host["routes"]]
    assert any(cfg.cluster_name() in route["action"] for route in routes), routes
    [cluster] = dump["clusters"]
    assert cluster["name"] == cfg.cluster_name()
    assert cluster["endpoints"][0]["address"] == f"127.0.0.1:{gw.up.port}"
    assert dump["settings"]["path_normalization"] == "BASE"
    # A reload shows at once.
    gw.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while json.loads(admin_get(gw.admin, "/config_dump")[1])["version"] != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(admin_get(gw.admin, "/config_dump")[1])["version"] == 2


def test_clusters_in_envoys_text_form_and_as_json(gateway, upstream):
    gw = with_admin(gateway, upstream)
    status, text = admin_get(gw.admin, "/clusters")
    assert status == 200
    endpoint = f"{cfg.cluster_name()}::127.0.0.1:{gw.up.port}"
    assert f"{endpoint}::health_flags::healthy" in text.splitlines()
    assert f"{cfg.cluster_name()}::discovery::STATIC" in text.splitlines()
    status, text = admin_get(gw.admin, "/clusters?format=json")
    assert status == 200
    [cluster] = json.loads(text)["cluster_statuses"]
    assert cluster["endpoints"] == [{"address": f"127.0.0.1:{gw.up.port}", "health": "HEALTHY", "labels": {},
                                     "locality": {"region": "", "zone": "", "sub_zone": ""}, "priority": 0,
                                     "rq_active": 0}]
    assert cluster["stats"]["upstream_cx_connect_fail"] == 0 and cluster["stats"]["rq_pending_active"] == 0


def ready(admin: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(gatehouse_bin()), "ready", "--admin", f"127.0.0.1:{admin}", "--timeout", "2"],
                          capture_output=True, text=True, timeout=10)


def test_gatehouse_ready_is_a_health_check(gateway, upstream):
    gw = with_admin(gateway, upstream)
    result = ready(gw.admin)
    assert result.returncode == 0, result.stdout + result.stderr
    gw.stop()
    result = ready(gw.admin)
    assert result.returncode == 1 and "cannot connect" in result.stdout


def test_gatehouse_ready_rejects_a_malformed_address():
    for bad in ["nonsense", "127.0.0.1:notaport", ":15000"]:
        result = subprocess.run([str(gatehouse_bin()), "ready", "--admin", bad], capture_output=True, text=True, timeout=10)
        assert result.returncode == 64, (bad, result.returncode)
        assert f"--admin must be HOST:PORT, got {bad}" in result.stderr


def test_a_taken_admin_port_stops_start_up(gateway, upstream):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        gw = gateway(cfg.simple_backend(upstream("backend")), wait=False,
                     bootstrap={"admin": {"address": "127.0.0.1", "port": taken}})
        code = gw.wait(timeout=15)
    assert code == 1
    assert f"127.0.0.1:{taken}" in gw.stderr_text() and "in use" in gw.stderr_text().lower(), gw.stderr_text()
