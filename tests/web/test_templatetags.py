"""Template helpers: URLs with a query, UTC <time> elements, human ages."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from django.test import RequestFactory

from dashboard.templatetags import hrw, latency_tags

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_it_builds_urls_with_a_query_and_never_a_token():
    request = RequestFactory().get("/?token=hrw_abc")
    url = hrw.turl({"request": request}, "jobs", status="Failed", empty="")
    assert url == "/jobs/?status=Failed"


def test_it_renders_a_utc_time_element():
    html = hrw.utc_time(datetime(2026, 11, 20, 13, 0, tzinfo=timezone(timedelta(hours=1))))
    assert html == '<time datetime="2026-11-20T12:00:00Z" title="2026-11-20 12:00:00 UTC">2026-11-20 12:00:00 UTC</time>'


def test_it_says_never_for_a_missing_time():
    assert "never" in hrw.utc_time(None)
    assert hrw.age(None, T0) == "never"


def test_it_renders_ages_in_readable_units():
    assert hrw.age(T0 - timedelta(seconds=40), T0) == "40 s ago"
    assert hrw.age(T0 - timedelta(minutes=7), T0) == "7 min ago"
    assert hrw.age(T0 - timedelta(hours=3), T0) == "3 h ago"
    assert hrw.age(T0 - timedelta(days=3), T0) == "3 d ago"


def test_it_writes_durations_with_the_shared_formatter_and_the_exact_seconds_on_hover():
    assert hrw.duration(11.94) == '<span class="dur" title="11.9 s">12 s</span>'
    assert hrw.duration(4.26) == '<span class="dur" title="4.3 s">4.3 s</span>'
    assert hrw.duration(5400) == '<span class="dur" title="5400 s">90 min</span>'
    assert hrw.duration(1346.8) == '<span class="dur" title="1346.8 s">22.4 min</span>'
    assert hrw.duration(None) == "n/a"
    assert latency_tags.secs(None) == "–"
    assert latency_tags.secs(300) == '<span class="dur" title="300 s">5 min</span>'
    assert latency_tags.secs_text(300) == "5 min"  # plain-text emails: no markup


def test_it_states_units_for_percent():
    assert hrw.pct(41.6) == "42 %"
    assert hrw.pct(None) == "n/a"
