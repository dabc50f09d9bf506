"""Builders for Gatehouse/Istio config documents and a small, dependency-free YAML writer.

Every builder returns a plain dict (one Kubernetes-style document), so a test can tweak anything before it
is written. Strings are always written double-quoted (JSON escaping is valid YAML), so values such as
``on``, ``1.0`` or ``*`` are never re-typed by the YAML parser.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

NETWORKING = "networking.istio.io/v1"
GATEHOUSE = "gatehouse.dev/v1alpha1"

#: Name of the Gateway resource the gateway fixture always creates (namespace ``default``).
GATEWAY_NAME = "gw"
#: Host of the ServiceEntry made by :func:`simple_backend`.
BACKEND_HOST = "backend.test"
#: Service port of ServiceEntries made here (the endpoint port is the upstream's real port).
SERVICE_PORT = 80


# --------------------------------------------------------------------------------------------- YAML


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _key(key: Any) -> str:
    text = str(key)
    if _PLAIN_KEY.match(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, Mapping) and item:
                out.append(f"{pad}{_key(key)}:")
                out.extend(_lines(item, indent + 2))
            elif isinstance(item, (list, tuple)) and item:
                out.append(f"{pad}{_key(key)}:")
                out.extend(_lines(item, indent + 2))
            elif isinstance(item, Mapping):
                out.append(f"{pad}{_key(key)}: {{}}")
            elif isinstance(item, (list, tuple)):
                out.append(f"{pad}{_key(key)}: []")
            else:
                out.append(f"{pad}{_key(key)}: {_scalar(item)}")
        return out
    if isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, (Mapping, list, tuple)) and item:
                nested = _lines(item, indent + 2)
                first = nested[0][indent + 2:]
                if isinstance(item, Mapping):
                    out.append(f"{pad}- {first}")
                    out.extend(nested[1:])
                else:
                    out.append(f"{pad}-")
                    out.extend(nested)
            elif isinstance(item, Mapping):
                out.append(f"{pad}- {{}}")
            elif isinstance(item, (list, tuple)):
                out.append(f"{pad}- []")
            else:
                out.append(f"{pad}- {_scalar(item)}")
        return out
    return [pad + _scalar(value)]


def to_yaml(document: Any) -> str:
    """One YAML document (no ``---``)."""
    return "\n".join(_lines(document, 0)) + "\n"


def to_yaml_stream(documents: Iterable[Any]) -> str:
    """Several documents separated by ``---``."""
    return "---\n".join(to_yaml(d) for d in documents)


def write_config(directory: Path, documents: Sequence[Any], filename: str = "gatehouse.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(to_yaml_stream(documents))
    return path


# ---------------------------------------------------------------------------------------- resources


def resource(kind: str, name: str, spec: Any, *, namespace: str | None = None,
             api_version: str = NETWORKING, labels: Mapping[str, str] | None = None) -> dict:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


def bootstrap(access_log: str | Path, *, limits: Mapping[str, Any] | None = None,
              name: str = "edge", namespace: str = "istio-system", **spec: Any) -> dict:
    merged_limits = {"maxRequestHeadersKb": 60, "requestHeadersTimeout": "10s", "drainTimeout": "20s"}
    merged_limits.update(limits or {})
    body: dict[str, Any] = {"accessLog": {"path": str(access_log), "format": "json"}, "limits": merged_limits}
    body.update(spec)
    return resource("Bootstrap", name, body, namespace=namespace, api_version=GATEHOUSE)


def gateway(port: int, *, name: str = GATEWAY_NAME, namespace: str | None = None,
            hosts: Sequence[str] = ("*",), bind: str | None = "127.0.0.1",
            extra_servers: Sequence[Mapping[str, Any]] = ()) -> dict:
    server: dict[str, Any] = {"port": {"number": port, "name": "http", "protocol": "HTTP"}, "hosts": list(hosts)}
    if bind is not None:
        server["bind"] = bind
    return resource("Gateway", name, {"servers": [server, *extra_servers]}, namespace=namespace)


def https_server(port: int, hosts: Sequence[str], tls: Mapping[str, Any], *, name: str = "https",
                 bind: str | None = "127.0.0.1") -> dict:
    """A Gateway server of protocol HTTPS (``tls`` is the server's tls block)."""
    server: dict[str, Any] = {"port": {"number": port, "name": name, "protocol": "HTTPS"}, "hosts": list(hosts),
                              "tls": dict(tls)}
    if bind is not None:
        server["bind"] = bind
    return server


def files_tls(files: tuple[Any, Any], mode: str = "SIMPLE", **extra: Any) -> dict:
    """A server ``tls`` block from ``(certificate, key)`` files."""
    crt, key = files
    return {"mode": mode, "serverCertificate": str(crt), "privateKey": str(key), **extra}


def gateway_of(servers: Sequence[Mapping[str, Any]], *, name: str = GATEWAY_NAME,
               namespace: str | None = None) -> dict:
    """A Gateway with exactly these servers."""
    return resource("Gateway", name, {"servers": [dict(s) for s in servers]}, namespace=namespace)


def _port_of(target: Any) -> int:
    return target if isinstance(target, int) else int(target.port)


def endpoint(target: Any, *, labels: Mapping[str, str] | None = None, address: str = "127.0.0.1",
             port_name: str | None = "http") -> dict:
    """A ServiceEntry endpoint for an upstream (or a bare port number). ``port_name=None`` omits ``ports``."""
    entry: dict[str, Any] = {"address": address}
    if port_name is not None:
        entry["ports"] = {port_name: _port_of(target)}
    if labels:
        entry["labels"] = dict(labels)
    return entry


def service_entry(host: str, endpoints: Sequence[Mapping[str, Any]] | None = None, *, name: str | None = None,
                  namespace: str | None = None, port: int = SERVICE_PORT, port_name: str = "http",
                  workload_selector: Mapping[str, str] | None = None, resolution: str = "STATIC",
                  protocol: str = "HTTP") -> dict:
    spec: dict[str, Any] = {
        "hosts": [host],
        "location": "MESH_EXTERNAL",
        "ports": [{"number": port, "name": port_name, "protocol": protocol}],
        "resolution": resolution,
    }
    if workload_selector is not None:
        spec["workloadSelector"] = {"labels": dict(workload_selector)}
    else:
        spec["endpoints"] = [dict(e) for e in (endpoints or [])]
    return resource("ServiceEntry", name or _slug(host), spec, namespace=namespace)


def workload_entry(name: str, target: Any, labels: Mapping[str, str], *, namespace: str | None = None,
                   address: str = "127.0.0.1", port_name: str = "http") -> dict:
    spec = {"address": address, "ports": {port_name: _port_of(target)}, "labels": dict(labels)}
    return resource("WorkloadEntry", name, spec, namespace=namespace)


def destination_rule(host: str, subsets: Mapping[str, Mapping[str, str]], *, name: str | None = None,
                     namespace: str | None = None) -> dict:
    spec = {"host": host, "subsets": [{"name": n, "labels": dict(l)} for n, l in subsets.items()]}
    return resource("DestinationRule", name or _slug(host), spec, namespace=namespace)


def virtual_service(name: str, http: Sequence[Mapping[str, Any]], *, hosts: Sequence[str] = ("*",),
                    gateways: Sequence[str] | None = (GATEWAY_NAME,), namespace: str | None = None) -> dict:
    spec: dict[str, Any] = {"hosts": list(hosts)}
    if gateways is not None:
        spec["gateways"] = list(gateways)
    spec["http"] = [dict(r) for r in http]
    return resource("VirtualService", name, spec, namespace=namespace)


def destination(host: str = BACKEND_HOST, *, port: int | None = None, subset: str | None = None,
                weight: int | None = None, headers: Mapping[str, Any] | None = None) -> dict:
    """An ``HTTPRouteDestination`` (``{destination: {...}, weight, headers}``)."""
    dest: dict[str, Any] = {"host": host}
    if subset is not None:
        dest["subset"] = subset
    if port is not None:
        dest["port"] = {"number": port}
    out: dict[str, Any] = {"destination": dest}
    if weight is not None:
        out["weight"] = weight
    if headers is not None:
        out["headers"] = dict(headers)
    return out


def route(*destinations: Mapping[str, Any], name: str | None = None,
          match: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None, **fields: Any) -> dict:
    """An HTTPRoute forwarding to ``destinations`` (default: the backend). ``fields`` adds rewrite, timeout…"""
    out: dict[str, Any] = {}
    if name is not None:
        out["name"] = name
    if match is not None:
        out["match"] = [dict(match)] if isinstance(match, Mapping) else [dict(m) for m in match]
    out["route"] = [dict(d) for d in destinations] or [destination()]
    out.update(fields)
    return out


def action(kind: str, value: Mapping[str, Any], *, name: str | None = None,
           match: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None, **fields: Any) -> dict:
    """An HTTPRoute with a ``redirect`` or ``directResponse`` action."""
    out: dict[str, Any] = {}
    if name is not None:
        out["name"] = name
    if match is not None:
        out["match"] = [dict(match)] if isinstance(match, Mapping) else [dict(m) for m in match]
    out[kind] = dict(value)
    out.update(fields)
    return out


def simple_backend(upstream: Any, http: Sequence[Mapping[str, Any]] | None = None, *,
                   host: str = BACKEND_HOST, vs_hosts: Sequence[str] = ("*",), vs_name: str = "main") -> list[dict]:
    """A ServiceEntry ``host`` -> ``upstream`` plus one VirtualService (default: everything to it)."""
    return [
        service_entry(host, [endpoint(upstream)]),
        virtual_service(vs_name, http or [route(destination(host))], hosts=vs_hosts),
    ]


def cluster_name(host: str = BACKEND_HOST, port: int = SERVICE_PORT, subset: str = "") -> str:
    return f"outbound|{port}|{subset}|{host}"


def _slug(host: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", host.lower()).strip("-") or "x"


SECURITY = "security.istio.io/v1"


def authorization_policy(name: str, spec: Mapping[str, Any], *, namespace: str = "istio-system") -> dict:
    """An AuthorizationPolicy (default: in the gateway's namespace, so it applies to it)."""
    return resource("AuthorizationPolicy", name, dict(spec), namespace=namespace, api_version=SECURITY)


def request_authentication(name: str, jwt_rules: Sequence[Mapping[str, Any]], *,
                           namespace: str = "istio-system") -> dict:
    return resource("RequestAuthentication", name, {"jwtRules": [dict(rule) for rule in jwt_rules]},
                    namespace=namespace, api_version=SECURITY)


def rate_limit_policy(name: str, rules: Sequence[Mapping[str, Any]], *, namespace: str = "istio-system",
                      **spec: Any) -> dict:
    """A RateLimitPolicy (default: in the gateway's namespace, so it applies to it)."""
    body: dict[str, Any] = {"rules": [dict(rule) for rule in rules]}
    body.update(spec)
    return resource("RateLimitPolicy", name, body, namespace=namespace, api_version=GATEHOUSE)
