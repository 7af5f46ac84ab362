"""Server-rendered pages: empty states, freshness and STALE banners, ordering, escaping, filters."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from tests.fixtures.web import build_fleet, make_account, record_polls
from workers.models import Job, WorkerGroup, WorkerStatus

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


def text(response) -> str:
    return response.content.decode()


def test_it_explains_how_to_add_an_account_when_none_is_configured(client_in):
    body = text(client_in.get("/"))
    assert "No Automation account is configured" in body
    assert "manage.py add_account --connection-file" in body


def test_it_says_it_is_waiting_for_the_first_poll(client_in, now):
    make_account()
    body = text(client_in.get("/"))
    assert "Waiting for the first poll" in body


def test_it_says_the_account_lists_no_groups(client_in, now):
    record_polls(make_account(), at=now - timedelta(seconds=10))
    assert "No Hybrid Runbook Worker groups" in text(client_in.get("/"))


def test_it_shows_how_old_each_source_is(client_in, now):
    account = make_account()
    record_polls(account, at=now - timedelta(seconds=25))
    body = text(client_in.get("/"))
    assert "Automation data 25 s old" in body
    assert "Log Analytics data 25 s old" in body
    assert "STALE DATA" not in body


def test_it_shows_a_stale_banner_with_the_error_when_the_latest_poll_failed(client_in, now):
    account = make_account()
    record_polls(account, at=now - timedelta(seconds=60))
    record_polls(account, at=now - timedelta(seconds=5), ok=False, error="AzureTransientError: 503 Service Unavailable")
    body = text(client_in.get("/"))
    assert "STALE DATA" in body
    assert "AzureTransientError: 503 Service Unavailable" in body


def test_it_shows_a_stale_banner_when_the_last_good_poll_is_overdue(client_in, now, settings):
    settings.STALE_AFTER_INTERVALS = 3
    settings.POLL_WORKERS_SECONDS = 30
    record_polls(make_account(), at=now - timedelta(seconds=91))
    body = text(client_in.get("/"))
    assert "STALE DATA" in body
    assert "expected every 30 s" in body


def test_it_does_not_mark_data_stale_just_under_the_limit(client_in, now, settings):
    settings.STALE_AFTER_INTERVALS = 3
    settings.POLL_WORKERS_SECONDS = settings.POLL_JOBS_SECONDS = settings.POLL_LOGS_SECONDS = 30
    record_polls(make_account(), at=now - timedelta(seconds=90))
    assert "STALE DATA" not in text(client_in.get("/"))


def test_it_lists_groups_worst_first(client_in, now):
    account = make_account()
    build_fleet(groups=1, workers_per_group=2, now=now, account=account, group_names=["a-healthy"])
    build_fleet(groups=1, workers_per_group=2, now=now, account=account, group_names=["b-down"], statuses=[WorkerStatus.OFFLINE])
    build_fleet(groups=1, workers_per_group=2, now=now, account=account, group_names=["c-degraded"], statuses=[WorkerStatus.ONLINE, WorkerStatus.OFFLINE])
    record_polls(account, at=now - timedelta(seconds=10))
    body = text(client_in.get("/"))
    order = [body.index(name) for name in ("b-down", "c-degraded", "a-healthy")]
    assert order == sorted(order)


def test_it_shows_health_as_text_not_only_colour(client_in, small_fleet):
    body = text(client_in.get("/"))
    assert re.search(r'class="badge health-degraded">Degraded<', body)


def test_it_flags_single_member_system_and_v1_groups(client_in, now):
    account = make_account()
    fleet = build_fleet(groups=1, workers_per_group=1, now=now, account=account, group_names=["solo"])
    WorkerGroup.objects.filter(pk=fleet.groups[0].pk).update(group_type="System")
    fleet.workers[0].__class__.objects.filter(pk=fleet.workers[0].pk).update(worker_type="HybridV1")
    record_polls(account, at=now - timedelta(seconds=10))
    body = text(client_in.get("/"))
    assert "single member: no HA" in body and "System group" in body and "1 V1 worker (retired)" in body


def test_it_states_units_and_windows_on_the_overview(client_in, small_fleet):
    body = text(client_in.get("/"))
    assert "Queue delay p95, 24 h" in body
    assert "Jobs, last 24 h" in body
    assert re.search(r'title="\d+(\.\d)? s">\d+(\.\d)? (s|min|h|d)</span></td>', body)  # exact seconds on hover


def test_it_escapes_azure_supplied_names_on_the_overview(client_in, now):
    account = make_account()
    build_fleet(groups=1, workers_per_group=1, now=now, account=account, group_names=[XSS])
    record_polls(account, at=now - timedelta(seconds=10))
    body = text(client_in.get("/"))
    assert XSS not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_it_shows_a_failing_group_poll_on_the_overview_with_the_error_escaped(client_in, now):
    from workers.models import PollKind, PollRun, WorkerGroup

    account = make_account()
    fleet = build_fleet(groups=2, workers_per_group=1, now=now, account=account)
    WorkerGroup.objects.update(first_seen_at=now - timedelta(days=1))
    record_polls(account, at=now - timedelta(seconds=10))
    PollRun.objects.create(account=account, kind=PollKind.WORKERS, scope=fleet.groups[1].name, started_at=now - timedelta(seconds=9),
                           finished_at=now - timedelta(seconds=8), ok=False, error=f"403 {XSS}")
    body = text(client_in.get("/"))
    assert body.count("STALE: worker poll failing") == 1
    assert XSS not in body and "worker poll failing: 403 &lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_it_escapes_azure_supplied_names_on_the_group_and_worker_pages(client_in, now):
    account = make_account()
    fleet = build_fleet(groups=1, workers_per_group=1, now=now, account=account, group_names=[XSS])
    record_polls(account, at=now - timedelta(seconds=10))
    fleet.workers[0].__class__.objects.update(name=XSS, status_reason=XSS, agent_version=XSS)
    Job.objects.update(runbook=XSS, exception=XSS)
    for url in (f"/groups/{fleet.groups[0].pk}/", f"/workers/{fleet.workers[0].pk}/", "/jobs/"):
        body = text(client_in.get(url))
        assert XSS not in body, url


def test_it_keeps_chart_data_inside_json_script_safe(client_in, small_fleet):
    response = client_in.get(f"/workers/{small_fleet.workers[0].pk}/")
    body = text(response)
    script = re.search(r'<script id="figures" type="application/json">(.*?)</script>', body, re.S)
    assert script is not None
    figures = json.loads(script.group(1))
    assert set(figures) == {"util", "timeline"}
    assert figures["util"]["data"][0]["name"] == "CPU %"


def test_it_never_puts_raw_angle_brackets_from_azure_into_json_script(client_in, now):
    account = make_account()
    fleet = build_fleet(groups=1, workers_per_group=1, now=now, account=account)
    record_polls(account, at=now - timedelta(seconds=10))
    from workers.models import StatusChange
    StatusChange.objects.create(worker=fleet.workers[0], old_status="online", new_status="offline", reason=XSS, created_at=now - timedelta(minutes=5))
    body = text(client_in.get(f"/workers/{fleet.workers[0].pk}/"))
    script = re.search(r'<script id="figures" type="application/json">(.*?)</script>', body, re.S).group(1)
    assert "<" not in script and "\\u003Cscript\\u003E" in script


def _figures(body: str) -> dict:
    return json.loads(re.search(r'<script id="figures" type="application/json">(.*?)</script>', body, re.S).group(1))


def test_it_draws_the_signal_lanes_from_recorded_spans(client_in, small_fleet, now):
    from workers.models import SignalSource, SignalSpan

    w = small_fleet.workers[0]
    SignalSpan.objects.bulk_create([
        SignalSpan(worker=w, source=SignalSource.AUTOMATION, start_at=now - timedelta(hours=30), end_at=now - timedelta(hours=3)),
        SignalSpan(worker=w, source=SignalSource.AUTOMATION, start_at=now - timedelta(hours=1), end_at=now - timedelta(seconds=40)),
        SignalSpan(worker=w, source=SignalSource.HEARTBEAT, start_at=now - timedelta(minutes=2), end_at=now - timedelta(minutes=2)),
    ])
    body = text(client_in.get(f"/workers/{w.pk}/"))
    timeline = _figures(body)["timeline"]
    lanes = {t["name"]: t for t in timeline["data"]}
    automation = lanes["Automation lastSeen"]["x"]
    assert automation[:2] == ["2026-11-19T12:00:00Z", "2026-11-20T09:00:00Z"]  # clipped to the 24 h window
    assert automation[2] is None  # the 2 h gap stays empty
    assert lanes["Log Analytics Heartbeat"]["x"][:2] == ["2026-11-20T11:58:00Z", "2026-11-20T11:59:00Z"]  # one observation, one minute wide
    assert lanes["Perf samples"]["x"][:2] == ["2026-11-20T11:31:00Z", "2026-11-20T12:00:00Z"]
    assert "gap tolerance: Automation lastSeen 90 s, Heartbeat 240 s" in timeline["layout"]["title"]["text"]
    assert "a gap means the signal was late" in body
    assert "no status change in this window" not in [a["text"] for a in timeline["layout"]["annotations"]]


def test_it_says_which_lanes_have_nothing_when_no_span_was_recorded(client_in, small_fleet):
    body = text(client_in.get(f"/workers/{small_fleet.workers[1].pk}/"))
    notes = [a["text"] for a in _figures(body)["timeline"]["layout"]["annotations"]]
    assert notes == [
        "no Automation lastSeen in this window", "no Heartbeat in this window", "no Perf samples in this window",
        "no status change in this window",
    ]


def test_it_draws_the_signal_lanes_over_7_days(client_in, small_fleet, now):
    from workers.models import SignalSource, SignalSpan

    w = small_fleet.workers[0]
    SignalSpan.objects.create(worker=w, source=SignalSource.HEARTBEAT, start_at=now - timedelta(days=3), end_at=now)
    timeline = _figures(text(client_in.get(f"/workers/{w.pk}/?window=7d")))["timeline"]
    assert timeline["layout"]["xaxis"]["range"] == ["2026-11-13T12:00:00Z", "2026-11-20T12:00:00Z"]
    assert next(t for t in timeline["data"] if t["name"] == "Log Analytics Heartbeat")["x"][:2] == [
        "2026-11-17T12:00:00Z", "2026-11-20T12:00:00Z",
    ]


def test_it_shows_member_freshness_on_the_group_page(client_in, small_fleet):
    body = text(client_in.get(f"/groups/{small_fleet.groups[0].pk}/"))
    assert "Automation last seen 40 s ago" in body
    assert "heartbeat 70 s ago" in body


def test_it_draws_sparklines_from_hourly_utilization(client_in, small_fleet):
    body = text(client_in.get(f"/groups/{small_fleet.groups[0].pk}/"))
    first = small_fleet.workers[0]
    assert f'data-key="cpu-{first.pk}"' in body
    figures = json.loads(re.search(r'<script id="figures" type="application/json">(.*?)</script>', body, re.S).group(1))
    assert figures[f"cpu-{first.pk}"]["data"][0]["y"] == [33.0, 32.0, 31.0]


def test_it_answers_404_for_an_unknown_group(client_in, small_fleet):
    assert client_in.get("/groups/999999/").status_code == 404


def test_it_says_jobs_are_not_attributed_to_members_of_bigger_groups(client_in, small_fleet):
    body = text(client_in.get(f"/workers/{small_fleet.workers[0].pk}/"))
    assert "Azure does not record which member ran a job" in body


def test_it_says_a_single_member_ran_every_job_of_its_group(client_in, now):
    account = make_account()
    fleet = build_fleet(groups=1, workers_per_group=1, now=now, account=account)
    record_polls(account, at=now - timedelta(seconds=10))
    assert "only member of its group" in text(client_in.get(f"/workers/{fleet.workers[0].pk}/"))


def test_it_answers_400_for_a_bad_worker_window(client_in, small_fleet):
    response = client_in.get(f"/workers/{small_fleet.workers[0].pk}/?window=99y")
    assert response.status_code == 400
    assert "window must be one of 1h, 6h, 24h, 7d, 30d" in text(response)


def test_it_renders_times_as_utc_time_elements(client_in, small_fleet):
    body = text(client_in.get(f"/workers/{small_fleet.workers[0].pk}/"))
    assert '<time datetime="2026-11-20T11:59:20Z" title="2026-11-20 11:59:20 UTC">2026-11-20 11:59:20 UTC</time>' in body


def test_it_filters_jobs_by_status(client_in, small_fleet):
    body = text(client_in.get("/jobs/?status=failed"))
    assert "3 jobs" in body  # one Failed job in each of the three groups
    assert "Completed</td>" not in body


def test_it_shows_a_form_error_for_a_bad_since(client_in, small_fleet):
    response = client_in.get("/jobs/?since=yesterday-ish")
    assert response.status_code == 400
    assert "neither a relative window" in text(response)


def test_it_shows_a_form_error_for_a_naive_since(client_in, small_fleet):
    response = client_in.get("/jobs/?since=2026-11-20T10:00:00")
    assert response.status_code == 400
    assert "has no timezone" in text(response)


def test_it_shows_a_form_error_for_an_unknown_group(client_in, small_fleet):
    assert client_in.get("/jobs/?group=999999").status_code == 400


def test_it_paginates_jobs_and_keeps_the_filters(client_in, now):
    account = make_account()
    build_fleet(groups=1, workers_per_group=1, now=now, account=account, jobs_per_group=120)
    record_polls(account, at=now - timedelta(seconds=10))
    body = text(client_in.get("/jobs/?since=24h"))
    assert "Page 1 of 3" in body
    assert 'href="/jobs/?since=24h&amp;page=2"' in body
    assert "Page 3 of 3" in text(client_in.get("/jobs/?since=24h&page=3"))


def test_it_marks_the_group_table_itself_as_stale(client_in, small_fleet, now):
    record_polls(small_fleet.account, at=now - timedelta(seconds=1), ok=False, error="boom")
    body = text(client_in.get("/"))
    assert "STALE: last known state, not live." in body
    assert 'class="table-wrap is-stale"' in body


def test_it_keeps_the_selected_group_in_the_filter(client_in, small_fleet):
    group = small_fleet.groups[1]
    body = text(client_in.get(f"/jobs/?group={group.pk}"))
    assert f'<option value="{group.pk}" selected>{group.name} (acct)</option>' in body
    assert body.count(" selected>") == 1


def test_it_shows_a_group_page_as_fresh_when_its_poll_succeeded(client_in, small_fleet):
    body = text(client_in.get(f"/groups/{small_fleet.groups[0].pk}/"))
    assert "Automation data 20 s old" in body and "STALE DATA" not in body


def test_it_shows_a_group_page_as_stale_when_its_own_worker_poll_failed(client_in, small_fleet, now):
    from workers.models import PollKind, PollRun
    group = small_fleet.groups[0]
    PollRun.objects.create(account=small_fleet.account, kind=PollKind.WORKERS, scope=group.name, ok=False,
                           started_at=now - timedelta(seconds=3), finished_at=now - timedelta(seconds=2), error="403 Forbidden")
    assert "403 Forbidden" in text(client_in.get(f"/groups/{group.pk}/"))
    assert "STALE DATA" not in text(client_in.get(f"/groups/{small_fleet.groups[1].pk}/"))


def test_the_overview_names_groups_it_cannot_poll_and_marks_their_rows_stale(client_in, small_fleet, now):
    from workers.models import PollKind, PollRun, WorkerGroup
    WorkerGroup.objects.update(first_seen_at=now - timedelta(days=1))
    group = small_fleet.groups[2]
    PollRun.objects.create(account=small_fleet.account, kind=PollKind.WORKERS, scope=group.name, ok=False,
                           started_at=now - timedelta(seconds=3), finished_at=now - timedelta(seconds=2), error="<script>x</script> 403")
    body = text(client_in.get("/"))
    assert "1 group not polled" in body and "STALE DATA" not in body  # the other groups' polls are fine
    assert "&lt;script&gt;x&lt;/script&gt; 403" in body and "<script>x</script>" not in body
    assert body.count('<tr class="is-stale">') == 1


def test_the_overview_has_no_unpolled_notice_when_every_group_is_polled(client_in, small_fleet):
    assert "not polled" not in text(client_in.get("/"))
