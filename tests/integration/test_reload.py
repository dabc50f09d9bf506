"""SIGHUP reloads routes: a valid config is swapped in, an invalid one is rejected and the old one serves."""
from __future__ import annotations

import signal
import time

from harness import config as cfg

ROUTES = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: main, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - directResponse: {{status: 200, body: {{string: "{body}"}}}}
"""


def wait_for_body(gw, expected: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        body = gw.get("/").text
        if body == expected:
            return body
        time.sleep(0.05)
    return body


def test_sighup_swaps_in_a_valid_config(gateway):
    gw = gateway(files={"routes.yaml": ROUTES.format(body="version one")}, extra_args=["--no-watch-config"])
    assert gw.get("/").text == "version one"
    (gw.config_paths[0] / "routes.yaml").write_text(ROUTES.format(body="version two"))
    gw.send_signal(signal.SIGHUP)
    assert wait_for_body(gw, "version two") == "version two"
    assert "reloaded: version 2 (SIGHUP)" in gw.stderr_text()


def test_invalid_config_on_sighup_keeps_the_old_snapshot(gateway):
    gw = gateway(files={"routes.yaml": ROUTES.format(body="still here")}, extra_args=["--no-watch-config"])
    (gw.config_paths[0] / "routes.yaml").write_text(ROUTES.format(body="x").replace("status: 200", "status: nope"))
    gw.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reload rejected" not in gw.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    stderr = gw.stderr_text()
    assert "reload rejected" in stderr
    assert "routes.yaml:8:" in stderr and "spec.http[0].directResponse.status" in stderr
    assert gw.get("/").text == "still here"
    assert gw.running()
