"""A real ``redis-server`` on 127.0.0.1 for the redis rate-limit store's tests: started on a free port in
the test's directory (no persistence), stopped and started again on the same port to play an outage."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Sequence

from .gateway import free_port, port_accepts


class RedisServer:
    def __init__(self, workdir: Path, *, password: str | None = None, tls: dict[str, str] | None = None):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.password = password
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "redis.log"

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        credentials = f":{self.password}@" if self.password else ""
        return f"{scheme}://{credentials}127.0.0.1:{self.port}"

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (scripts/install-deps --test installs it)"
        args = [binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                "--logfile", str(self.log), "--daemonize", "no",
                # DEBUG SLEEP plays a Redis that stops answering for a while (refused by default since 7.0).
                "--enable-debug-command", "local"]
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", self.tls["cert"],
                     "--tls-key-file", self.tls["key"], "--tls-ca-cert-file", self.tls["ca"], "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_accepts("127.0.0.1", self.port):
            assert self.proc.poll() is None, f"redis-server exited: {self.log.read_text() if self.log.exists() else ''}"
            assert time.monotonic() < deadline, "redis-server did not start listening"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def cli(self, *args: str) -> str:
        """``redis-cli ARGS`` against this server (plain connections only)."""
        command: Sequence[str] = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--no-auth-warning"]
        if self.password:
            command = [*command, "-a", self.password]
        result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=10, check=True)
        return result.stdout.strip()
