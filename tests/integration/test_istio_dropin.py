"""The YAML a cluster already has, loaded unchanged (issue 13): Kubernetes service names resolved
through DNS (a loopback DNS server the test starts), resources that do not configure a gateway listed
and skipped, values Istio accepts but that never match loaded with a warning (``validate --strict``
refuses them), and RequestAuthentication keys found by OpenID discovery from a local HTTPS issuer."""
from __future__ import annotations

import json
import random
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness import config as cfg
from harness import jwt_keys as keys
from harness.admin import samples, wait_for_sample
from harness.dns import DNSServer
from harness.gateway import free_port, gatehouse_bin
from harness.upstream import Upstream

pytestmark = pytest.mark.needs_binary

# Istio's samples/bookinfo/networking/bookinfo-gateway.yaml, as published; only the listener port is a
# placeholder (8080 in the sample), so parallel test runs do not collide.
BOOKINFO_GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
spec:
  # The selector matches the ingress gateway pod labels.
  # If you installed Istio using Helm following the standard documentation, this would be "istio=ingress"
  selector:
    istio: ingressgateway # use istio default controller
  servers:
  - port:
      number: {port}
      name: http
      protocol: HTTP
    hosts:
    - "*"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookinfo
spec:
  hosts:
  - "*"
  gateways:
  - bookinfo-gateway
  http:
  - match:
    - uri:
        exact: /productpage
    - uri:
        prefix: /static
    - uri:
        exact: /login
    - uri:
        exact: /logout
    - uri:
        prefix: /api/v1/products
    route:
    - destination:
        host: productpage
        port:
          number: 9080
"""

# What `kubectl apply -f` would be given: workloads, a mesh-wide PeerAuthentication, a Sidecar and a
# mesh-only VirtualService beside the gateway's own resources.
MIXED_MANIFEST = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: bookinfo-productpage
---
apiVersion: v1
kind: Service
metadata:
  name: productpage
  labels: {app: productpage}
spec:
  ports:
  - port: 9080
    name: http
  selector:
    app: productpage
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: productpage-v1
spec:
  replicas: 1
  selector:
    matchLabels: {app: productpage, version: v1}
  template:
    metadata:
      labels: {app: productpage, version: v1}
    spec:
      serviceAccountName: bookinfo-productpage
      containers:
      - name: productpage
        image: docker.io/istio/examples-bookinfo-productpage-v1:1.20.2
        ports:
        - containerPort: 9080
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: istio-system
spec:
  egress:
  - hosts:
    - "./*"
    - "istio-system/*"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - fault:
      delay:
        percentage:
          value: 100.0
        fixedDelay: 7s
    route:
    - destination:
        host: reviews
        subset: v2
"""


_USED_ADDRESSES: set[str] = set()


def loopback_address() -> str:
    """An address of 127/8 no other upstream of this run uses, so each can own port 9080 on it."""
    while True:
        address = f"127.{random.randrange(2, 250)}.{random.randrange(0, 256)}.{random.randrange(2, 250)}"
        if address not in _USED_ADDRESSES:
            _USED_ADDRESSES.add(address)
            return address


@pytest.fixture
def dns():
    server = DNSServer(ttl=30).start()
    yield server
    server.stop()


@pytest.fixture
def service_upstream():
    """``make(name)`` -> an upstream listening on <unique loopback address>:9080, as a pod would."""
    started: list[Upstream] = []

    def make(name: str) -> Upstream:
        server = Upstream(name=name, host=loopback_address(), port=9080).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def bookinfo_gateway(gateway, dns, **bootstrap):
    port = free_port()
    return gateway([], gateway_resource=False, port=port,
                   bootstrap={"labels": {"istio": "ingressgateway"}, "dns": {"resolvers": [dns.address]}, **bootstrap},
                   files={"bookinfo-gateway.yaml": BOOKINFO_GATEWAY.format(port=port)})


def test_bookinfo_routes_to_a_service_name_resolved_through_dns(gateway, dns, service_upstream):
    productpage = service_upstream("productpage")
    dns.set("productpage.default.svc.cluster.local", [productpage.host])
    admin = free_port()
    gw = bookinfo_gateway(gateway, dns, admin={"port": admin})
    for _ in range(5):
        response = gw.get("/productpage")
        assert response.status_code == 200 and response.headers["x-upstream-name"] == "productpage"
    assert gw.get("/reviews").status_code == 404, "only the sample's paths are routed"
    entry = gw.log_for_path("/productpage")
    assert entry["upstream_cluster"] == "outbound|9080||productpage.default.svc.cluster.local"
    assert entry["upstream_host"] == f"{productpage.host}:9080"
    assert dns.count("productpage.default.svc.cluster.local") == 1, "the answer is kept for its TTL (30 s)"
    labels = [labels for labels, _ in samples(admin, "istio_requests_total")]
    assert any(l.get("destination_service") == "productpage.default.svc.cluster.local"
               and l.get("destination_service_name") == "productpage"
               and l.get("destination_service_namespace") == "default" for l in labels), labels


