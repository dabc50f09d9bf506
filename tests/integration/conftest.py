"""Fixtures for the Gatehouse integration suite.

``upstream(name="a", **defaults)``   start a threaded origin server (see harness/upstream.py); stopped at teardown
``gateway(resources, ...)``          write Bootstrap + Gateway + ``resources`` into a tmp dir, start
                                     ``gatehouse run``, wait for its port; killed at teardown
``proxied``                          an upstream named "backend" and a gateway sending everything to it
``config_dir``                       a fresh directory for YAML files (validate tests)
``pki``                              a server CA with certificates for a.test, *.b.test, admin.test, and a
                                     client CA

Every test is bounded in time: ``@pytest.mark.timeout(seconds)`` (default 60 s, or
GATEHOUSE_TEST_TIMEOUT) is enforced with SIGALRM unless the pytest-timeout plugin is installed.
"""
from __future__ import annotations

import atexit
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pytest

from harness import config as cfg
from harness.gateway import Gateway, GatewayStartError, free_port, gatehouse_bin, kill_all_started
from harness import websocket
from harness.certs import CA
from harness.upstream import Upstream

DEFAULT_TIMEOUT = float(os.environ.get("GATEHOUSE_TEST_TIMEOUT", "60"))

atexit.register(kill_all_started)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: large transfers (run by default; deselect with -m 'not slow')")
    config.addinivalue_line("markers", "needs_binary: starts or runs the gatehouse binary")
    if not config.pluginmanager.hasplugin("timeout"):
        config.addinivalue_line("markers", "timeout(seconds): fail the test if it runs longer (SIGALRM)")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    kill_all_started()


@pytest.fixture(autouse=True)
def _time_limit(request: pytest.FixtureRequest):
    """Fails a test that runs past its limit (setup and teardown of later fixtures included)."""
    if request.config.pluginmanager.hasplugin("timeout") or not hasattr(signal, "SIGALRM"):
        yield
        return
    marker = request.node.get_closest_marker("timeout")
    seconds = float(marker.args[0]) if marker and marker.args else DEFAULT_TIMEOUT

    def on_alarm(signum: int, frame: Any) -> None:
        pytest.fail(f"test exceeded its time limit of {seconds:.0f}s", pytrace=True)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def gatehouse_binary() -> Path:
    """The binary under test; tests that need it are skipped when it is missing (unless
    GATEHOUSE_REQUIRE_BIN=1, which makes that a failure, as CI should)."""
    path = gatehouse_bin()
    if not (path.is_file() and os.access(path, os.X_OK)):
        message = f"gatehouse binary not found at {path} (build it or set GATEHOUSE_BIN)"
        if os.environ.get("GATEHOUSE_REQUIRE_BIN") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def upstream() -> Callable[..., Upstream]:
    """Factory: ``upstream(name="a", **defaults)`` -> a started :class:`Upstream`."""
    started: list[Upstream] = []

    def make(name: str = "upstream", tls: Any = None, **defaults: Any) -> Upstream:
        server = Upstream(name=name, defaults=defaults, tls=tls).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
    errors = [e for s in started for e in s.errors]
    assert not errors, f"upstream harness errors: {errors}"


