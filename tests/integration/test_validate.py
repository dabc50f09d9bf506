"""`gatehouse validate` (and `run`) on bad configs: `FILE:LINE:COL: Kind ns/name: field.path: message`, exit 1.

Each case writes a valid base (Bootstrap, Gateway, ServiceEntry, DestinationRule) to ``base.yaml`` and the
case's YAML to ``case.yaml``; the offending line carries a ``# HERE`` comment, so the expected line number
is read from the text. Message checks are loose: field path plus a keyword.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.gateway import Gateway, free_port, run_cli

pytestmark = pytest.mark.usefixtures("gatehouse_binary")

BASE = """\
apiVersion: gatehouse.dev/v1alpha1
kind: Bootstrap
metadata: {name: edge, namespace: istio-system}
spec:
  accessLog: {path: "-", format: json}
  limits: {maxRequestHeadersKb: 60, requestHeadersTimeout: 10s, drainTimeout: 20s}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: PORT, name: http, protocol: HTTP}
    bind: 127.0.0.1
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend}
spec:
  hosts: [backend.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 127.0.0.1, ports: {http: 9}, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: backend}
spec:
  host: backend.test
  subsets:
  - name: v1
    labels: {version: v1}
"""

VS_HEAD = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: main
spec:
  hosts: ["*"]
  gateways: [gw]
"""

VALID_VS = VS_HEAD + """\
  http:
  - name: api
    match:
    - uri: {prefix: /api}
      headers: {x-user: {exact: alice}}
    rewrite: {uri: /}
    timeout: 1.5s
    route:
    - destination: {host: backend.test, subset: v1}
      weight: 80
    - destination: {host: backend.test}
      weight: 20
  - redirect: {uri: /new, redirectCode: 302}
    match: [{uri: {exact: /old}}]
  - directResponse: {status: 200, body: {string: ok}}
"""

HTTPS_GW = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tlsgw}
spec:
  servers:
  - port: {number: 18443, name: https, protocol: HTTPS}
    hosts: [a.test]
"""

# A DestinationRule configures the gateway only when a gateway route reaches its host (Istio: otherwise it
# changes nothing here), so the rule under test comes with a route to backend.test.
DR_HEAD = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: to-backend}
spec:
  hosts: [backend.example]
  gateways: [gw]
  http: [{route: [{destination: {host: backend.test}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: backend-policy}
spec:
  host: backend.test
  trafficPolicy:
"""

DIAG = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<resource>[^:]+): (?P<path>\S+): (?P<message>.*)$")


@dataclass
class Diag:
    file: str
    line: int
    col: int
    resource: str
    path: str
    message: str
    raw: str


def parse(output: str) -> list[Diag]:
    out = []
    for raw in output.splitlines():
        match = DIAG.match(raw.strip())
        if match:
            out.append(Diag(match["file"], int(match["line"]), int(match["col"]), match["resource"],
                            match["path"], match["message"], raw))
    return out


def write(config_dir: Path, case: str | None, base: str = BASE) -> Path:
    (config_dir / "base.yaml").write_text(base.replace("PORT", str(free_port())))
    if case is not None:
        (config_dir / "case.yaml").write_text(case)
    return config_dir


def marked_line(text: str) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if "# HERE" in line]
    assert len(lines) == 1, "a case marks exactly one line"
    return lines[0]


def validate(config_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["validate", "--config", str(config_dir), *extra])


def find(diags: list[Diag], *, path: str, keywords: tuple[str, ...], file: str = "case.yaml") -> Diag:
    for diag in diags:
        text = diag.message.lower()
        if Path(diag.file).name == file and path in diag.path and all(k.lower() in text for k in keywords):
            return diag
    raise AssertionError(f"no diagnostic for {file} at {path!r} with {keywords}; got:\n"
                         + "\n".join(d.raw for d in diags))