def test_a_service_moves_when_its_ttl_expires(gateway, dns, service_upstream):
    first, second = service_upstream("first"), service_upstream("second")
    dns.ttl = 1
    dns.set("productpage.default.svc.cluster.local", [first.host])
    gw = bookinfo_gateway(gateway, dns)
    assert gw.get("/productpage").headers["x-upstream-name"] == "first"
    dns.set("productpage.default.svc.cluster.local", [second.host])
    deadline = time.monotonic() + 10
    while gw.get("/productpage").headers.get("x-upstream-name") != "second":
        assert time.monotonic() < deadline, "the new address was never picked up after the TTL"
        time.sleep(0.1)
    # A refresh that fails (the name is gone) keeps the last good addresses serving.
    with dns._lock:
        del dns.records["productpage.default.svc.cluster.local"]
    asked = dns.count("productpage.default.svc.cluster.local")
    deadline = time.monotonic() + 10
    while dns.count("productpage.default.svc.cluster.local") <= asked:
        assert gw.get("/productpage").status_code == 200
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert gw.get("/productpage").headers["x-upstream-name"] == "second"


def test_a_resolver_that_does_not_answer_is_skipped(gateway, dns, service_upstream):
    productpage = service_upstream("productpage")
    dns.set("productpage.default.svc.cluster.local", [productpage.host])
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))  # bound, never read: queries to it time out
    try:
        port = free_port()
        gw = gateway([], gateway_resource=False, port=port,
                     bootstrap={"labels": {"istio": "ingressgateway"},
                                "dns": {"resolvers": [f"127.0.0.1:{silent.getsockname()[1]}", dns.address]}},
                     files={"bookinfo-gateway.yaml": BOOKINFO_GATEWAY.format(port=port)})
        response = gw.get("/productpage", timeout=15)
        assert response.status_code == 200 and response.headers["x-upstream-name"] == "productpage"
        assert dns.count("productpage.default.svc.cluster.local") == 1
    finally:
        silent.close()


def test_an_unresolvable_service_is_503_UH_with_the_reason(gateway, dns):
    gw = bookinfo_gateway(gateway, dns)
    response = gw.get("/productpage")
    assert (response.status_code, response.text) == (503, "no healthy upstream")
    entry = gw.log_for_path("/productpage")
    assert entry["response_flags"] == "UH"
    assert "NXDOMAIN" in entry["upstream_transport_failure_reason"]
    assert "productpage.default.svc.cluster.local" in entry["upstream_transport_failure_reason"]
    assert gw.running


def run_validate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(gatehouse_bin()), "validate", *args], capture_output=True, text=True, timeout=30)


def write_bootstrap(directory: Path, **spec) -> None:
    cfg.write_config(directory, [cfg.bootstrap("-", labels={"istio": "ingressgateway"}, **spec)], filename="00-bootstrap.yaml")


def test_a_mixed_manifest_loads_with_notices(config_dir):
    write_bootstrap(config_dir, dns={"resolvers": ["127.0.0.1:5353"]})
    (config_dir / "bookinfo-gateway.yaml").write_text(BOOKINFO_GATEWAY.format(port=free_port()))
    (config_dir / "bookinfo.yaml").write_text(MIXED_MANIFEST)
    result = run_validate("--config", str(config_dir))
    out = result.stdout
    assert result.returncode == 0, out
    assert "not applicable to a gateway: PeerAuthentication istio-system/default" in out
    assert "not applicable to a gateway: Sidecar istio-system/default" in out
    assert "not applicable to a gateway: VirtualService default/reviews" in out and "mesh's sidecars only" in out
    assert "skipped 3 Kubernetes resource(s) that do not configure a gateway: 1 Deployment, 1 Service, 1 ServiceAccount" in out
    assert ("resolved through DNS as Kubernetes services (via 127.0.0.1:5353): "
            "outbound|9080||productpage.default.svc.cluster.local") in out
    assert "warning" not in out, "nothing here deserves a warning"


