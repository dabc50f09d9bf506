"""A rejected reload changes nothing a client can observe (issue 12): TLS contexts of the serving snapshot
survive a reload that would have removed them, and a config file that would exhaust the loader (an alias
bomb) is a load error at its line while the running gateway keeps serving with flat memory."""
from __future__ import annotations

import signal
import socket
import time

from harness import config as cfg
from harness import tlsclient
from harness.gateway import free_port, run_cli

BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def wait_for_text(gw, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in gw.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert text in gw.stderr_text(), gw.describe()


def test_a_rejected_reload_keeps_every_tls_context(gateway, upstream, pki):
    port = free_port()
    up = upstream("backend")
    servers = [cfg.https_server(port, ["a.test"], cfg.files_tls(pki.a_files), name="https-a"),
               cfg.https_server(port, ["admin.test"], cfg.files_tls(pki.admin_files), name="https-admin")]
    gw = gateway(cfg.simple_backend(up), gateway_resource=False, port=port, extra_args=["--no-watch-config"],
                 files={"gateway.yaml": cfg.to_yaml_stream([cfg.gateway_of(servers)])})
    assert tlsclient.get(port, "/before", sni="admin.test", ca=pki.ca_file).status == 200

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        # admin.test removed, and a new port that cannot be bound: the whole reload is rejected.
        rejected = [servers[0], {"port": {"number": taken, "name": "http-x", "protocol": "HTTP"},
                                 "bind": "127.0.0.1", "hosts": ["*"]}]
        (gw.config_paths[0] / "gateway.yaml").write_text(cfg.to_yaml_stream([cfg.gateway_of(rejected)]))
        gw.send_signal(signal.SIGHUP)
        wait_for_text(gw, f"cannot listen on 127.0.0.1:{taken}")
        wait_for_text(gw, "still serving version 1")
        for attempt in range(3):
            response = tlsclient.get(port, f"/after-{attempt}", sni="admin.test", ca=pki.ca_file)
            assert response.status == 200, "the serving snapshot's TLS server lost its context"
        assert tlsclient.get(port, "/a", sni="a.test", ca=pki.ca_file).status == 200


def test_validate_refuses_an_alias_bomb_quickly_at_its_line(config_dir):
    (config_dir / "bomb.yaml").write_text(BOMB)
    started = time.monotonic()
    result = run_cli(["validate", "--config", str(config_dir)], timeout=20)
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    output = result.stdout + result.stderr
    line = next(l for l in output.splitlines() if "bomb.yaml" in l and "YAML" in l)
    assert "alias" in line and "refusing" in line, line
    assert int(line.split(":")[1]) in range(5, 10), line


def test_an_alias_bomb_dropped_into_a_watched_directory_is_rejected_with_flat_memory(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up))
    assert gw.get("/before").status_code == 200
    baseline = gw.rss_kb()
    (gw.config_paths[0] / "zz-bomb.yaml").write_text(BOMB)
    wait_for_text(gw, "zz-bomb.yaml")
    wait_for_text(gw, "reload rejected")
    assert gw.get("/after").status_code == 200
    assert gw.running()
    assert gw.rss_kb() - baseline < 64 * 1024, f"RSS grew from {baseline} to {gw.rss_kb()} kB"


def test_a_deeply_nested_file_is_refused(config_dir):
    depth = 1000
    (config_dir / "deep.yaml").write_text("a: " + "[" * depth + "]" * depth + "\n")
    result = run_cli(["validate", "--config", str(config_dir)], timeout=20)
    assert result.returncode == 1
    assert "nest more than" in result.stdout + result.stderr