CASES = {
    "unknown-field-did-you-mean": (VS_HEAD + """\
  http:
  - match:
    - uri:
        prefx: /a   # HERE
    route:
    - destination: {host: backend.test}
""", "spec.http[0].match[0].uri", ("unknown field", "did you mean", "prefix")),

    "unknown-route-field": (VS_HEAD + """\
  http:
  - route:
    - destination: {host: backend.test}
    timout: 5s   # HERE
""", "spec.http[0]", ("unknown field", "did you mean", "timeout")),

    "wrong-type": (VS_HEAD + """\
  http:
  - route:
    - destination: {host: backend.test}
      weight: eighty   # HERE
""", "spec.http[0].route[0].weight", ("integer",)),

    "wrong-type-list": (VS_HEAD.replace('  hosts: ["*"]\n', '  hosts: {a: b}   # HERE\n') + """\
  http:
  - route:
    - destination: {host: backend.test}
""", "spec.hosts", ("list",)),

    "missing-required-field": (VS_HEAD + """\
  http:
  - route:
    - destination: {subset: v1}   # HERE
""", "spec.http[0].route[0].destination", ("missing", "host")),

    "invalid-regex": (VS_HEAD + """\
  http:
  - match:
    - uri: {regex: "/a(b"}   # HERE
    route:
    - destination: {host: backend.test}
""", "spec.http[0].match[0].uri.regex", ("regex",)),

    "regex-lookahead-not-re2": (VS_HEAD + """\
  http:
  - match:
    - headers:
        x-id: {regex: "(?=admin).*"}   # HERE
    route:
    - destination: {host: backend.test}
""", "spec.http[0].match[0].headers.x-id.regex", ("regex",)),

    "bad-duration": (VS_HEAD + """\
  http:
  - route:
    - destination: {host: backend.test}
    timeout: 5 seconds   # HERE
""", "spec.http[0].timeout", ("duration",)),

    "weights-not-100": (VS_HEAD + """\
  http:
  - route:   # HERE
    - destination: {host: backend.test}
      weight: 70
    - destination: {host: backend.test, subset: v1}
      weight: 20
""", "spec.http[0].route", ("100",)),

    "unknown-gateway": (VS_HEAD.replace("  gateways: [gw]\n", "  gateways:\n  - gww   # HERE\n") + """\
  http:
  - route:
    - destination: {host: backend.test}
""", "spec.gateways[0]", ("unknown gateway", "did you mean")),

    "unknown-subset": (VS_HEAD + """\
  http:
  - route:
    - destination:
        host: backend.test
        subset: v2   # HERE
""", "spec.http[0].route[0].destination.subset", ("unknown subset",)),

    "unknown-host": (VS_HEAD + """\
  http:
  - route:
    - destination:
        host: nothere.test   # HERE
""", "spec.http[0].route[0].destination.host", ("unknown host",)),

    "duplicate-name": (VALID_VS + "---\n" + VS_HEAD.replace("  name: main\n", "  name: main   # HERE\n") + """\
  http:
  - route:
    - destination: {host: backend.test}
""", "metadata.name", ("duplicate",)),

    "unknown-kind": ("""\
apiVersion: networking.istio.io/v1
kind: VirtualServce   # HERE
metadata: {name: typo}
spec: {hosts: ["*"]}
""", "kind", ("unknown kind", "did you mean", "VirtualService")),

    "bad-enum": ("""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: other}
spec:
  hosts: [other.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATICK   # HERE
  endpoints: [{address: 127.0.0.1}]
""", "spec.resolution", ("did you mean", "STATIC")),

    "tls-route-without-sni-hosts": (VS_HEAD + """\
  tls:
  - match: [{port: 443}]   # HERE
    route: [{destination: {host: backend.test}}]
""", "spec.tls[0].match", ("sniHosts",)),

    "https-certificate-file-missing": (HTTPS_GW + """\
    tls: {mode: SIMPLE, serverCertificate: missing.crt, privateKey: missing.key}   # HERE
""", "spec.servers[0].tls", ("missing.crt", "no such file")),

    "https-mutual-without-ca": (HTTPS_GW + """\
    tls: {mode: MUTUAL, serverCertificate: s.crt, privateKey: s.key}   # HERE
""", "spec.servers[0].tls", ("caCertificates",)),

    "https-unenforced-client-check": (HTTPS_GW + """\
    tls:
      mode: MUTUAL
      credentialName: x
      verifyCertificateHash: [abc]   # HERE
""", "verifyCertificateHash", ("not supported",)),

    # Values the gateway writes onto the wire: a CR or LF would start a second message (issue 12).
    "rewrite-uri-crlf": (VS_HEAD + """\
  http:
  - rewrite: {uri: "/v2\\r\\nx-injected: 1"}   # HERE
    route: [{destination: {host: backend.test}}]
""", "spec.http[0].rewrite.uri", ("CR",)),

    "rewrite-authority-lf": (VS_HEAD + """\
  http:
  - rewrite: {authority: "b.test\\nx: 1"}   # HERE
    route: [{destination: {host: backend.test}}]
""", "spec.http[0].rewrite.authority", ("LF",)),

    "redirect-uri-crlf": (VS_HEAD + """\
  http:
  - redirect: {uri: "/new\\r\\nset-cookie: a=b"}   # HERE
""", "spec.http[0].redirect.uri", ("CR",)),

    "redirect-authority-space": (VS_HEAD + """\
  http:
  - redirect: {authority: "a.test b"}   # HERE
""", "spec.http[0].redirect.authority", ("space",)),

    # Fields Istio enforces and this build does not: errors, never warnings it then ignores (issue 12).
    "route-retries": (VS_HEAD + """\
  http:
  - route: [{destination: {host: backend.test}}]
    retries:
      attempts: 3
      retryOn: gateway-error,connect-faliure   # HERE
""", "spec.http[0].retries.retryOn", ('"connect-faliure" is not a valid retryOn policy',)),

    "route-fault": (VS_HEAD + """\
  http:
  - route: [{destination: {host: backend.test}}]
    fault: {abort: {httpStatus: 503, grpcStatus: UNAVAILABLE, percentage: {value: 50}}}   # HERE
""", "spec.http[0].fault.abort", ("exactly one of httpStatus, grpcStatus or http2Error",)),

    "route-mirror": (VS_HEAD + """\
  http:
  - route: [{destination: {host: backend.test}}]
    mirror: {host: nowhere.test}   # HERE
""", "spec.http[0].mirror.host", ("nowhere.test",)),

    "route-cors": (VS_HEAD + """\
  http:
  - route: [{destination: {host: backend.test}}]
    corsPolicy: {allowOrigins: [{exact: "https://a.test"}], allowOrigin: ["https://b.test"]}   # HERE
""", "spec.http[0].corsPolicy.allowOrigin", ("keep allowOrigins only",)),

    "destination-istio-mutual-without-identity": (DR_HEAD + """\
    tls: {mode: ISTIO_MUTUAL}   # HERE
""", "spec.trafficPolicy.tls.mode", ("needs the gateway's mesh identity", "spec.identity")),

    "destination-outlier-local-origin-split": (DR_HEAD + """\
    outlierDetection:
      splitExternalLocalOriginErrors: true   # HERE
""", "spec.trafficPolicy.outlierDetection.splitExternalLocalOriginErrors", ("not supported",)),

    "destination-connection-limit": (DR_HEAD + """\
    connectionPool:
      http: {maxRetries: -1}   # HERE
""", "spec.trafficPolicy.connectionPool.http.maxRetries", ("must not be negative",)),

    "destination-max-connections": (DR_HEAD + """\
    connectionPool:
      tcp: {maxConnections: -5}   # HERE
""", "spec.trafficPolicy.connectionPool.tcp.maxConnections", ("must not be negative",)),

    "rate-limit-of-zero": ("""\
apiVersion: gatehouse.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: limits, namespace: istio-system}
spec:
  rules:
  - name: per-client-ip
    key: [source.ip]
    limit: {requests: 0, unit: Minute}   # HERE
""", "spec.rules[0].limit.requests", ("at least 1",)),

    "rate-limit-unknown-key": ("""\
apiVersion: gatehouse.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: limits, namespace: istio-system}
spec:
  rules:
  - name: per-key
    key: ["request.header[x-api-key]"]   # HERE
    quota: {requests: 1000, period: Month}
""", "spec.rules[0].key[0]", ("unknown attribute", "request.headers[NAME]")),

    "destination-max-concurrent-streams": (DR_HEAD + """\
    connectionPool:
      http: {maxConcurrentStreams: 10}   # HERE
""", "spec.trafficPolicy.connectionPool.http.maxConcurrentStreams", ("not supported",)),
}

