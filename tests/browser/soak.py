"""Kiosk soak: keep the wall open in headless Chromium and show that the JS heap and the DOM stay flat.

Kiosks run for weeks, so a slow leak (a listener per refresh, a node per tile update, a growing
array) is a real outage in slow motion. Every ``sample_seconds`` this forces a garbage collection
(Chromium runs with ``--js-flags=--expose-gc``) and records:

* ``performance.memory.usedJSHeapSize`` (precise with ``--enable-precise-memory-info``),
* ``document.getElementsByTagName('*').length`` (elements in the document),
* CDP ``Performance.getMetrics``: ``Nodes`` (every live DOM node, detached ones included, so a
  leak of removed-but-referenced nodes shows here), ``JSEventListeners`` and ``Documents``,

then prints a table and the least-squares slope of each series per minute.

Two ways to run it:

* against any running server, e.g. ``make demo``::

      .venv/bin/python -m tests.browser.soak --minutes 30 \
          --url 'http://127.0.0.1:8000/wall/?token=hrw_...&refresh=5&rotate=5'

* as a test on a live server fed by the emulator (opt-in, not in the default suite)::

      HRW_SOAK_MINUTES=30 .venv/bin/pytest tests/browser/test_wall_soak.py -s
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.browser.chromium import launch_chromium

# Flat means: the element count never moves, DOM nodes (incl. detached) and listeners do not
# trend up, and the heap after GC drifts less than this per minute (V8 caches settle early).
HEAP_SLOPE_LIMIT = 64 * 1024  # bytes per minute
NODE_SLOPE_LIMIT = 5.0  # nodes per minute
# Slopes ignore the first minutes (V8 warm-up) when the run is long enough to have 3 samples after.
WARMUP_MINUTES = 3.0


@dataclass(frozen=True)
class Sample:
    minute: float
    heap_bytes: int
    elements: int
    nodes: int
    listeners: int
    documents: int
    page_label: str


@dataclass
class SoakResult:
    samples: list[Sample] = field(default_factory=list)
    refreshes: int = 0
    failed_refreshes: int = 0
    console_errors: list[str] = field(default_factory=list)

    def steady(self) -> list[Sample]:
        """The samples after V8's warm-up (compiled code, inline caches, Intl data settle in the
        first minutes), when enough remain; otherwise all of them."""
        later = [s for s in self.samples if s.minute >= WARMUP_MINUTES]
        return later if len(later) >= 3 else self.samples

    def slope(self, attr: str) -> float:
        """Least-squares slope of ``attr`` per minute over the steady samples (0 with fewer than two)."""
        samples = self.steady()
        if len(samples) < 2:
            return 0.0
        xs = [s.minute for s in samples]
        ys = [float(getattr(s, attr)) for s in samples]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mean_x) ** 2 for x in xs)
        return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var if var else 0.0

    def spread(self, attr: str) -> int:
        values = [getattr(s, attr) for s in self.samples]
        return max(values) - min(values) if values else 0

    @property
    def flat(self) -> bool:
        return (
            len(self.samples) >= 2
            and self.spread("elements") == 0
            and self.slope("heap_bytes") < HEAP_SLOPE_LIMIT
            and self.slope("nodes") < NODE_SLOPE_LIMIT
            and self.slope("listeners") < NODE_SLOPE_LIMIT
            and self.spread("documents") == 0
        )

    def table(self) -> str:
        lines = [
            f"{'min':>6} {'JS heap (KiB)':>14} {'elements':>9} {'DOM nodes':>10} {'listeners':>10} {'docs':>5}  page",
        ]
        for s in self.samples:
            lines.append(
                f"{s.minute:6.1f} {s.heap_bytes / 1024:14.1f} {s.elements:9d} {s.nodes:10d} {s.listeners:10d} {s.documents:5d}  {s.page_label}"
            )
        lines.append(
            "slope per minute (from minute {:.0f}): JS heap {:+.1f} KiB/min, elements {:+.2f}/min, DOM nodes {:+.2f}/min, listeners {:+.2f}/min".format(
                self.steady()[0].minute if self.samples else 0.0,
                self.slope("heap_bytes") / 1024, self.slope("elements"), self.slope("nodes"), self.slope("listeners"),
            )
        )
        lines.append(
            f"spread: JS heap {self.spread('heap_bytes') / 1024:.1f} KiB, elements {self.spread('elements')}, "
            f"DOM nodes {self.spread('nodes')}; refreshes {self.refreshes} ok, {self.failed_refreshes} failed; "
            f"verdict: {'FLAT' if self.flat else 'NOT FLAT'}"
        )
        return "\n".join(lines)


def _sample(page: Any, cdp: Any, started: float) -> Sample:
    page.evaluate("() => { if (typeof gc === 'function') { gc(); gc(); } }")
    heap, elements, label = page.evaluate(
        "() => [performance.memory.usedJSHeapSize, document.getElementsByTagName('*').length,"
        " (document.getElementById('wall-page') || {}).textContent || '']"
    )
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return Sample(
        minute=(time.monotonic() - started) / 60,
        heap_bytes=int(heap),
        elements=int(elements),
        nodes=int(metrics.get("Nodes", 0)),
        listeners=int(metrics.get("JSEventListeners", 0)),
        documents=int(metrics.get("Documents", 0)),
        page_label=label.strip()[:40],
    )


def soak(
    browser: Any,
    url: str,
    *,
    minutes: float,
    sample_seconds: float = 60,
    viewport: tuple[int, int] = (1920, 1080),
    between_samples: Callable[[], None] | None = None,
    out: Callable[[str], None] = print,
) -> SoakResult:
    """Open ``url`` and sample every ``sample_seconds`` for ``minutes``.

    ``between_samples`` runs right after each sample (e.g. a poll of the emulator so the data
    keeps changing); the page keeps running meanwhile. Waiting uses Playwright's clock-driven
    ``wait_for_timeout`` because sampling at a cadence is the point here, not synchronisation.
    """
    result = SoakResult()
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)

    def on_response(response: Any) -> None:
        if "/api/v1/wall" in response.url:
            if response.ok:
                result.refreshes += 1
            else:
                result.failed_refreshes += 1

    page.on("response", on_response)
    page.on("requestfailed", lambda r: setattr(result, "failed_refreshes", result.failed_refreshes + 1) if "/api/v1/wall" in r.url else None)
    try:
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#wall-tiles.is-laid-out, #wall-empty:not([hidden])")
        started = time.monotonic()
        deadline = started + minutes * 60
        while True:
            next_at = time.monotonic() + sample_seconds
            sample = _sample(page, cdp, started)
            result.samples.append(sample)
            out(
                f"[soak] {sample.minute:5.1f} min  heap {sample.heap_bytes / 1024:9.1f} KiB  elements {sample.elements}  "
                f"nodes {sample.nodes}  listeners {sample.listeners}  {sample.page_label}"
            )
            if time.monotonic() >= deadline:
                break
            if between_samples is not None:
                between_samples()
            page.wait_for_timeout(max(0.0, min(next_at, deadline) - time.monotonic()) * 1000)
    finally:
        context.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the wall URL, with ?token=... and e.g. &refresh=5&rotate=5")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--sample-seconds", type=float, default=60)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            result = soak(browser, args.url, minutes=args.minutes, sample_seconds=args.sample_seconds, viewport=(args.width, args.height))
        finally:
            browser.close()
    print(result.table())
    return 0 if result.flat else 1


if __name__ == "__main__":
    sys.exit(main())
