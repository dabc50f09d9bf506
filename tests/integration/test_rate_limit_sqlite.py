"""The ``sqlite`` rate-limit store (Bootstrap ``stateDir``): quota counts are kept in memory and written
behind to ``STATE_DIR/ratelimit.sqlite`` every second, so a quota survives a restart and a ``kill -9``
(losing at most the last second of counting, never resetting), and a corrupt file is moved aside with a
log line while the gateway starts on a fresh one."""
from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

from harness import config as cfg
from harness.gateway import run_cli

QUOTA = {"name": "daily", "key": ["request.headers[x-api-key]"], "quota": {"requests": 5, "period": "Day"}}
ALICE = {"x-api-key": "alice"}


def quota_gateway(gateway, upstream, state: Path):
    up = upstream("backend")
    return gateway(cfg.simple_backend(up) + [cfg.rate_limit_policy("limits", [QUOTA])],
                   bootstrap={"stateDir": str(state)})


def saved_count(state: Path, key: str) -> int | None:
    """The count the store saved for ``key`` (the low 32 bits of its state), or None if no row yet."""
    database = state / "ratelimit.sqlite"
    if not database.exists():
        return None
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
        row = connection.execute("SELECT state FROM counters WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0] & 0xFFFFFFFF


def wait_for_saved(state: Path, key: str, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while saved_count(state, key) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert saved_count(state, key) == count


def test_a_quota_survives_a_restart_and_a_kill_9(gateway, upstream, tmp_path):
    state = tmp_path / "state"
    gw = quota_gateway(gateway, upstream, state)
    assert [gw.get("/", headers=ALICE).headers["x-ratelimit-remaining"] for _ in range(2)] == ["4", "3"]
    assert gw.stop() == 0
    gw.start()
    assert gw.get("/", headers=ALICE).headers["x-ratelimit-remaining"] == "2"
    # Written behind within a second: then a kill -9 loses nothing.
    wait_for_saved(state, "alice", 3)
    gw.send_signal(signal.SIGKILL)
    gw.wait(timeout=5)
    gw.start()
    assert [gw.get("/", headers=ALICE).status_code for _ in range(3)] == [200, 200, 429]
    assert "rate-limit state: " in gw.stderr_text() + gw.stdout_text()


def test_a_corrupt_state_file_is_moved_aside_and_the_gateway_starts(gateway, upstream, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "ratelimit.sqlite").write_bytes(b"not a database" * 1000)
    gw = quota_gateway(gateway, upstream, state)
    assert gw.get("/", headers=ALICE).headers["x-ratelimit-remaining"] == "4"
    logs = gw.stderr_text() + gw.stdout_text()
    assert "is not a sound SQLite database" in logs and "moved it to" in logs
    aside = list(state.glob("ratelimit.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"not a database")
    wait_for_saved(state, "alice", 1)


def test_the_sqlite_store_needs_a_state_dir(config_dir):
    cfg.write_config(config_dir, [cfg.bootstrap("-", rateLimitStore={"type": "sqlite"})])
    result = run_cli(["validate", "--config", str(config_dir)])
    assert result.returncode == 1
    assert "spec.rateLimitStore.type: the sqlite store keeps its file in spec.stateDir: set it" in result.stdout


def test_an_unwritable_state_dir_stops_start_up_with_a_clear_error(gateway, upstream, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the state directory should be")
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up) + [cfg.rate_limit_policy("limits", [QUOTA])],
                 bootstrap={"stateDir": str(blocker / "state")}, start=False)
    gw.start(wait=False)
    assert gw.wait(timeout=10) == 1
    assert f"rate-limit state in {blocker / 'state'} cannot be used" in gw.stderr_text() + gw.stdout_text()


def test_explain_reads_the_saved_quota_counts(gateway, upstream, tmp_path):
    state = tmp_path / "state"
    gw = quota_gateway(gateway, upstream, state)
    assert [gw.get("/", headers=ALICE).status_code for _ in range(3)] == [200] * 3
    wait_for_saved(state, "alice", 3)
    result = run_cli(["explain", "--config", str(gw.config_paths[0]), "-H", "x-api-key: alice",
                      f"http://127.0.0.1:{gw.port}/x"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"figures from the sqlite {state} counters as they are now" in result.stdout
    assert '/daily (quota 5/day (UTC)): key "alice": 1 of 5 left after this request' in result.stdout
