"""Latency and timeouts pages, thresholds editor, CSV exports and the latency API."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.urls import reverse

from dashboard.auth import issue_token
from tests.latency.factory import job, make_account, make_group
from workers.latency.rollups import rollup_jobs
from workers.models import Job, RunbookThreshold

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
URLS = ["/latency/", "/timeouts/", "/timeouts/thresholds/"]


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def user_client(client):
    from dashboard.roles import set_role

    user = get_user_model().objects.create_user("ops", password="correct horse battery")
    set_role(user, "operator")  # edits thresholds (tests/web/test_doors_roles.py: a viewer cannot)
    client.force_login(user)
    return client


@pytest.fixture
def fleet():
    account = make_account()
    a, b = make_group(account, "grp-a"), make_group(account, "grp-b")
    Job.objects.bulk_create([
        job(a, NOW - timedelta(hours=2), queue=12, duration=300, runbook="Sync-AD"),
        job(b, NOW - timedelta(hours=3), queue=1200, duration=5000, runbook="Backup-SQL"),
        job(b, NOW - timedelta(hours=4), status="Suspended", queue=30),
        job(a, NOW - timedelta(hours=1), status="Failed",
            exception="Failed to start, as hybrid worker was not available when scheduled job started"),
        job(a, NOW - timedelta(minutes=40), status="New"),
    ])
    rollup_jobs(NOW - timedelta(days=31), NOW, now=NOW)
    return account, a, b


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize("url", URLS)
def test_it_sends_anonymous_visitors_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/login" in response["Location"]


def test_it_answers_the_api_anonymously_with_a_json_401(client):
    response = client.get("/api/v1/jobs/latency")
    assert response.status_code == 401 and "error" in response.json()


@pytest.mark.parametrize("window", ["1h", "24h", "7d", "30d"])
def test_it_renders_the_latency_page_for_every_window(user_client, fleet, window):
    response = user_client.get("/latency/", {"window": window})
    assert response.status_code == 200
    assert b"queue delay p50 / p95 / p99" in response.content


def test_it_shows_queued_jobs_with_their_age(user_client, fleet):
    response = user_client.get("/latency/", {"window": "24h"})
    assert response.context["report"].queued.count == 1
    assert "40 min" in response.content.decode()


def test_it_explains_an_empty_latency_page(user_client):
    response = user_client.get("/latency/")
    assert b"No hybrid jobs in this window" in response.content


@pytest.mark.parametrize("query", [{"window": "2d"}, {"format": "pdf"}, {"table": "secrets"}])
def test_it_rejects_bad_parameters_with_a_400_page(user_client, query):
    response = user_client.get("/latency/", query)
    assert response.status_code == 400 and b"Bad request" in response.content


def test_it_rejects_a_bad_timeouts_window(user_client):
    assert user_client.get("/timeouts/", {"window": "forever"}).status_code == 400


def test_it_exports_the_group_table_as_csv(user_client, fleet):
    response = user_client.get("/latency/", {"window": "24h", "format": "csv", "table": "groups"})
    assert response["Content-Disposition"] == 'attachment; filename="latency-groups-24h.csv"'
    rows = _csv(response)
    assert rows[0][:5] == ["name", "account", "window", "window_start_utc", "jobs"]
    assert sorted((r[0], r[4]) for r in rows[1:]) == [("grp-a", "3"), ("grp-b", "2")]


def test_it_neutralises_formulas_in_csv_cells(user_client, fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([job(a, NOW - timedelta(minutes=5), status="New", runbook="=HYPERLINK(\"http://x\")"),
                             job(a, NOW - timedelta(minutes=6), status="New", runbook="@SUM(1)")])
    rows = _csv(user_client.get("/latency/", {"format": "csv", "table": "queued"}))
    runbooks = {r[1] for r in rows[1:]}
    assert "'=HYPERLINK(\"http://x\")" in runbooks and "'@SUM(1)" in runbooks
    assert not any(cell.startswith(("=", "+", "@")) for r in rows for cell in r)


@pytest.mark.parametrize("table,expected", [("now", 1), ("past", 1), ("suspended", 1), ("not_available", 1)])
def test_it_exports_each_timeouts_table_as_csv(user_client, fleet, table, expected):
    response = user_client.get("/timeouts/", {"window": "24h", "format": "csv", "table": table})
    assert response["Content-Type"].startswith("text/csv")
    assert len(_csv(response)) - 1 == expected


def test_it_renders_the_timeouts_page(user_client, fleet):
    response = user_client.get("/timeouts/", {"window": "24h"})
    report = response.context["report"]
    assert (report.over_past.total, report.suspended_stopped.total, report.not_available.total) == (1, 1, 1)


def test_it_escapes_azure_supplied_names(user_client):
    account = make_account()
    evil = make_group(account, "<script>alert(1)</script>")
    Job.objects.bulk_create([job(evil, NOW - timedelta(hours=2), queue=5, duration=5, runbook="</script><b>x")])
    rollup_jobs(NOW - timedelta(days=1), NOW, now=NOW)
    body = user_client.get("/latency/").content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "</script><b>x" not in body


def test_it_saves_a_runbook_threshold_from_the_form(user_client):
    response = user_client.post("/timeouts/thresholds/", {"action": "save", "runbook": "Backup-SQL",
                                                          "max_queue_minutes": "5", "max_run_minutes": "240"})
    assert response.status_code == 302
    row = RunbookThreshold.objects.get(runbook="Backup-SQL")
    assert (row.max_queue_seconds, row.max_run_seconds) == (300, 14400)


def test_it_updates_the_default_threshold_in_place(user_client):
    for minutes in ("10", "20"):
        user_client.post("/timeouts/thresholds/", {"action": "save", "runbook": "*", "max_queue_minutes": minutes,
                                                   "max_run_minutes": "60"})
    assert list(RunbookThreshold.objects.values_list("runbook", "max_queue_seconds")) == [("*", 1200)]


@pytest.mark.parametrize("data", [
    {"runbook": "", "max_queue_minutes": "5", "max_run_minutes": "5"},
    {"runbook": "bad name!", "max_queue_minutes": "5", "max_run_minutes": "5"},
    {"runbook": "Ok", "max_queue_minutes": "0", "max_run_minutes": "5"},
    {"runbook": "Ok", "max_queue_minutes": "5", "max_run_minutes": "lots"},
    {"runbook": "Ok", "max_queue_minutes": "5", "max_run_minutes": "99999999"},
])
def test_it_refuses_invalid_thresholds_with_form_errors(user_client, data):
    response = user_client.post("/timeouts/thresholds/", {"action": "save", **data})
    assert response.status_code == 400 and b"errorlist" in response.content
    assert not RunbookThreshold.objects.exists()


def test_it_removes_a_threshold(user_client):
    RunbookThreshold.objects.create(runbook="Sync-AD", max_queue_seconds=60, max_run_seconds=60)
    user_client.post("/timeouts/thresholds/", {"action": "delete", "runbook": "Sync-AD"})
    assert not RunbookThreshold.objects.exists()


def test_it_refuses_threshold_changes_through_a_read_only_token(client):
    _token, raw = issue_token(name="wall")
    response = client.post(f"/timeouts/thresholds/?token={raw}", {"action": "save", "runbook": "X", "max_queue_minutes": "1",
                                                                 "max_run_minutes": "1"})
    assert response.status_code == 403 and not RunbookThreshold.objects.exists()


def test_it_refuses_the_timeouts_page_to_a_display_token(client, fleet):
    _token, raw = issue_token(name="wall")
    assert client.get("/timeouts/", {"token": raw}).status_code == 403  # tokens open only the wall and the API


def test_it_answers_the_latency_api(user_client, fleet):
    body = user_client.get("/api/v1/jobs/latency", {"window": "24h"}).json()
    assert body["window"] == "24h" and body["group"] is None
    assert set(body["queue_seconds"]) == {"p50", "p95", "p99"}
    assert body["counts"] == {"completed": 2, "failed": 1, "stopped": 0, "suspended": 1, "other": 1, "total": 5}
    assert (body["queued_now"], body["oldest_queued_seconds"]) == (1, 2400.0)
    assert "one bucket" in body["resolution"] and body["exact"] is False


def test_it_filters_the_api_by_group_and_runbook(user_client, fleet):
    body = user_client.get("/api/v1/jobs/latency", {"group": "grp-b", "runbook": "Backup-SQL", "window": "7d"}).json()
    assert body["counts"]["total"] == 1 and body["queue_seconds"]["p50"] == 1200.0 and body["exact"] is True


def test_it_accepts_a_bearer_token_on_the_api(client, fleet):
    _token, raw = issue_token(name="grafana")
    response = client.get("/api/v1/jobs/latency", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200


@pytest.mark.parametrize("query", [
    {"window": "2d"}, {"window": ""}, {"group": ""}, {"group": "x" * 300}, {"runbook": "a\x00b"},
    {"account": "acct"}, {"grp": "typo"},
])
def test_it_rejects_bad_api_parameters_with_a_json_400(user_client, fleet, query):
    response = user_client.get("/api/v1/jobs/latency", query)
    assert response.status_code == 400 and response.json()["error"]


def test_it_answers_404_for_an_unknown_group(user_client, fleet):
    response = user_client.get("/api/v1/jobs/latency", {"group": "nope"})
    assert response.status_code == 404 and "nope" in response.json()["error"]


def test_it_asks_for_the_account_when_a_group_name_is_ambiguous(user_client, fleet):
    make_group(make_account("other"), "grp-a")
    assert user_client.get("/api/v1/jobs/latency", {"group": "grp-a"}).status_code == 400
    assert user_client.get("/api/v1/jobs/latency", {"group": "grp-a", "account": "other"}).status_code == 200


def _bigger_fleet(n_groups: int) -> None:
    account = make_account(f"acct-{n_groups}")
    jobs = []
    for g in range(n_groups):
        group = make_group(account, f"g-{g}")
        jobs += [job(group, NOW - timedelta(hours=h), queue=h, duration=10, runbook=f"rb-{h % 4}") for h in range(1, 48, 5)]
        jobs += [job(group, NOW - timedelta(minutes=30), status="New"),
                 job(group, NOW - timedelta(hours=2), status="Stopped", queue=4000, duration=2),
                 job(group, NOW - timedelta(hours=2), status="Failed", exception="hybrid worker was not available")]
    Job.objects.bulk_create(jobs)
    rollup_jobs(NOW - timedelta(days=31), NOW, now=NOW)


# Session + user lookups (2) plus the selector's fixed count (the pages: one more for the job data
# version their shared figures are keyed on); it must not grow with the fleet.
@pytest.mark.parametrize("n_groups", [2, 15])
@pytest.mark.parametrize("url,query,expected", [
    ("/latency/", {"window": "24h"}, 2 + 1 + 10),
    ("/latency/", {"window": "30d"}, 2 + 1 + 10),
    ("/latency/", {"window": "1h"}, 2 + 1 + 3),
    ("/timeouts/", {"window": "7d"}, 2 + 1 + 11),
    ("/timeouts/", {"window": "1h"}, 2 + 1 + 4),
    ("/api/v1/jobs/latency", {"window": "30d", "group": "g-1"}, 2 + 7),
])
def test_it_pins_the_query_count_whatever_the_fleet_size(user_client, django_assert_max_num_queries, n_groups, url, query, expected):
    _bigger_fleet(n_groups)
    with django_assert_max_num_queries(expected):
        assert user_client.get(url, query).status_code == 200


def test_it_links_every_table_to_its_csv(user_client, fleet):
    body = user_client.get(reverse("latency"), {"window": "7d"}).content.decode()
    for table in ("groups", "runbooks", "workers", "queued", "summary"):
        assert f"table={table}" in body


def test_it_links_each_group_row_to_the_group_page(user_client, fleet):
    _account, a, _b = fleet
    body = user_client.get("/latency/", {"window": "24h"}).content.decode()
    assert f'href="{reverse("group-detail", args=[a.pk])}"' in body


def test_it_shows_the_worst_100_groups_and_says_the_csv_has_the_rest(user_client):
    """An estate of hundreds of groups: the page lists the worst 100 rows (queue p95 first) and says so;
    the CSV of the same table has every group."""
    from tests.fixtures.web import build_fleet

    build_fleet(groups=103, workers_per_group=1, now=NOW, jobs_per_group=1)
    rollup_jobs(NOW - timedelta(days=2), NOW, now=NOW)
    body = user_client.get("/latency/?window=24h").content.decode()
    assert "The first 100 of 103 rows, worst first; the CSV has every row." in body
    groups_table = body.split("Per group, worst queue delay p95 first", 1)[1].split("</table>", 1)[0]
    assert groups_table.count('<th scope="row">') == 100
    response = user_client.get("/latency/?window=24h&format=csv&table=groups")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1 + 103
