"""Headers a proxy owns: hop-by-hop removal, x-forwarded-*, x-request-id, x-envoy-* and service time."""
from __future__ import annotations

from harness.checks import UUID_RE
from harness.upstream import echo_of


def test_hop_by_hop_request_headers_are_removed(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        r = conn.request("GET", "/hop", [
            ("Connection", "keep-alive, x-nominated"),
            ("X-Nominated", "secret"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "gzip"),
            ("Proxy-Connection", "keep-alive"),
            ("X-Ordinary", "kept"),
        ])
    echo = echo_of(r)
    names = echo.header_names()
    for hop in ("x-nominated", "keep-alive", "te", "proxy-connection"):
        assert hop not in names, f"{hop} must not be forwarded: {echo.headers}"
    assert (echo.header("connection") or "keep-alive").lower() in ("keep-alive", ""), echo.headers
    assert echo.header("x-ordinary") == "kept"


def test_upgrade_header_is_not_forwarded_for_a_plain_request(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        r = conn.request("GET", "/upgrade", [("Upgrade", "something/1.0")])
    assert r.status == 200
    assert not echo_of(r).has_header("upgrade")


def test_hop_by_hop_response_headers_are_removed(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        r = conn.request("GET", "/resp-hop?resp_header=Connection:x-resp-nominated"
                                "&resp_header=x-resp-nominated:1&resp_header=Keep-Alive:timeout%3D5"
                                "&resp_header=Proxy-Connection:keep-alive&resp_header=x-resp-ordinary:1")
    assert r.status == 200
    assert not r.has_header("x-resp-nominated")
    assert not r.has_header("proxy-connection")
    assert r.header("x-resp-ordinary") == "1"


def test_x_forwarded_for_is_set(proxied):
    echo = echo_of(proxied.gw.get("/xff"))
    assert echo.header_values("x-forwarded-for") == ["127.0.0.1"]


def test_x_forwarded_for_is_appended(proxied):
    echo = echo_of(proxied.gw.get("/xff", headers={"X-Forwarded-For": "203.0.113.7"}))
    values = [v.strip() for v in ",".join(echo.header_values("x-forwarded-for")).split(",")]
    assert values == ["203.0.113.7", "127.0.0.1"]


def test_x_forwarded_proto(proxied):
    echo = echo_of(proxied.gw.get("/xfp"))
    assert echo.header_values("x-forwarded-proto") == ["http"]


def test_x_request_id_generated(proxied):
    gw = proxied.gw
    ids = set()
    for i in range(3):
        echo = echo_of(gw.get(f"/rid/{i}"))
        values = echo.header_values("x-request-id")
        assert len(values) == 1 and UUID_RE.match(values[0]), values
        ids.add(values[0])
    assert len(ids) == 3, "each request gets its own id"
    entry = gw.log_for_path("/rid/2")
    assert entry["request_id"] in ids


def test_x_request_id_kept(proxied):
    gw = proxied.gw
    echo = echo_of(gw.get("/rid-kept", headers={"x-request-id": "client-chosen-id-42"}))
    assert echo.header_values("x-request-id") == ["client-chosen-id-42"]
    assert gw.log_for_path("/rid-kept")["request_id"] == "client-chosen-id-42"


def test_client_x_envoy_headers_are_stripped(proxied):
    echo = echo_of(proxied.gw.get("/envoy", headers={
        "x-envoy-original-path": "/admin",
        "x-envoy-upstream-rq-timeout-ms": "1",
        "x-envoy-retry-on": "5xx",
        "X-Envoy-Custom": "forged",
    }))
    assert echo.header("x-envoy-original-path") != "/admin"
    for name in ("x-envoy-upstream-rq-timeout-ms", "x-envoy-retry-on", "x-envoy-custom"):
        assert not echo.has_header(name), f"{name} from the client reached the upstream"


def test_upstream_service_time_header(proxied):
    r = proxied.gw.get("/ust")
    value = r.headers.get("x-envoy-upstream-service-time")
    assert value is not None and value.isdigit(), r.headers


def test_upstream_service_time_reflects_upstream_delay(proxied):
    r = proxied.gw.get("/ust-slow?sleep=0.3")
    assert r.status_code == 200
    assert int(r.headers["x-envoy-upstream-service-time"]) >= 250


def test_host_and_end_to_end_headers_pass_through(proxied):
    echo = echo_of(proxied.gw.get("/e2e", headers={"Host": "shop.example.com", "Accept": "text/html",
                                                    "Cookie": "a=1", "Authorization": "Bearer x"}))
    assert echo.header_values("host") == ["shop.example.com"]
    assert echo.header("accept") == "text/html"
    assert echo.header("cookie") == "a=1"
    assert echo.header("authorization") == "Bearer x"


def test_repeated_request_headers_keep_every_value(proxied):
    gw = proxied.gw
    with gw.raw() as conn:
        r = conn.request("GET", "/repeat", [("X-Role", "user"), ("X-Role", "admin")])
    values = [v.strip() for v in ",".join(echo_of(r).header_values("x-role")).split(",")]
    assert sorted(values) == ["admin", "user"]