def test_a_mixed_manifest_serves_and_config_dump_lists_what_is_not_applied(gateway, dns, service_upstream):
    productpage = service_upstream("productpage")
    dns.set("productpage.default.svc.cluster.local", [productpage.host])
    admin = free_port()
    port = free_port()
    gw = gateway([], gateway_resource=False, port=port,
                 bootstrap={"labels": {"istio": "ingressgateway"}, "dns": {"resolvers": [dns.address]},
                            "admin": {"port": admin}},
                 files={"bookinfo-gateway.yaml": BOOKINFO_GATEWAY.format(port=port), "bookinfo.yaml": MIXED_MANIFEST})
    assert gw.get("/productpage").status_code == 200
    import httpx
    dump = httpx.get(f"http://127.0.0.1:{admin}/config_dump", trust_env=False).json()
    listed = {entry["resource"] for entry in dump["not_applicable"]}
    assert {"PeerAuthentication istio-system/default", "Sidecar istio-system/default", "VirtualService default/reviews"} <= listed
    assert dump["skipped_kubernetes_resources"] == {"Deployment": 1, "Service": 1, "ServiceAccount": 1}
    assert "skipped 3 Kubernetes resource(s)" in gw.stderr_text()


@pytest.mark.parametrize("document,message", [
    ("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {}\n",
     "Kubernetes Gateway API HTTPRoute would configure an Istio gateway"),
    ("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec: {ingressClassName: istio}\n",
     "an Ingress of class istio would configure the Istio ingress gateway"),
    ("apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\nspec: {}\n",
     "Telemetry is not supported"),
])
def test_kinds_that_would_change_the_gateway_stay_errors(config_dir, document, message):
    write_bootstrap(config_dir)
    (config_dir / "extra.yaml").write_text(document)
    result = run_validate("--config", str(config_dir))
    assert result.returncode == 1
    assert "extra.yaml:1:1:" in result.stdout and message in result.stdout, result.stdout


def test_an_ingress_of_another_class_is_skipped(config_dir):
    write_bootstrap(config_dir)
    (config_dir / "extra.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec: {ingressClassName: nginx}\n")
    result = run_validate("--config", str(config_dir))
    assert result.returncode == 0 and "1 Ingress" in result.stdout, result.stdout


NEVER_MATCHING = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: readers, namespace: istio-system}
spec:
  action: ALLOW
  rules:
  - to:
    - operation:
        methods: ["get"]
