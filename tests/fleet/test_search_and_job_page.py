"""The top bar's search (/search/?q=), the job page (/jobs/<Azure job id>/), the CSVs of the jobs
list and the overview, and durations with their exact seconds on hover (issue 15, item 3)."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from tests.fixtures.web import make_account, record_polls
from tests.latency.factory import job, make_group, make_worker
from workers.models import Job, JobDaily, RollupScope, WorkerStatus

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"
JOB_ID = "5b8a2c7e-1f3d-4e5a-9b6c-0d1e2f3a4b5c"


def text(response) -> str:
    return response.content.decode()


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode(), newline="")))


@pytest.fixture
def fleet(now):
    account = make_account("contoso")
    record_polls(account, at=now - timedelta(seconds=20))
    web = make_group(account, "web-frontend")
    batch = make_group(account, "batch-nightly")
    w1 = make_worker(web, "web-vm-01")
    w2 = make_worker(web, "web-vm-02")
    make_worker(batch, "batch-vm-01")
    HybridWorker = type(w1)
    HybridWorker.objects.filter(pk__in=[w1.pk, w2.pk]).update(status=WorkerStatus.ONLINE)
    long_job = job(web, now - timedelta(hours=2), queue=1346.8, duration=75.25, status="Failed", runbook="Patch-Servers",
                   worker=w1, exception=f"Boom {XSS} & more")
    long_job.job_id = JOB_ID
    Job.objects.bulk_create([long_job, job(batch, now - timedelta(hours=1), queue=3.0, duration=9.0, runbook="Nightly-Backup")])
    JobDaily.objects.bulk_create([
        JobDaily(scope=RollupScope.RUNBOOK, key=f"r:{name}", runbook=name, day=now.replace(hour=0) - timedelta(days=1),
                 jobs=1, computed_at=now)
        for name in ("Patch-Servers", "Nightly-Backup", XSS)
    ])
    return {"account": account, "web": web, "batch": batch, "w1": w1, "w2": w2}


# --- search ---------------------------------------------------------------------------------------

def test_search_groups_results_by_kind_with_links(client_in, fleet):
    body = text(client_in.get("/search/", {"q": "web"}))
    workers = body.split('id="hits-workers"')[1].split('id="hits-groups"')[0]
    groups = body.split('id="hits-groups"')[1].split('id="hits-runbooks"')[0]
    assert f'href="/workers/{fleet["w1"].pk}/"' in workers and f'href="/workers/{fleet["w2"].pk}/"' in workers
    assert "batch-vm-01" not in workers
    assert f'href="/groups/{fleet["web"].pk}/"' in groups and "batch-nightly" not in groups


def test_search_finds_a_runbook_any_case_and_lists_its_jobs(client_in, fleet):
    body = text(client_in.get("/search/", {"q": "patch"}))
    assert 'href="/search/?runbook=Patch-Servers"' in body
    runbook_page = text(client_in.get("/search/", {"runbook": "Patch-Servers"}))
    assert "Runbook Patch-Servers" in runbook_page
    assert f"/jobs/{JOB_ID}/?account={fleet['account'].pk}" in runbook_page
    assert "Nightly-Backup" not in runbook_page


def test_an_exact_job_id_redirects_to_the_job_page(client_in, fleet):
    response = client_in.get("/search/", {"q": f"  {JOB_ID.upper()} "})
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{JOB_ID}/?account={fleet['account'].pk}"


def test_a_job_id_prefix_lists_the_recent_jobs_it_starts(client_in, fleet):
    body = text(client_in.get("/search/", {"q": JOB_ID[:10]}))
    assert f"/jobs/{JOB_ID}/?account=" in body
    # Too short a prefix is not a job search (it would match half of all ids).
    assert f"/jobs/{JOB_ID}/" not in text(client_in.get("/search/", {"q": JOB_ID[:4]}))


def test_a_unique_worker_name_redirects_but_a_shared_one_lists(client_in, fleet):
    response = client_in.get("/search/", {"q": "WEB-VM-01"})
    assert response.status_code == 302 and response["Location"] == f"/workers/{fleet['w1'].pk}/"
    other = make_group(make_account("fabrikam"), "web-frontend")
    make_worker(other, "web-vm-01")
    response = client_in.get("/search/", {"q": "web-vm-01"})
    assert response.status_code == 200
    assert text(response).count("web-vm-01</a>") == 2


def test_search_escapes_what_azure_named(client_in, fleet):
    make_group(fleet["account"], f"grp-{XSS}")
    body = text(client_in.get("/search/", {"q": "<script>"}))
    assert XSS not in body
    assert "grp-&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</a>" in body  # the runbook


@pytest.mark.parametrize("q", ["%", "_", "'; DROP TABLE workers_job; --", "\\", "ü名前", "a" * 200, "*", "%00", "--", "   "])
def test_odd_queries_never_fail(client_in, fleet, q):
    response = client_in.get("/search/", {"q": q})
    assert response.status_code in (200, 302)
    if response.status_code == 200 and q.strip():
        assert "Nothing matches" in text(response) or 'id="hits-workers"' in text(response)


def test_wildcards_match_literally(client_in, fleet):
    assert "Nothing matches" in text(client_in.get("/search/", {"q": "%"}))
    assert "Nothing matches" in text(client_in.get("/search/", {"q": "_"}))


@pytest.mark.parametrize("params, reason", [
    ({"q": "a" * 201}, "too long"), ({"q": "web\x00"}, "control characters"), ({"q": "a\x1bb"}, "control characters"),
    ({"runbook": ""}, "empty"), ({"runbook": "x" * 261}, "too long"), ({"runbook": "a\x00"}, "control characters"),
])
def test_bad_input_is_a_400_not_a_500(client_in, fleet, params, reason):
    response = client_in.get("/search/", params)
    assert response.status_code == 400
    assert reason in text(response)


def test_an_empty_search_explains_what_it_finds(client_in, fleet):
    body = text(client_in.get("/search/"))
    assert "Type part of a worker or group name" in body


def test_search_costs_a_fixed_number_of_queries(client_in, fleet, django_assert_max_num_queries):
    for i in range(30):
        make_worker(fleet["batch"], f"web-extra-{i:02d}")
    with django_assert_max_num_queries(12):
        body = text(client_in.get("/search/", {"q": "web-"}))
    assert "first 20" in body


def test_the_search_box_is_in_the_top_bar_for_logged_in_users(client_in, client, fleet):
    body = text(client_in.get("/jobs/"))
    assert re.search(r'<form class="topbar-search" role="search" method="get" action="/search/">', body)
    assert 'name="q"' in body
    assert "topbar-search" not in text(client.get("/login/"))


def test_search_needs_a_login(client, fleet, read_token):
    assert client.get("/search/", {"q": "web"}).status_code == 302
    assert client.get("/search/", {"q": "web", "token": read_token}).status_code == 403


# --- the job page ---------------------------------------------------------------------------------

def test_the_job_page_shows_times_durations_and_the_escaped_exception(client_in, fleet):
    body = text(client_in.get(f"/jobs/{JOB_ID}/"))
    assert "Job Patch-Servers" in body
    assert '<span class="dur" title="1346.8 s">22.4 min</span>' in body  # queue delay
    assert '<span class="dur" title="75.2 s">75 s</span>' in body or '<span class="dur" title="75.3 s">75 s</span>' in body
    assert "Boom &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in body and XSS not in body
    assert f'href="/workers/{fleet["w1"].pk}/"' in body and f'href="/groups/{fleet["web"].pk}/"' in body
    for label in ("Created (queued)", "Started", "Ended"):
        assert f"<dt>{label}</dt>" in body
    assert ("https://portal.azure.com/#resource/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Automation/"
            f"automationAccounts/contoso/jobs/{JOB_ID}") in body


def test_the_portal_link_encodes_azure_names(client_in, fleet):
    account = fleet["account"]
    account.automation_account = 'odd"name/<x>'
    account.save()
    body = text(client_in.get(f"/jobs/{JOB_ID}/"))
    assert "automationAccounts/odd%22name%2F%3Cx%3E/jobs/" in body
    assert '<x>' not in body


def test_a_job_without_a_known_worker_says_why(client_in, fleet):
    other = Job.objects.exclude(job_id=JOB_ID).get()
    body = text(client_in.get(f"/jobs/{other.job_id}/"))
    assert "Azure does not say which member of the group ran it" in body
    assert "not started" not in body


@pytest.mark.parametrize("path", ["/jobs/nope/", "/jobs/%3Cscript%3E/", "/jobs/a%00b/", f"/jobs/{'a' * 65}/",
                                  f"/jobs/{JOB_ID}/?account=abc", f"/jobs/{JOB_ID}/?account=99999999"])
def test_an_unknown_or_malformed_job_is_a_404(client_in, fleet, path):
    assert client_in.get(path).status_code == 404


def test_the_same_id_in_two_accounts_asks_which(client_in, fleet, now):
    other = make_account("fabrikam")
    twin = job(make_group(other, "g"), now - timedelta(minutes=5), runbook="Other-Runbook")
    twin.job_id = JOB_ID
    twin.save()
    body = text(client_in.get(f"/jobs/{JOB_ID}/"))
    assert "exists in 2 Automation accounts" in body
    assert f"?account={other.pk}" in body and f"?account={fleet['account'].pk}" in body
    picked = text(client_in.get(f"/jobs/{JOB_ID}/", {"account": other.pk}))
    assert "Job Other-Runbook" in picked


def test_job_ids_in_the_lists_link_to_the_job_page(client_in, fleet):
    link = f'href="/jobs/{JOB_ID}/?account={fleet["account"].pk}"'
    assert link in text(client_in.get("/jobs/"))
    assert link in text(client_in.get(f"/groups/{fleet['web'].pk}/"))
    timeouts = text(client_in.get("/timeouts/", {"window": "7d"}))
    assert f'href="/jobs/{JOB_ID}/"' in timeouts  # over the default queue threshold: the latency tables link it too


# --- CSV ------------------------------------------------------------------------------------------

def test_the_jobs_csv_follows_the_filters_and_defuses_formulas(client_in, fleet, now):
    Job.objects.bulk_create([job(fleet["web"], now - timedelta(minutes=3), runbook="=HYPERLINK(\"x\")", status="Completed",
                                 queue=1.0, duration=2.0)])
    response = client_in.get("/jobs.csv", {"group": fleet["web"].pk})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    header, body = rows[0], rows[1:]
    assert header[:3] == ["job_id", "runbook", "status"]
    assert [r[1] for r in body] == ["'=HYPERLINK(\"x\")", "Patch-Servers"]  # newest first, only the web group
    patch = body[1]
    assert patch[0] == JOB_ID and patch[header.index("queue_seconds")] == "1346.8"
    assert patch[header.index("worker")] == "web-vm-01"
    assert patch[header.index("exception")] == f"Boom {XSS} & more"


def test_the_jobs_page_links_its_csv_with_the_same_filters(client_in, fleet):
    body = text(client_in.get("/jobs/", {"status": "Failed"}))
    assert 'href="/jobs.csv?status=Failed"' in body
    rows = csv_rows(client_in.get("/jobs.csv", {"status": "failed"}))
    assert [r[0] for r in rows[1:]] == [JOB_ID]


def test_a_bad_jobs_csv_filter_is_a_400(client_in, fleet):
    assert client_in.get("/jobs.csv", {"since": "yesterday"}).status_code == 400
    assert client_in.get("/jobs.csv", {"group": "x"}).status_code == 400


def test_the_overview_csv_has_one_row_per_group(client_in, fleet):
    assert 'href="/overview.csv"' in text(client_in.get("/"))
    rows = csv_rows(client_in.get("/overview.csv"))
    header = rows[0]
    by_group = {r[header.index("group")]: r for r in rows[1:]}
    assert set(by_group) == {"web-frontend", "batch-nightly"}
    web = by_group["web-frontend"]
    assert web[header.index("online")] == "2" and web[header.index("total")] == "2"
    assert web[header.index("jobs_24h_failed")] == "1"


# --- durations ------------------------------------------------------------------------------------

def test_durations_in_tables_carry_their_exact_seconds(client_in, fleet):
    body = text(client_in.get("/jobs/"))
    assert '<span class="dur" title="1346.8 s">22.4 min</span>' in body
    assert "1346.8 s<" not in body
