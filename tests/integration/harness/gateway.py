"""Starting and observing the ``gatehouse`` binary."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import httpx

from .rawhttp import RawConnection

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BIN = REPO_ROOT / ".build" / "debug" / "gatehouse"

#: Every process started by the harness, killed at session end or interpreter exit if a test forgot.
_LIVE: "set[subprocess.Popen[bytes]]" = set()


def gatehouse_bin() -> Path:
    value = os.environ.get("GATEHOUSE_BIN")
    if not value:
        return DEFAULT_BIN
    path = Path(value)
    return path if path.is_absolute() else (REPO_ROOT / path)


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral port that was free a moment ago (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def kill_all_started() -> None:
    for proc in list(_LIVE):
        _LIVE.discard(proc)
        if proc.poll() is None:
            try:
                proc.kill()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass


def run_cli(args: Sequence[str], *, timeout: float = 30.0, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Runs ``gatehouse ARGS`` to completion (validate, version) and returns its output."""
    return subprocess.run([str(gatehouse_bin()), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=str(cwd) if cwd else None, stdin=subprocess.DEVNULL)


class GatewayStartError(AssertionError):
    pass


class Gateway:
    """One ``gatehouse run`` process listening on 127.0.0.1:``port``."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path, port: int, config_paths: Sequence[Path], access_log: Path,
                 extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 preexec_fn: Callable[[], None] | None = None):
        self.workdir = workdir
        self.port = port
        self.config_paths = list(config_paths)
        self.access_log_path = access_log
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.preexec_fn = preexec_fn
        self.stdout_path = workdir / "gatehouse.stdout"
        self.stderr_path = workdir / "gatehouse.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self._clients: list[httpx.Client] = []

    # ------------------------------------------------------------------------------------ lifecycle

    @property
    def command(self) -> list[str]:
        cmd = [str(gatehouse_bin()), "run"]
        for path in self.config_paths:
            cmd += ["--config", str(path)]
        return cmd + self.extra_args

    def start(self, wait: bool = True, timeout: float = 10.0) -> "Gateway":
        stdout = open(self.stdout_path, "wb")
        stderr = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(self.command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                         cwd=str(self.workdir), start_new_session=True,
                                         env={**os.environ, **self.env} if self.env else None,
                                         preexec_fn=self.preexec_fn)
        finally:
            stdout.close()
            stderr.close()
        _LIVE.add(self.proc)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise GatewayStartError(
                    f"gatehouse exited with {self.proc.returncode} before listening on {self.port}\n"
                    f"{self.describe()}")
            if port_accepts(self.host, self.port):
                return
            time.sleep(0.05)
        raise GatewayStartError(f"gatehouse did not listen on {self.port} within {timeout}s\n{self.describe()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        self.returncode = self.proc.wait(timeout=timeout)
        return self.returncode

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 25.0) -> int:
        """Sends ``sig`` and waits for the exit code (kills and raises if it does not exit in time)."""
        self.close_clients()
        if self.proc is None:
            raise RuntimeError("not started")
        if self.proc.poll() is None:
            self.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"gatehouse did not exit within {timeout}s of signal {sig}\n{self.describe()}")
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self) -> None:
        self.close_clients()
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            self.returncode = self.proc.returncode
            _LIVE.discard(self.proc)

    # ------------------------------------------------------------------------------------- clients

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client bound to the gateway (closed at teardown). No proxies from the environment."""
        kwargs.setdefault("timeout", 10.0)
        client = httpx.Client(base_url=self.url, trust_env=False, **kwargs)
        self._clients.append(client)
        return client

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A one-shot request on a fresh connection."""
        timeout = kwargs.pop("timeout", 10.0)
        with httpx.Client(base_url=self.url, trust_env=False, timeout=timeout) as client:
            return client.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def raw(self, timeout: float = 10.0) -> RawConnection:
        return RawConnection(self.host, self.port, timeout=timeout)

    def close_clients(self) -> None:
        for client in self._clients:
            try:
                client.close()
            except Exception:
                pass
        self._clients.clear()

    # ------------------------------------------------------------------------------- observability

    def rss_kb(self) -> int:
        """Resident set size of the gateway process, from /proc/PID/status (VmRSS, kB)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("VmRSS not found")

    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def describe(self, tail: int = 4000) -> str:
        return (f"command: {' '.join(self.command)}\n--- stderr (tail) ---\n{self.stderr_text()[-tail:]}\n"
                f"--- stdout (tail) ---\n{self.stdout_text()[-tail:]}")

    def _read_log(self) -> list[dict[str, Any]]:
        try:
            data = self.access_log_path.read_bytes()
        except FileNotFoundError:
            return []
        entries = []
        for line in data.split(b"\n")[:-1]:  # the last element is "" or a line still being written
            line = line.strip()
            if not line:
                continue
            try:
                entries.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"access log line is not JSON: {line[:500]!r}")
        return entries

    def access_log_lines(self, min_count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Parsed access-log entries, polling until there are at least ``min_count`` (or the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self._read_log()
            if len(entries) >= min_count or time.monotonic() >= deadline:
                return entries
            time.sleep(0.05)

    def wait_for_log(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0,
                     count: int = 1) -> list[dict[str, Any]]:
        """Polls until ``count`` entries satisfy ``predicate``; fails with the log content if they don't."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [e for e in self._read_log() if predicate(e)]
            if len(matching) >= count:
                return matching
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{len(matching)} of {count} expected access-log entries after {timeout}s; log has:\n"
                    + "\n".join(json.dumps(e) for e in self._read_log()[-20:]))
            time.sleep(0.05)

    def log_entry(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        return self.wait_for_log(predicate, timeout=timeout)[-1]

    def log_for_path(self, path: str, timeout: float = 5.0) -> dict[str, Any]:
        return self.log_entry(lambda e: e.get("path") == path, timeout=timeout)


class RssSampler:
    """Samples a gateway's RSS on a thread; ``max_kb`` is the peak seen."""

    def __init__(self, gateway: Gateway, interval: float = 0.05):
        self.gateway = gateway
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self.gateway.rss_kb())
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    @property
    def max_kb(self) -> int:
        return max(self.samples) if self.samples else 0
