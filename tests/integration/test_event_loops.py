"""The default number of event loops is one per CPU the process may run on: a gateway pinned with
taskset (or systemd CPUAffinity=) starts as many loops as it has CPUs, not one per core of the machine."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


def event_loop_threads(pid: int) -> int:
    names = [(task / "comm").read_text().strip() for task in Path(f"/proc/{pid}/task").iterdir()]
    return sum(1 for name in names if name.startswith("NIO-ELT"))


def wait_for_stderr(gw, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in gw.stderr_text():
            return gw.stderr_text()
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in stderr:\n{gw.describe()}")


def usable_cpus() -> int:
    """What the gateway should find: the affinity mask, bounded by any cgroup CPU quota (v2 cpu.max up
    the hierarchy, v1 cfs quota), rounded up."""
    count = len(os.sched_getaffinity(0))
    quotas: list[str] = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            parts = [p for p in line[3:].split("/") if p]
            while True:
                quotas.append(f"/sys/fs/cgroup/{'/'.join(parts)}/cpu.max".replace("//", "/"))
                if not parts:
                    break
                parts.pop()
    for path in quotas:
        try:
            quota, period = Path(path).read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota != "max" and int(quota) > 0:
            count = min(count, -(-int(quota) // int(period)))
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0:
            count = min(count, -(-quota // period))
    except (OSError, ValueError):
        pass
    return max(1, count)


@pytest.mark.skipif(usable_cpus() < 2, reason="with one usable CPU, pinning bounds nothing")
def test_a_gateway_pinned_to_one_cpu_runs_one_event_loop(gateway):
    gw = gateway(start=False)
    gw.preexec_fn = lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    gw.start()
    wait_for_stderr(gw, "1 event loop (one per usable CPU, bounded by affinity)")
    assert event_loop_threads(gw.pid) == 1
    assert gw.get("/").status_code == 404


@pytest.mark.skipif(usable_cpus() < 2, reason="needs two CPUs to tell the bounds apart")
def test_unpinned_it_runs_one_loop_per_cpu_and_a_configured_count_wins(gateway):
    cpus = usable_cpus()
    gw = gateway()
    wait_for_stderr(gw, f"{cpus} event loops (one per usable CPU")
    assert event_loop_threads(gw.pid) == cpus
    configured = gateway(env={"GATEHOUSE_EVENT_LOOPS": "3"}, start=False)
    configured.preexec_fn = lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    configured.start()
    wait_for_stderr(configured, "3 event loops (configured)")
    assert event_loop_threads(configured.pid) == 3