NEAR = {"weights-not-100"}


@pytest.mark.parametrize("name", list(CASES))
def test_invalid_config_reports_file_line_and_field(config_dir, name):
    text, path, keywords = CASES[name]
    write(config_dir, text)
    result = validate(config_dir)
    assert result.returncode == 1, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    diags = parse(result.stdout)
    assert diags, f"no FILE:LINE:COL diagnostics on stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    diag = find(diags, path=path, keywords=keywords)
    expected = marked_line(text)
    # A problem with a whole block may point at its key or at the block's first line.
    allowed = {expected, expected + 1} if name in NEAR else {expected}
    assert diag.line in allowed, f"expected line {expected}: {diag.raw}"
    assert diag.col >= 1
    assert diag.file.endswith("case.yaml")


def test_resource_label_is_kind_namespace_name(config_dir):
    text, _, _ = CASES["unknown-host"]
    write(config_dir, text)
    diag = find(parse(validate(config_dir).stdout), path="destination.host", keywords=("unknown host",))
    assert diag.resource == "VirtualService default/main"


def test_yaml_syntax_error(config_dir):
    text = VS_HEAD.replace('  hosts: ["*"]\n', '  hosts: ["*"\n') + "  http: []\n"
    write(config_dir, text)
    result = validate(config_dir)
    assert result.returncode == 1
    diags = [d for d in parse(result.stdout) if d.file.endswith("case.yaml")]
    assert diags, result.stdout + result.stderr
    assert any("syntax" in d.message.lower() or "yaml" in d.raw.lower() for d in diags), diags
    assert all(1 <= d.line <= len(text.splitlines()) + 1 for d in diags)


