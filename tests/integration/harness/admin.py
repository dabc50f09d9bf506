"""The admin server (Bootstrap ``admin``): plain GETs, and Prometheus samples read with the real
``prometheus_client`` parser, as a scraper would read them."""
from __future__ import annotations

import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def admin_get(port: int, path: str, method: str = "GET", wait: float = 5.0) -> tuple[int, str]:
    """The admin server binds after the listeners the harness waits for: a refused connection is
    retried until ``wait`` seconds have passed (0: never), so a test asks only once it listens."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except urllib.error.URLError as error:
            if not isinstance(error.reason, ConnectionRefusedError) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def samples(port: int, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of the metric ``name`` (a counter's ``_total`` sample name) as (labels, value)."""
    status, text = admin_get(port, "/stats/prometheus")
    assert status == 200, text
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out.append((dict(sample.labels), sample.value))
    return out


def wait_for_sample(port: int, name: str, labels: dict[str, str], at_least: float = 1, timeout: float = 5) -> float:
    """Counters are bumped on the event loops: poll briefly rather than race them."""
    deadline = time.monotonic() + timeout
    value = 0.0
    while time.monotonic() < deadline:
        value = sum(v for l, v in samples(port, name) if all(l.get(k) == want for k, want in labels.items()))
        if value >= at_least:
            return value
        time.sleep(0.05)
    return value
