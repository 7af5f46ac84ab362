"""Time ranges (issue 15 item 2): the rule module, and every time-based page taking presets, custom
from/to ranges (figures equal to those computed directly from the rows) and refusing bad ranges with a 400."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.web import NOW, build_fleet, record_polls
from workers.models import Job, UtilizationSample
from workers.rules import ranges

RETENTION = timedelta(days=31)


# --- the rule module -----------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(ranges.PRESETS))
def test_a_preset_ends_now_and_spans_its_length(key):
    rng = ranges.parse_range(window=key, start=None, end=None, now=NOW, retention=RETENTION)
    assert (rng.start, rng.end, rng.preset) == (NOW - ranges.PRESETS[key], NOW, key)


def test_a_custom_range_is_read_in_utc_and_wins_over_the_window():
    rng = ranges.parse_range(window="7d", start="2026-11-19T00:00Z", end="2026-11-19T06:00+01:00", now=NOW, retention=RETENTION)
    assert (rng.start, rng.end, rng.preset) == (datetime(2026, 11, 19, tzinfo=UTC), datetime(2026, 11, 19, 5, tzinfo=UTC), None)
    assert rng.query() == {"from": "2026-11-19T00:00Z", "to": "2026-11-19T05:00Z"}
    # What a datetime-local input sends (no offset) is UTC.
    naive = ranges.parse_range(window=None, start="2026-11-19T00:00", end="2026-11-19T01:00", now=NOW, retention=RETENTION)
    assert naive.start == datetime(2026, 11, 19, tzinfo=UTC)


def test_the_resolution_is_raw_up_to_a_day_and_hourly_beyond():
    assert ranges.resolution_for(timedelta(hours=24)) == ranges.RAW
    assert ranges.resolution_for(timedelta(hours=24, minutes=1)) == ranges.HOURLY


@pytest.mark.parametrize(("start", "end", "message"), [
    ("2026-11-20T11:00Z", "2026-11-20T13:00Z", "future"),
    ("2026-11-20T11:00Z", "2026-11-20T10:00Z", "before"),
    ("2026-11-20T11:00Z", "2026-11-20T11:04Z", "at least 5 minutes"),
    ("2026-10-01T00:00Z", "2026-10-02T00:00Z", "older than the data kept"),
    ("yesterday", "2026-11-20T10:00Z", "not an ISO 8601"),
    ("2026-11-20T11:00Z", "", "both from and to"),
])
def test_a_bad_range_says_why(start, end, message):
    with pytest.raises(ranges.RangeError, match=message):
        ranges.parse_range(window=None, start=start, end=end, now=NOW, retention=RETENTION)


def test_an_unknown_preset_and_a_custom_range_where_none_is_allowed_are_refused():
    with pytest.raises(ranges.RangeError, match="window must be one of"):
        ranges.parse_range(window="2d", start=None, end=None, now=NOW, retention=RETENTION)
    with pytest.raises(ranges.RangeError, match="precomputed"):
        ranges.parse_range(window=None, start="2026-11-20T00:00Z", end="2026-11-20T01:00Z", now=NOW,
                           retention=RETENTION, custom=False)


# --- pages ---------------------------------------------------------------------------------------

@pytest.fixture
def fleet(db, now):
    fleet = build_fleet(groups=1, workers_per_group=2, now=now, jobs_per_group=0)
    record_polls(fleet.account, at=now - timedelta(seconds=10))
    worker, group = fleet.workers[0], fleet.groups[0]
    UtilizationSample.objects.bulk_create([
        UtilizationSample(worker=worker, ts=now - timedelta(minutes=m), cpu_pct=float(m % 100), mem_pct=50.0) for m in range(0, 600, 7)
    ])
    Job.objects.bulk_create([
        Job(account=fleet.account, job_id=f"job-{i}", runbook="Nightly", status="Completed" if i % 3 else "Failed", run_on=group.name,
            group=group, created_at=now - timedelta(minutes=25 * i), queue_seconds=float(i), duration_seconds=10.0)
        for i in range(1, 60)
    ])
    return fleet


CUSTOM = {"from": "2026-11-20T03:00Z", "to": "2026-11-20T07:30Z"}
START, END = datetime(2026, 11, 20, 3, tzinfo=UTC), datetime(2026, 11, 20, 7, 30, tzinfo=UTC)


def _pages(fleet) -> list[str]:
    return [f"/workers/{fleet.workers[0].pk}/", f"/groups/{fleet.groups[0].pk}/", "/latency/", "/timeouts/"]


@pytest.mark.parametrize("window", [None, *ranges.PRESETS])
def test_every_time_based_page_takes_every_preset(client_in, fleet, window):
    for url in _pages(fleet):
        response = client_in.get(url, {"window": window} if window else {})
        assert response.status_code == 200, (url, window)
        body = response.content.decode()
        assert "data-range-picker" in body
        assert f'aria-current="true" data-preset="{window or "24h"}"' in body, url


def test_the_worker_page_over_a_custom_range_shows_the_rows_of_that_range(client_in, fleet):
    worker = fleet.workers[0]
    response = client_in.get(f"/workers/{worker.pk}/", CUSTOM)
    assert response.status_code == 200
    expected = list(UtilizationSample.objects.filter(worker=worker, ts__gte=START, ts__lte=END).order_by("ts").values_list("ts", "cpu_pct"))
    assert expected and [(p.ts, p.cpu) for p in response.context["detail"].utilization] == expected
    body = response.content.decode()
    assert "Showing 2026-11-20 03:00 to 2026-11-20 07:30 UTC · 1-minute samples" in body
    assert 'value="2026-11-20T03:00"' in body and 'value="2026-11-20T07:30"' in body


def test_the_group_page_counts_the_jobs_of_a_custom_range(client_in, fleet):
    response = client_in.get(f"/groups/{fleet.groups[0].pk}/", {**CUSTOM, "q": "kept"})
    assert response.status_code == 200
    jobs = Job.objects.filter(group=fleet.groups[0], created_at__gte=START, created_at__lte=END)
    group = response.context["group"]
    assert group.jobs_24h_total == jobs.count() > 0
    assert group.jobs_24h["failed"] == jobs.filter(status="Failed").count()
    # The preset links keep the page's other parameters and drop the custom range.
    assert f'href="/groups/{fleet.groups[0].pk}/?q=kept&amp;window=7d"' in response.content.decode()


@pytest.mark.parametrize("url", ["/latency/", "/timeouts/"])
def test_the_latency_pages_count_the_jobs_of_a_custom_range(client_in, fleet, url):
    response = client_in.get(url, CUSTOM)
    assert response.status_code == 200
    jobs = Job.objects.filter(group__isnull=False, created_at__gte=START, created_at__lte=END)
    report = response.context["report"]
    if url == "/latency/":
        assert report.summary.jobs == jobs.count() > 0
        assert report.summary.counts["failed"] == jobs.filter(status="Failed").count()
    assert (report.span.start, report.span.end) == (START, END)
    body = response.content.decode()
    assert "from=2026-11-20T03%3A00Z" in body  # the CSV links ask for the same range


def test_a_custom_range_csv_has_the_same_count(client_in, fleet):
    response = client_in.get("/latency/", {**CUSTOM, "format": "csv", "table": "summary"})
    assert response.status_code == 200
    row = b"".join(response.streaming_content).decode().splitlines()[1].split(",")
    assert int(row[4]) == Job.objects.filter(created_at__gte=START, created_at__lte=END).count()


@pytest.mark.parametrize("query", [
    {"window": "2d"}, {"from": "2026-11-20T03:00Z"}, {"from": "nonsense", "to": "2026-11-20T07:00Z"},
    {"from": "2026-11-20T07:00Z", "to": "2026-11-20T03:00Z"}, {"from": "2026-11-20T11:00Z", "to": "2026-11-21T11:00Z"},
    {"from": "2026-11-20T07:00Z", "to": "2026-11-20T07:01Z"}, {"from": "2025-01-01T00:00Z", "to": "2025-01-02T00:00Z"},
])
def test_a_bad_range_is_a_400_with_a_reason_on_every_page(client_in, fleet, query):
    for url in _pages(fleet):
        response = client_in.get(url, query)
        assert response.status_code == 400, (url, query)
        assert "Bad request" in response.content.decode()


@pytest.mark.parametrize("url", ["/capacity/", "/correlation/", "/capacity/report/"])
def test_the_precomputed_pages_offer_their_windows_only(client_in, fleet, url):
    for window in ("24h", "7d", "30d"):
        response = client_in.get(url, {"window": window})
        assert response.status_code == 200
        body = response.content.decode()
        assert f'aria-current="true" data-preset="{window}"' in body
        assert 'data-preset="6h"' not in body and 'name="from"' not in body
        assert "precomputed" in body
    assert client_in.get(url, {"window": "6h"}).status_code == 400
    refused = client_in.get(url, CUSTOM)
    assert refused.status_code == 400 and "precomputed windows only" in refused.content.decode()
