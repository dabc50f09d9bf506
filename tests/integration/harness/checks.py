"""Small helpers shared by the test modules."""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

import httpx

from . import config as cfg
from .gateway import Gateway
from .upstream import Upstream

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
ADDRESS_RE = re.compile(r"^127\.0\.0\.1:\d{1,5}$")

BODY_UF = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
# The same after Istio's default retries (two of them) failed too.
BODY_UF_RETRIED = "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure"
BODY_UC = "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
BODY_UH = "no healthy upstream"
BODY_UT = "upstream request timeout"


def backends(upstream: Callable[..., Upstream], *names: str) -> tuple[dict[str, Upstream], list[dict]]:
    """Starts one upstream per name and a ServiceEntry ``NAME.test`` for each."""
    ups = {name: upstream(name) for name in names}
    entries = [cfg.service_entry(f"{name}.test", [cfg.endpoint(up)]) for name, up in ups.items()]
    return ups, entries


def to(name: str, **kwargs: Any) -> dict:
    """A destination ``NAME.test`` (see :func:`backends`)."""
    return cfg.destination(f"{name}.test", **kwargs)


def served_by(gw: Gateway | httpx.Client, path: str, *, method: str = "GET",
              headers: Mapping[str, str] | None = None, **kwargs: Any) -> str | int:
    """The name of the upstream that answered, or the status code when the gateway answered itself."""
    if isinstance(gw, Gateway):
        response = gw.request(method, path, headers=headers, **kwargs)
    else:
        response = gw.request(method, path, headers=headers, **kwargs)
    name = response.headers.get("x-upstream-name")
    if name is not None and response.status_code == 200:
        return name
    return response.status_code


def flags(entry: Mapping[str, Any]) -> set[str]:
    """The response flags of a log entry as a set (``"-"`` gives an empty set)."""
    value = entry.get("response_flags")
    if value in (None, "-", ""):
        return set()
    return set(str(value).split(","))


def split_values(values: Sequence[str]) -> list[str]:
    """Header values with comma-joined lists split, so ``["a, b"]`` and ``["a", "b"]`` compare equal."""
    out: list[str] = []
    for value in values:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out