@dataclass
class GatewayFactory:
    tmp_path: Path
    started: list[Gateway]

    def __call__(self, resources: Sequence[Mapping[str, Any]] = (), *, hosts: Sequence[str] = ("*",),
                 limits: Mapping[str, Any] | None = None, bootstrap: Mapping[str, Any] | None = None,
                 gateway_resource: bool = True, bind: str | None = "127.0.0.1",
                 files: Mapping[str, str] | None = None, start: bool = True,
                 wait: bool = True, port: int | None = None, extra_args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None) -> Gateway:
        """Starts a gateway serving ``resources`` (VirtualServices, ServiceEntries, ...).

        A Bootstrap (JSON access log in the test dir) and a Gateway ``default/gw`` on a fresh port with
        ``hosts`` are added. ``bootstrap`` adds Bootstrap spec fields, ``limits`` overrides limits.
        ``files`` are extra raw YAML files (name -> text) written beside the generated one. ``port``
        (default: a free ephemeral port) is the listener port; ``start=False`` only writes the config.
        ``extra_args`` go after ``run --config DIR``; ``env`` is added to the gateway's environment.
        """
        chosen = port
        for attempt in range(3):
            index = len(self.started)
            workdir = self.tmp_path / f"gw{index}"
            confdir = workdir / "config"
            confdir.mkdir(parents=True)
            port = chosen or free_port()
            access_log = workdir / "access.log"
            docs: list[Mapping[str, Any]] = [cfg.bootstrap(access_log, limits=limits, **dict(bootstrap or {}))]
            if gateway_resource:
                docs.append(cfg.gateway(port, hosts=hosts, bind=bind))
            docs.extend(resources)
            cfg.write_config(confdir, docs, filename="00-gatehouse.yaml")
            for name, text in (files or {}).items():
                (confdir / name).write_text(text)
            gw = Gateway(workdir, port, [confdir], access_log, extra_args=extra_args, env=env)
            self.started.append(gw)
            if not start:
                return gw
            try:
                gw.start(wait=wait)
                return gw
            except GatewayStartError as error:
                # A port free a moment ago can be taken (by another test's outgoing connection) before
                # the gateway binds it: a fresh one is tried, never when the test chose the port.
                if chosen is not None or gateway_resource is False or "Address already in use" not in str(error) \
                        or attempt == 2:
                    raise
        raise AssertionError("unreachable")


@pytest.fixture
def gateway(gatehouse_binary: Path, tmp_path: Path) -> GatewayFactory:
    factory = GatewayFactory(tmp_path=tmp_path, started=[])
    yield factory
    for gw in factory.started:
        gw.kill()


@dataclass
class Proxied:
    gw: Gateway
    up: Upstream


@pytest.fixture
def proxied(gateway: GatewayFactory, upstream: Callable[..., Upstream]) -> Proxied:
    """An upstream "backend" behind a gateway whose only route sends everything to it."""
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up, [cfg.route(cfg.destination(), name="default-route")]))
    return Proxied(gw=gw, up=up)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.mkdir()
    return path


@pytest.fixture
def ws_backend():
    """``(port, handshakes)`` of an echo WebSocket server (see ``harness.websocket``)."""
    with websocket.echo_server() as backend:
        yield backend


@pytest.fixture
def ws_gateway(gateway: GatewayFactory, ws_backend, upstream: Callable[..., Upstream]) -> Gateway:
    """A gateway routing `/ws…` to the echo server and `/refuse…` to a plain upstream."""
    return gateway(websocket.routes(ws_backend[0], upstream("plain").port))


@pytest.fixture
def pki(tmp_path: Path):
    """A CA (trusted by the clients) and server certificates for a.test / *.b.test and admin.test, and a
    second CA for client certificates."""
    class PKI:
        dir = tmp_path / "pki"
        ca = CA()
        ca_file = ca.write(dir / "ca.crt")
        a = ca.issue("a.test", dns=["a.test"])
        b = ca.issue("b.test", dns=["*.b.test"])
        admin = ca.issue("admin.test", dns=["admin.test"])
        a_files = a.write(dir, "a")
        b_files = b.write(dir, "b")
        admin_files = admin.write(dir, "admin")
        client_ca = CA("Client CA")
        client_ca_file = client_ca.write(dir / "client-ca.crt")
    return PKI


@pytest.fixture
def redis_server(tmp_path: Path):
    """Starts real ``redis-server``s (``redis_server()``, keyword options as ``RedisServer``), each stopped
    at the end of the test."""
    from harness.redis import RedisServer

    servers: list[RedisServer] = []

    def make(**options: Any) -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(servers)}", **options)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
