"""Running under systemd: the notify protocol (checked with a datagram socket as NOTIFY_SOCKET), the unit
file (``systemd-analyze verify`` and its hardening), the install script, and MemoryDenyWriteExecute
(the kernel's PR_SET_MDWE, the same restriction, with a regex route that PCRE2 would JIT-compile)."""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import config as cfg
from harness.gateway import gatehouse_bin

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "gatehouse.service"


class NotifySocket:
    """A datagram socket standing in for systemd's; messages are read as they come."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.path = path
        self.messages: list[dict[str, str]] = []

    def wait_for(self, key: str, value: str | None = None, timeout: float = 10.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        for message in self.messages:
            if message.get(key) == value or (value is None and key in message):
                self.messages.remove(message)
                return message
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            message = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
            if message.get(key) == value or (value is None and key in message):
                return message
            self.messages.append(message)
        raise AssertionError(f"no {key}={value} within {timeout}s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


def test_notify_protocol(gateway, upstream, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        gw = gateway(cfg.simple_backend(upstream("backend")), extra_args=["--no-watch-config"], wait=False,
                     env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "200000"})
        ready = notify.wait_for("READY", "1")
        # READY comes after the listeners are bound.
        assert gw.get("/").status_code == 200
        assert ready["STATUS"] == "serving config version 1"
        # Keep-alives every WATCHDOG_USEC / 2.
        notify.wait_for("WATCHDOG", "1", timeout=2)
        gw.send_signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING", "1")
        assert int(reloading["MONOTONIC_USEC"]) > 0
        assert notify.wait_for("READY", "1")["STATUS"] == "serving config version 2"
        gw.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING", "1")
        assert gw.wait(timeout=15) == 0
    finally:
        notify.close()


def test_no_notify_socket_no_messages_and_a_dead_socket_is_harmless(gateway, upstream, tmp_path):
    gw = gateway(cfg.simple_backend(upstream("backend")), env={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert gw.get("/").status_code == 200
    gw.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert gw.get("/").status_code == 200 and gw.running()
    assert "sd_notify to" in gw.stderr_text(), "a failed notification is logged"


def staged_install(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    env = {**os.environ, "DESTDIR": str(root)}
    result = subprocess.run([str(REPO / "scripts" / "install"), "--no-build", "--binary", str(gatehouse_bin())],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return root


def test_install_stages_binary_unit_and_config(tmp_path):
    root = staged_install(tmp_path)
    binary = root / "usr/local/bin/gatehouse"
    assert os.access(binary, os.X_OK)
    assert subprocess.run([str(binary), "version"], capture_output=True, text=True).stdout.startswith("gatehouse ")
    assert (root / "etc/systemd/system/gatehouse.service").is_file()
    assert sorted(p.name for p in (root / "etc/gatehouse").iterdir()) == sorted(p.name for p in (REPO / "conf").glob("*.yaml"))
    result = subprocess.run([str(binary), "validate", "--config", str(root / "etc/gatehouse")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # A second install keeps the config there.
    (root / "etc/gatehouse/local.yaml").write_text("# mine\n")
    staged_install(tmp_path)
    assert (root / "etc/gatehouse/local.yaml").read_text() == "# mine\n"


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_unit_file_is_what_a_review_expects():
    settings = unit_settings(UNIT.read_text())
    expected = {
        "Type": "notify", "ExecReload": "/bin/kill -HUP $MAINPID", "DynamicUser": "yes",
        "AmbientCapabilities": "CAP_NET_BIND_SERVICE", "StateDirectory": "gatehouse", "LogsDirectory": "gatehouse",
        "ConfigurationDirectory": "gatehouse", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "MemoryDenyWriteExecute": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    }
    for key, value in expected.items():
        assert settings.get(key) == [value], f"{key}: {settings.get(key)}"
    assert "@system-service" in settings["SystemCallFilter"]
    assert int(settings["LimitNOFILE"][0]) >= 65536
    assert settings["ExecStart"] == ["/usr/local/bin/gatehouse run --config ${CONFIGURATION_DIRECTORY}"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_unit_passes_systemd_analyze(tmp_path):
    root = staged_install(tmp_path)
    # verify checks that ExecStart's binary exists: point it at the staged one, as PREFIX would.
    unit = tmp_path / "gatehouse.service"
    unit.write_text((root / "etc/systemd/system/gatehouse.service").read_text()
                    .replace("/usr/local/bin/gatehouse", str(root / "usr/local/bin/gatehouse")))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                              capture_output=True, text=True, timeout=60)
    exposure = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
    assert exposure, security.stdout + security.stderr
    assert float(exposure.group(1)) <= 2.5, security.stdout[-2000:]


PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def deny_write_execute() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        os._exit(97)


MDWE_PROBE = """
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit(2)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
except OSError:
    sys.exit(0)
sys.exit(1)
"""


def test_regex_routes_work_when_memory_cannot_be_writable_and_executable(gateway):
    probe = subprocess.run([sys.executable, "-c", MDWE_PROBE])
    if probe.returncode == 2:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    assert probe.returncode == 0, "PR_SET_MDWE did not stop a writable+executable mapping"
    routes = [cfg.virtual_service("main", [
        cfg.action("directResponse", {"status": 200, "body": {"string": "item"}}, match={"uri": {"regex": "/items/[0-9]+"}}),
    ])]
    gw = gateway(routes, start=False)
    gw.preexec_fn = deny_write_execute
    gw.start()
    assert gw.get("/items/42").text == "item"
    assert gw.get("/items/4x").status_code == 404
    assert gw.running()
