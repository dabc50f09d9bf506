"""Hot reload without loss: route changes under load, SIGHUP storms, files changed on disk (watched),
half-written files, listeners added and removed, a port already in use, and the reload metrics."""
from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time

import httpx
import pytest

from harness import config as cfg
from harness.admin import admin_get, samples
from harness.gateway import free_port, port_accepts


def versioned_routes(version: int) -> str:
    """A VirtualService sending everything to the backend, marking responses with its version."""
    return cfg.to_yaml_stream([cfg.virtual_service("main", [
        cfg.route(cfg.destination(), headers={"response": {"set": {"x-route-version": str(version)}}})])])


def serve_versions(gateway, upstream, **kwargs):
    up = upstream("backend")
    admin = free_port()
    gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(up)])],
                 files={"routes.yaml": versioned_routes(1)},
                 bootstrap={"admin": {"address": "127.0.0.1", "port": admin}}, **kwargs)
    gw.admin = admin
    gw.up = up
    return gw


def version_of(gw) -> int:
    response = gw.get("/probe")
    assert response.status_code == 200, response.text
    return int(response.headers["x-route-version"])


def wait_for_version(gw, version: int, timeout: float = 5.0) -> float:
    """Polls until `version` serves; returns when it was first seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if version_of(gw) == version:
            return time.monotonic()
        time.sleep(0.01)
    raise AssertionError(f"version {version} never served\n{gw.describe()}")


def reload_count(gw, result: str) -> float:
    return sum(value for labels, value in samples(gw.admin, "gatehouse_config_reloads_total")
               if labels.get("result") == result)


def test_fifty_reloads_under_load_lose_nothing_and_serve_the_live_version(gateway, upstream):
    gw = serve_versions(gateway, upstream, extra_args=["--no-watch-config"])
    stop = threading.Event()
    results: list[tuple[float, float, int, int]] = []
    errors: list[str] = []

    def load() -> None:
        with httpx.Client(base_url=gw.url, timeout=10) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    response = client.get("/load")
                except httpx.HTTPError as error:
                    errors.append(repr(error))
                    continue
                results.append((started, time.monotonic(), response.status_code,
                                int(response.headers.get("x-route-version", "0"))))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    live = {1: 0.0}
    try:
        for version in range(2, 52):
            (gw.config_paths[0] / "routes.yaml").write_text(versioned_routes(version))
            gw.send_signal(signal.SIGHUP)
            live[version] = wait_for_version(gw, version)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    assert not errors, errors[:5]
    assert len(results) > 200, f"only {len(results)} requests ran"
    assert all(status == 200 for _, _, status, _ in results), {s for _, _, s, _ in results}
    for started, _, _, version in results:
        assert version in live, f"a response from unknown version {version}"
        # Seen live (by the probe, so later than the swap) before this request started: serving the
        # version before it would mean a request got an old snapshot.
        newer = live.get(version + 1)
        assert newer is None or newer >= started, f"request started at {started} got version {version}, " \
                                                 f"but {version + 1} was live at {newer}"
    assert reload_count(gw, "applied") == 50
    assert samples(gw.admin, "gatehouse_config_version")[0][1] == 51


def test_a_sighup_storm_ends_on_the_last_config(gateway, upstream):
    gw = serve_versions(gateway, upstream, extra_args=["--no-watch-config"])
    for version in range(2, 22):
        (gw.config_paths[0] / "routes.yaml").write_text(versioned_routes(version))
        gw.send_signal(signal.SIGHUP)
        time.sleep(0.05)
    wait_for_version(gw, 21)
    time.sleep(0.5)
    assert version_of(gw) == 21 and gw.running()
    # Signals that arrive while a reload runs collapse into one more reload after it.
    applied = reload_count(gw, "applied")
    assert 1 <= applied <= 20
    assert len(re.findall(r"reloaded: version \d+ \(SIGHUP\)", gw.stderr_text())) == applied


def test_a_changed_file_is_reloaded_without_a_signal(gateway, upstream):
    gw = serve_versions(gateway, upstream)
    (gw.config_paths[0] / "routes.yaml").write_text(versioned_routes(2))
    wait_for_version(gw, 2)
    assert re.search(r"reloaded: version 2 \(config files changed\)", gw.stderr_text()), gw.describe()


def test_an_atomic_rename_is_reloaded_once(gateway, upstream):
    gw = serve_versions(gateway, upstream)
    confdir = gw.config_paths[0]
    # Written beside the config as a hidden file (never loaded), then renamed over it, as editors and
    # config-management tools save.
    (confdir / ".routes.yaml.tmp").write_text(versioned_routes(2))
    os.replace(confdir / ".routes.yaml.tmp", confdir / "routes.yaml")
    wait_for_version(gw, 2)
    time.sleep(1.5)
    assert len(re.findall(r"reloaded: version \d+ \(config files changed\)", gw.stderr_text())) == 1


def test_a_half_written_file_is_rejected_then_the_complete_one_applies(gateway, upstream):
    gw = serve_versions(gateway, upstream)
    path = gw.config_paths[0] / "routes.yaml"
    complete = versioned_routes(2)
    cut = complete.index('"backend.test"') + 5   # inside a quoted string: a syntax error until completed
    with open(path, "w") as file:
        file.write(complete[:cut])
        file.flush()
        deadline = time.monotonic() + 5
        while "reload rejected (config files changed)" not in gw.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "reload rejected (config files changed)" in gw.stderr_text(), gw.describe()
        assert version_of(gw) == 1, "the old config keeps serving"
        file.write(complete[cut:])
    wait_for_version(gw, 2)
    assert reload_count(gw, "rejected") >= 1


def gateway_yaml(*ports: int, bind: str = "127.0.0.1") -> str:
    servers = [{"port": {"number": port, "name": f"http-{port}", "protocol": "HTTP"}, "bind": bind,
                "hosts": ["*"]} for port in ports]
    return cfg.to_yaml_stream([cfg.gateway_of(servers)])


def test_listeners_are_added_and_removed_and_a_taken_port_is_refused(gateway, upstream):
    up = upstream("backend")
    admin = free_port()
    first = free_port()
    gw = gateway([*cfg.simple_backend(up)], gateway_resource=False, port=first,
                 files={"gateway.yaml": gateway_yaml(first)}, extra_args=["--no-watch-config"],
                 bootstrap={"admin": {"address": "127.0.0.1", "port": admin}})
    gw.admin = admin
    confdir = gw.config_paths[0]

    # Added: bound by the reload, serving the same routes.
    second = free_port()
    (confdir / "gateway.yaml").write_text(gateway_yaml(first, second))
    gw.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while not port_accepts("127.0.0.1", second) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(f"http://127.0.0.1:{second}/x", timeout=5).status_code == 200
    assert f"listeners added 127.0.0.1:{second}" in gw.stderr_text()

    # A port someone else holds: the reload is rejected and both listeners keep serving.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        (confdir / "gateway.yaml").write_text(gateway_yaml(first, second, taken))
        gw.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while f"cannot listen on 127.0.0.1:{taken}" not in gw.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"cannot listen on 127.0.0.1:{taken}" in gw.stderr_text()
        assert "still serving version 2" in gw.stderr_text()
        assert gw.get("/x").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{second}/x", timeout=5).status_code == 200
        assert reload_count(gw, "rejected") == 1

    # Removed: a request in flight on it finishes, then the port refuses connections.
    result: dict = {}

    def slow() -> None:
        try:
            result["response"] = httpx.get(f"http://127.0.0.1:{second}/slow?sleep=1.5", timeout=10)
        except httpx.HTTPError as error:
            result["error"] = error

    thread = threading.Thread(target=slow)
    thread.start()
    up.wait_for_active(1, timeout=5)
    (confdir / "gateway.yaml").write_text(gateway_yaml(first))
    gw.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while port_accepts("127.0.0.1", second) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not port_accepts("127.0.0.1", second), "a removed listener still accepts"
    thread.join(timeout=10)
    assert "error" not in result, result
    assert result["response"].status_code == 200
    assert gw.get("/x").status_code == 200
    assert reload_count(gw, "applied") == 2


def test_reload_metrics_describe_the_serving_config(gateway, upstream):
    gw = serve_versions(gateway, upstream, extra_args=["--no-watch-config"])
    assert samples(gw.admin, "gatehouse_config_version")[0][1] == 1
    loaded = samples(gw.admin, "gatehouse_config_last_reload_timestamp_seconds")[0][1]
    assert abs(loaded - time.time()) < 60
    (gw.config_paths[0] / "routes.yaml").write_text("kind: VirtualService\napiVersion: networking.istio.io/v1\n")
    gw.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while reload_count(gw, "rejected") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reload_count(gw, "rejected") == 1 and reload_count(gw, "applied") == 0
    assert samples(gw.admin, "gatehouse_config_version")[0][1] == 1, "a rejected reload changes nothing"
    time.sleep(0.01)
    (gw.config_paths[0] / "routes.yaml").write_text(versioned_routes(3))
    gw.send_signal(signal.SIGHUP)
    wait_for_version(gw, 3)
    assert reload_count(gw, "applied") == 1
    # Version numbers count attempts: the rejected one was 2.
    assert samples(gw.admin, "gatehouse_config_version")[0][1] == 3
    assert samples(gw.admin, "gatehouse_config_last_reload_timestamp_seconds")[0][1] > loaded
    status, dump = admin_get(gw.admin, "/config_dump")
    assert status == 200 and '"version" : 3' in dump


def test_upstream_connections_survive_a_reload(gateway, upstream):
    """Pools are keyed by cluster and endpoint, not by snapshot: a reload that keeps the cluster keeps
    its warm connections."""
    gw = serve_versions(gateway, upstream, extra_args=["--no-watch-config"])
    up = gw.up
    # One client connection, so one event loop and one pool.
    with httpx.Client(base_url=gw.url, timeout=5) as client:
        for _ in range(3):
            assert client.get("/a").headers["x-route-version"] == "1"
        assert up.accepted == 1
        (gw.config_paths[0] / "routes.yaml").write_text(versioned_routes(2))
        gw.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while client.get("/b").headers["x-route-version"] != "2" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get("/c").headers["x-route-version"] == "2"
    assert up.accepted == 1, "the reload opened new upstream connections"


def test_a_listener_moves_to_a_new_bind_address(gateway, upstream):
    up = upstream("backend")
    port = free_port()
    gw = gateway([*cfg.simple_backend(up)], gateway_resource=False, port=port,
                 files={"gateway.yaml": gateway_yaml(port)}, extra_args=["--no-watch-config"])
    (gw.config_paths[0] / "gateway.yaml").write_text(gateway_yaml(port, bind="127.0.0.2"))
    gw.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while not port_accepts("127.0.0.2", port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(f"http://127.0.0.2:{port}/x", timeout=5).status_code == 200
    assert not port_accepts("127.0.0.1", port)
    assert f"listeners moved 127.0.0.2:{port}" in gw.stderr_text()