"""


def test_never_matching_values_load_with_a_warning_and_fail_under_strict(config_dir):
    write_bootstrap(config_dir)
    (config_dir / "policy.yaml").write_text(NEVER_MATCHING)
    loose = run_validate("--config", str(config_dir))
    assert loose.returncode == 0, loose.stdout
    assert 'policy.yaml:9:' in loose.stdout and 'warning: methods are case-sensitive: "get" never matches; write "GET"' in loose.stdout
    strict = run_validate("--strict", "--config", str(config_dir))
    assert strict.returncode == 1
    assert "0 error(s), 1 warning(s) (--strict: warnings fail)" in strict.stdout


def test_a_never_matching_allow_denies_as_in_istio(gateway, upstream):
    up = upstream("backend")
    gw = gateway(cfg.simple_backend(up), files={"policy.yaml": NEVER_MATCHING})
    response = gw.get("/")
    assert (response.status_code, response.text) == (403, "RBAC: access denied")
    assert "never matches" in gw.stderr_text(), "the warning is logged at start-up"


class Issuer:
    """An HTTPS OpenID provider on loopback: /.well-known/openid-configuration names /keys."""

    def __init__(self, pki):
        files = pki.ca.issue("localhost", dns=["localhost"]).write(pki.dir, "issuer")
        outer = self
        self.discovery_hits = 0
        self.key_hits = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    outer.discovery_hits += 1
                    body = json.dumps({"issuer": outer.issuer, "jwks_uri": f"{outer.issuer}/keys"}).encode()
                elif self.path == "/keys":
                    outer.key_hits += 1
                    body = keys.jwks().encode()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(files[0]), str(files[1]))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.issuer = f"https://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_openid_discovery_finds_the_keys_of_an_https_issuer(gateway, upstream, pki):
    issuer = Issuer(pki)
    try:
        up = upstream("backend")
        admin = free_port()
        gw = gateway(cfg.simple_backend(up) + [cfg.request_authentication("jwt", [{"issuer": issuer.issuer}])],
                     bootstrap={"jwksRootCerts": str(pki.ca_file), "admin": {"port": admin}})
        good = gw.get("/", headers={"Authorization": f"Bearer {keys.RSA.sign(iss=issuer.issuer)}"})
        assert good.status_code == 200, "keys are discovered before the gateway listens"
        assert issuer.discovery_hits >= 1 and issuer.key_hits >= 1
        forged = gw.get("/", headers={"Authorization": f"Bearer {keys.OTHER_RSA.sign(iss=issuer.issuer)}"})
        assert (forged.status_code, forged.text) == (401, "Jwt verification fails")
        assert gw.log_entry(lambda e: e.get("response_code") == 200)["request_principal"] == f"{issuer.issuer}/alice"
        source = f"openid-discovery:{issuer.issuer}"
        assert wait_for_sample(admin, "gatehouse_jwks_fetches_total", {"source": source, "result": "success"}) >= 1
    finally:
        issuer.close()


def test_openid_discovery_without_the_issuers_ca_fails_closed(gateway, upstream, pki):
    issuer = Issuer(pki)
    try:
        up = upstream("backend")
        admin = free_port()
        gw = gateway(cfg.simple_backend(up) + [cfg.request_authentication("jwt", [{"issuer": issuer.issuer}])],
                     bootstrap={"admin": {"port": admin}})
        response = gw.get("/", headers={"Authorization": f"Bearer {keys.RSA.sign(iss=issuer.issuer)}"})
        assert (response.status_code, response.text) == (401, "Jwks remote fetch is failed")
        assert issuer.key_hits == 0
        source = f"openid-discovery:{issuer.issuer}"
        assert wait_for_sample(admin, "gatehouse_jwks_fetches_total", {"source": source, "result": "failure"}) >= 1
        assert "openid-discovery:" in gw.stderr_text() and "fetch failed" in gw.stderr_text()
    finally:
        issuer.close()


def with_export(resource: dict, export_to: list[str]) -> dict:
    resource["spec"]["exportTo"] = export_to
    return resource


def test_export_to_hides_what_is_not_exported_to_the_gateways_namespace(gateway, upstream):
    up = upstream("backend")
    hidden = with_export(cfg.virtual_service("hidden", [cfg.route(match={"uri": {"prefix": "/hidden"}})]), ["."])
    shown = with_export(cfg.virtual_service("shown", [cfg.route(match={"uri": {"prefix": "/shown"}})]), ["istio-system"])
    gw = gateway([cfg.service_entry(cfg.BACKEND_HOST, [cfg.endpoint(up)]), hidden, shown])
    assert gw.get("/shown").status_code == 200
    assert gw.get("/hidden").status_code == 404, "a VirtualService exported only to its own namespace (default) " \
                                                  "does not reach a gateway in istio-system, as in Istio"
    assert "not applicable to a gateway: VirtualService default/hidden" in gw.stderr_text()


def test_source_labels_and_namespace_select_routes_as_istio_does(gateway, upstream):
    wrong, right = upstream("wrong"), upstream("right")
    http = [
        cfg.route(cfg.destination("wrong.example.internal"), match={"sourceLabels": {"app": "sidecar-client"}}),
        cfg.route(cfg.destination("wrong.example.internal"), match={"sourceNamespace": "apps"}),
        cfg.route(cfg.destination("right.example.internal"), match={"sourceLabels": {"istio": "ingressgateway"},
                                                                       "sourceNamespace": "istio-system"}),
    ]
    gw = gateway([cfg.service_entry("wrong.example.internal", [cfg.endpoint(wrong)]),
                  cfg.service_entry("right.example.internal", [cfg.endpoint(right)]),
                  cfg.virtual_service("by-source", http)], bootstrap={"labels": {"istio": "ingressgateway"}})
    response = gw.get("/")
    assert response.status_code == 200 and response.headers["x-upstream-name"] == "right"


def test_suffix_matches_and_path_templates_with_a_literal_after_the_rest(gateway, upstream):
    up = upstream("backend")
    http = [cfg.route(match={"authority": {"suffix": ".internal.test"}}, name="internal"),
            cfg.action("directResponse", {"status": 404}, name="other")]
    deny = cfg.authorization_policy("no-edit", {"action": "DENY",
                                                "rules": [{"to": [{"operation": {"paths": ["/files/{**}/edit"]}}]}]})
    gw = gateway(cfg.simple_backend(up, http) + [deny])
    assert gw.get("/files/a/b/view", headers={"Host": "api.internal.test"}).status_code == 200
    assert gw.get("/files/a/b/edit", headers={"Host": "api.internal.test"}).status_code == 403
    assert gw.get("/files/edit", headers={"Host": "api.internal.test"}).status_code == 200, "{**} takes at least a segment"
    assert gw.get("/files/a", headers={"Host": "api.internal.testing"}).status_code == 404
