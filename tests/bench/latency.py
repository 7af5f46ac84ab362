"""Timings of the latency/timeouts pages and the latency API, for the bench command (or by hand).

``measure(client_or_callable)`` requests every URL of ``latency_urls()`` ``repeats`` times and returns
p50/p95/max in milliseconds per URL. Pass a logged-in ``django.test.Client`` (anything with
``.get(url)`` returning a response with ``status_code``) or a callable ``url -> status code``.
Fill the database first (tests.bench.fleet.build_fleet; on PostgreSQL it builds the job rollups too,
elsewhere run ``rollup_jobs(now - 31 d, now)``): the pages read the rollups, except for the 1 h
window, a group+runbook cut and the recent stretch the rollups do not cover yet.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

TARGET_P95_MS = 500.0


@dataclass(frozen=True)
class Timing:
    url: str
    status: int
    p50_ms: float
    p95_ms: float
    max_ms: float

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.p95_ms <= TARGET_P95_MS


def latency_urls(group: str | None = None, runbook: str | None = None) -> list[str]:
    urls = [f"/latency/?window={w}" for w in ("1h", "24h", "7d", "30d")]
    urls += [f"/timeouts/?window={w}" for w in ("24h", "30d")]
    urls += [f"/api/v1/jobs/latency?window={w}" for w in ("1h", "24h", "30d")]
    if group:
        urls.append(f"/api/v1/jobs/latency?window=30d&group={group}")
        if runbook:
            urls.append(f"/api/v1/jobs/latency?window=30d&group={group}&runbook={runbook}")
    if runbook:
        urls.append(f"/api/v1/jobs/latency?window=30d&runbook={runbook}")
    return urls


def _getter(client_or_callable: Any) -> Callable[[str], int]:
    if hasattr(client_or_callable, "get"):
        return lambda url: client_or_callable.get(url).status_code
    return client_or_callable


def measure(client_or_callable: Any, *, urls: list[str] | None = None, repeats: int = 20, warmup: int = 1) -> list[Timing]:
    """Time each URL ``repeats`` times after ``warmup`` untimed requests (connection set-up)."""
    get = _getter(client_or_callable)
    timings: list[Timing] = []
    for url in urls or latency_urls():
        status = 0
        for _ in range(warmup):
            status = get(url)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            status = get(url)
            samples.append((time.perf_counter() - start) * 1000)
        arr = np.asarray(samples)
        timings.append(Timing(url, status, float(np.percentile(arr, 50)), float(np.percentile(arr, 95)), float(arr.max())))
    return timings


def report(timings: list[Timing]) -> str:
    lines = [f"{'url':60} {'status':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  (target p95 <= {TARGET_P95_MS:.0f} ms)"]
    for t in timings:
        flag = "" if t.ok else "  <-- over target or not 200"
        lines.append(f"{t.url:60} {t.status:>6} {t.p50_ms:8.1f} {t.p95_ms:8.1f} {t.max_ms:8.1f}{flag}")
    return "\n".join(lines)
