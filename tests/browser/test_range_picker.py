"""The range picker and chart zoom in headless Chromium: zooming the worker page's CPU/memory chart
(Plotly.relayout, as a drag-zoom does) navigates to the same page with from/to, which then shows
that range; a double-click (autorange) goes back to the preset; a preset link sets ?window=.

The fleet is written with the ORM; the live server and the browser are real."""
from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from tests.fixtures.web import build_fleet, record_polls
from workers.models import UtilizationSample

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHART = '.chart[data-key="util"]'


@pytest.fixture
def worker() -> Any:
    now = timezone.now().replace(second=0, microsecond=0)
    fleet = build_fleet(groups=1, workers_per_group=1, now=now)
    record_polls(fleet.account, at=now - timedelta(seconds=10))
    w = fleet.workers[0]
    UtilizationSample.objects.bulk_create([
        UtilizationSample(worker=w, ts=now - timedelta(minutes=m), cpu_pct=float(m % 90), mem_pct=40.0) for m in range(0, 12 * 60, 5)
    ])
    return w


def _chart_ready(page: Any) -> None:
    page.wait_for_function(f"() => {{ const el = document.querySelector('{CHART}'); return !!(el && el._fullLayout && el.on); }}")


def test_zooming_a_chart_carries_the_range_into_the_url_and_the_page(login_cookie, worker):
    page = login_cookie.page
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{login_cookie.origin}/workers/{worker.pk}/?window=24h", wait_until="networkidle")
    _chart_ready(page)
    start = (timezone.now() - timedelta(hours=3)).replace(second=0, microsecond=0)
    end = start + timedelta(hours=1, minutes=30)
    fmt = "%Y-%m-%d %H:%M:%S"
    with page.expect_navigation():
        page.evaluate(
            f"() => Plotly.relayout(document.querySelector('{CHART}'), "
            f"{{'xaxis.range[0]': '{start.strftime(fmt)}.4', 'xaxis.range[1]': '{end.strftime(fmt)}'}})"
        )
    query = parse_qs(urlparse(page.url).query)
    assert query["from"] == [start.strftime("%Y-%m-%dT%H:%MZ")]
    assert query["to"] == [end.strftime("%Y-%m-%dT%H:%MZ")]
    assert query["window"] == ["24h"]  # kept, so a double-click can go back to it
    label = page.locator("[data-range-label]").inner_text()
    assert f"Showing {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC" in label
    assert "1-minute samples" in label
    assert page.locator("#range-from").input_value() == start.strftime("%Y-%m-%dT%H:%M")
    # The chart now spans the zoomed range only.
    _chart_ready(page)
    xs = page.evaluate(f"() => document.querySelector('{CHART}').data[0].x")
    assert xs and all(start.strftime(fmt) <= x.replace("T", " ")[:19] <= end.strftime(fmt) for x in xs)

    with page.expect_navigation():
        page.evaluate(f"() => Plotly.relayout(document.querySelector('{CHART}'), {{'xaxis.autorange': true}})")
    assert parse_qs(urlparse(page.url).query) == {"window": ["24h"]}
    assert page.locator('[data-range-picker] [aria-current="true"]').inner_text() == "24h"

    page.locator('[data-range-picker] a[data-preset="7d"]').click()
    page.wait_for_url("**window=7d**")
    assert "hourly averages" in page.locator("[data-range-label]").inner_text()