def test_every_problem_is_reported(config_dir):
    """Problems in several resources, and several in one resource, are all listed (decoding errors in one
    resource do not hide reference errors in another)."""
    one = VS_HEAD.replace("  name: main\n", "  name: one\n").replace("  gateways: [gw]\n", "  gateways: [nope]\n")
    two = VS_HEAD.replace("  name: main\n", "  name: two\n")
    text = one + """\
  http:
  - route:
    - destination: {host: missing.test}
---
""" + two + """\
  http:
  - route:
    - destination: {host: backend.test}
    timeout: soon
"""
    write(config_dir, text)
    result = validate(config_dir)
    assert result.returncode == 1
    found = {(d.resource, d.path) for d in parse(result.stdout) if d.file.endswith("case.yaml")}
    expected = {
        ("VirtualService default/one", "spec.gateways[0]"),
        ("VirtualService default/one", "spec.http[0].route[0].destination.host"),
        ("VirtualService default/two", "spec.http[0].timeout"),
    }
    assert expected <= found, result.stdout


def test_missing_bootstrap(config_dir):
    (config_dir / "only.yaml").write_text(VALID_VS)
    result = validate(config_dir)
    assert result.returncode == 1
    assert "bootstrap" in result.stdout.lower()


def test_two_bootstraps(config_dir):
    write(config_dir, BASE.split("---")[0].replace("name: edge", "name: edge2"))
    result = validate(config_dir)
    assert result.returncode == 1
    assert "bootstrap" in result.stdout.lower()


def test_valid_config_exits_0_with_a_summary(config_dir):
    write(config_dir, VALID_VS)
    result = validate(config_dir)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, "validate printed no summary"
    assert not [d for d in parse(result.stdout) if "warning" not in d.message.lower()]


def test_config_flag_is_repeatable_with_files(config_dir):
    write(config_dir, VALID_VS)
    result = run_cli(["validate", "--config", str(config_dir / "base.yaml"), "--config", str(config_dir / "case.yaml")])
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_cli(["validate", "--config", str(config_dir / "case.yaml")])
    assert result.returncode == 1, "without base.yaml there is no Bootstrap, Gateway or ServiceEntry"


def test_run_refuses_an_invalid_config(config_dir, tmp_path):
    text, _, _ = CASES["unknown-host"]
    write(config_dir, text)
    gw = Gateway(tmp_path, free_port(), [config_dir], tmp_path / "access.log")
    gw.start(wait=False)
    try:
        code = gw.wait(timeout=15)
    finally:
        gw.kill()
    assert code == 1
    output = gw.stdout_text() + gw.stderr_text()
    assert "case.yaml:" in output and "unknown host" in output, output


def test_version(gatehouse_binary):
    result = run_cli(["version"])
    assert result.returncode == 0
    assert result.stdout.strip(), "version printed nothing"



def test_unreadable_certificate_names_the_file_and_the_tls_block(config_dir):
    (config_dir / "bad.crt").write_text("not a certificate\n")
    (config_dir / "bad.key").write_text("not a key\n")
    case = HTTPS_GW + "    tls: {mode: SIMPLE, serverCertificate: bad.crt, privateKey: bad.key}   # HERE\n"
    write(config_dir, case)
    result = validate(config_dir)
    assert result.returncode == 1, result.stdout
    diag = find(parse(result.stdout), path="spec.servers[0].tls", keywords=("bad.crt",))
    assert diag.line == marked_line(case)
    assert diag.resource == "Gateway default/tlsgw"


def test_the_shipped_conf_is_valid_without_warnings():
    """README's first command runs the gateway on conf/: it must validate cleanly."""
    conf = Path(__file__).resolve().parents[2] / "conf"
    result = validate(conf)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr


@pytest.mark.parametrize("admin, field, keyword", [
    ("{port: 70000}", "spec.admin.port", "out of range"),
    ("{address: localhost, port: 15000}", "spec.admin.address", "IP address"),
])
def test_bad_admin_settings_name_the_field(config_dir, admin, field, keyword):
    base = BASE.replace("  accessLog:", f"  admin: {admin}   # HERE\n  accessLog:", 1)
    write(config_dir, None, base=base)
    result = validate(config_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    diag = find(parse(result.stdout), path=field, keywords=(keyword,), file="base.yaml")
    assert diag.line == marked_line(base)


def test_an_admin_port_in_use_stops_the_start_with_its_address(config_dir):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        base = BASE.replace("  accessLog:", f"  admin: {{address: 127.0.0.1, port: {port}}}\n  accessLog:", 1)
        write(config_dir, None, base=base)
        result = run_cli(["run", "--config", str(config_dir)], timeout=30)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (admin)" in result.stderr, result.stderr
