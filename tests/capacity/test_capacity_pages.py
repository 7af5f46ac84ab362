"""The correlation page, the capacity page, the printable review and their CSV exports."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest

from tests.capacity.data import build_analysed_fleet, build_fleet
from tests.fixtures.web import NOW
from workers.capacity.correlation import compute_findings

pytestmark = pytest.mark.django_db


@pytest.fixture
def analysed(now):
    """A 48-hour fleet (one under_spec machine) analysed for 24 h and 7 d."""
    return build_analysed_fleet(now=NOW, hours=48)


def text(response) -> str:
    return response.content.decode()


def figures(response) -> dict:
    match = re.search(r'<script id="capacity-figures" type="application/json">(.*?)</script>', text(response), re.S)
    assert match, "no capacity-figures json_script"
    return json.loads(match.group(1))


def rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


# --- correlation --------------------------------------------------------------------------------


def test_it_ranks_the_under_spec_machine_first_on_the_correlation_page(client_in, analysed):
    response = client_in.get("/correlation/?window=24h")
    assert response.status_code == 200
    body = text(response)
    first_row = body.split("<tbody>")[1].split("</tr>")[0]
    assert analysed.under_spec in first_row
    assert "p95 is" in first_row and "x higher" in first_row


def test_it_names_coefficients_sample_size_and_significance(client_in, analysed):
    body = text(client_in.get("/correlation/?window=24h"))
    for heading in ("Pearson r", "Spearman &rho;", "n (jobs)", "p-value (&rho;)", "p-value (effect)"):
        assert heading in body


def test_it_draws_the_selected_finding_as_a_scatter_with_a_fitted_line(client_in, analysed):
    figure = figures(client_in.get("/correlation/?window=24h"))["scatter"]
    points, line = figure["data"]
    assert points["mode"] == "markers" and len(points["x"]) == len(points["y"]) > 0
    assert line["mode"] == "lines" and len(line["x"]) == 2
    assert analysed.under_spec in figure["layout"]["title"]["text"]


def test_it_draws_the_finding_asked_for(client_in, analysed):
    from workers.models import CorrelationFinding

    other = CorrelationFinding.objects.filter(run__window="24h", flagged=False).order_by("rank").first()
    figure = figures(client_in.get(f"/correlation/?window=24h&finding={other.pk}"))["scatter"]
    subject = other.worker.name if other.worker_id else other.group.name
    assert subject in figure["layout"]["title"]["text"]


def test_it_explains_the_method_and_the_missing_job_attribution(client_in, analysed):
    body = text(client_in.get("/correlation/?window=7d"))
    assert "No per-worker job attribution in Azure" in body
    assert "permutation test" in body


def test_it_says_why_strong_associations_were_not_flagged(client_in, analysed):
    body = text(client_in.get("/correlation/?window=24h"))
    assert "Examined but not flagged" in body
    assert "no real pressure" in body


def test_it_explains_that_nothing_was_computed_yet(client_in, now):
    response = client_in.get("/correlation/?window=30d")
    assert response.status_code == 200
    assert "Not computed yet for this window" in text(response)
    assert "analyze_capacity" in text(response)


def test_it_says_when_no_pair_is_a_finding(client_in, now):
    build_fleet(now=NOW, hours=24, seed=4, under_spec_group="", jobs_per_hour=20)
    compute_findings("24h", NOW)
    body = text(client_in.get("/correlation/?window=24h"))
    assert "No finding in the last 24 h" in body


@pytest.mark.parametrize("query", ["window=1y", "window=%3Cscript%3E", "finding=abc", "finding=-3", "format=xml"])
def test_it_answers_400_to_a_bad_correlation_query(client_in, now, query):
    response = client_in.get(f"/correlation/?{query}")
    assert response.status_code == 400
    assert "Bad query" in text(response)
    assert "<script>" not in text(response)


def test_it_exports_the_findings_as_csv(client_in, analysed):
    response = client_in.get("/correlation/?window=24h&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="correlation-24h.csv"' in response["Content-Disposition"]
    table = rows(response)
    assert table[0][:6] == ["rank", "flagged", "group", "worker", "metric", "target"]
    assert table[1][3] == analysed.under_spec and table[1][1] == "True"


def test_it_neutralises_formulas_in_csv_cells(client_in, now):
    build_fleet(now=NOW, hours=24, seed=2, layout={"=HYPERLINK(\"http://x\")": 3, "@SUM(A1)": 2}, under_spec_group="=HYPERLINK(\"http://x\")")
    compute_findings("24h", NOW)
    table = rows(client_in.get("/correlation/?window=24h&format=csv"))
    groups = {row[2] for row in table[1:]}
    assert groups and all(g.startswith("'=") or g.startswith("'@") for g in groups)
    cap = rows(client_in.get("/capacity/?window=24h&format=csv&table=groups"))
    assert {row[0] for row in cap[1:]} == {"'=HYPERLINK(\"http://x\")", "'@SUM(A1)"}


def test_it_escapes_azure_names_on_the_correlation_page(client_in, now):
    build_fleet(now=NOW, hours=24, seed=2, layout={"<script>alert(1)</script>": 4}, under_spec_group="<script>alert(1)</script>")
    compute_findings("24h", NOW)
    response = client_in.get("/correlation/?window=24h")
    body = text(response)
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "\\u003Cscript\\u003E" in body  # inside json_script


# --- capacity -----------------------------------------------------------------------------------


def test_it_shows_utilization_percentiles_and_capacity_per_group(client_in, analysed):
    body = text(client_in.get("/capacity/?window=7d"))
    for group in ("hrw-win-prod", "hrw-linux-prod", "hrw-single"):
        assert group in body
    assert "CPU p50 / p95" in body and "Memory p50 / p95" in body
    assert "480 jobs/h each" in body and "50" in body
    assert "Azure Automation service limits" in body


def test_it_lists_the_single_member_group_as_a_single_point_of_failure(client_in, analysed):
    body = text(client_in.get("/capacity/?window=7d"))
    spof = body.split("Single points of failure")[1].split("</table>")[0]
    assert "hrw-single" in spof and "single-member group" in spof
    assert "hrw-linux-prod" not in spof


def test_it_flags_a_group_that_misses_the_target_with_one_worker_fewer(client_in, analysed):
    # 3 online workers; a 20 s target is met by 3 independent pollers (p95 poll wait ~ 18.5 s)
    # but not by 2 (~23.3 s).
    body = text(client_in.get("/capacity/?window=7d&target=20"))
    spof = body.split("Single points of failure")[1].split("</table>")[0]
    assert "hrw-linux-prod" in spof and "losing one worker breaks the p95 target" in spof


def test_it_recommends_workers_for_the_target_and_names_the_model(client_in, analysed):
    body = text(client_in.get("/capacity/?window=7d&target=60"))
    assert "Recommended workers for a p95 queue delay of 60 s" in body
    assert "M/M/c" in body and "Erlang C" in body
    lenient = text(client_in.get("/capacity/?window=7d&target=3600"))
    assert "queue delay of 3600 s" in lenient


def test_it_changes_the_recommendation_with_the_target(client_in, analysed):
    strict = rows(client_in.get("/capacity/?window=7d&target=5&format=csv&table=recommendations"))
    lenient = rows(client_in.get("/capacity/?window=7d&target=600&format=csv&table=recommendations"))
    col = strict[0].index("recommended_workers")
    by_group = lambda table: {r[0]: int(r[col]) for r in table[1:]}  # noqa: E731
    assert all(by_group(strict)[g] >= by_group(lenient)[g] for g in by_group(lenient))
    assert any(by_group(strict)[g] > by_group(lenient)[g] for g in by_group(lenient))


def test_it_draws_hour_of_week_heatmaps_of_load_and_queue_delay(client_in, analysed):
    figs = figures(client_in.get("/capacity/?window=7d"))
    for key in ("heat_load", "heat_queue"):
        heat = figs[key]["data"][0]
        assert heat["type"] == "heatmap" and len(heat["z"]) == 7 and all(len(day) == 24 for day in heat["z"])
    assert figs["heat_load"]["data"][0]["colorbar"]["title"]["text"] == "jobs/h"
    assert any(v for day in figs["heat_load"]["data"][0]["z"] for v in day if v)


def test_it_draws_the_trend_with_a_forecast_band_for_the_chosen_group(client_in, analysed):
    group = analysed.groups["hrw-linux-prod"]
    figs = figures(client_in.get(f"/capacity/?window=7d&group={group.pk}"))
    assert "hrw-linux-prod" in figs["trend_cpu"]["layout"]["title"]["text"]
    assert figs["trend_cpu"]["data"][0]["name"] == "observed (daily)"


def test_it_states_the_forecast_method_and_its_uncertainty(client_in, analysed):
    body = text(client_in.get("/capacity/?window=7d"))
    assert "Ordinary least squares" in body and "prediction interval" in body


@pytest.mark.parametrize("query", ["target=0", "target=abc", "target=1e9", "window=2d", "group=x", "table=secrets&format=csv"])
def test_it_answers_400_to_a_bad_capacity_query(client_in, now, query):
    response = client_in.get(f"/capacity/?{query}")
    assert response.status_code == 400
    assert "Bad query" in text(response)


@pytest.mark.parametrize("table", ["groups", "recommendations", "spof", "forecast", "heatmap"])
def test_it_exports_every_capacity_table_as_csv(client_in, analysed, table):
    response = client_in.get(f"/capacity/?window=7d&format=csv&table={table}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="capacity-{table}-7d.csv"' in response["Content-Disposition"]
    assert len(rows(response)) >= 2


def test_it_links_a_csv_export_for_every_capacity_table(client_in, analysed):
    body = text(client_in.get("/capacity/?window=7d"))
    for table in ("groups", "recommendations", "spof", "forecast", "heatmap"):
        assert f"table={table}" in body


def test_it_explains_an_empty_capacity_page(client_in, now):
    body = text(client_in.get("/capacity/"))
    assert "Not computed yet for this window" in body


# --- printable report ---------------------------------------------------------------------------


def test_it_renders_the_printable_review_for_30_days_by_default(client_in, now):
    fleet = build_fleet(now=NOW, hours=24, seed=2, hourly_rollup=True)
    compute_findings("30d", NOW)
    body = text(client_in.get("/capacity/report/"))
    assert "Capacity review: hybrid worker groups, last 30 days" in body
    assert fleet.under_spec in body


def test_it_prints_with_one_button_and_no_inline_handler(client_in, analysed):
    body = text(client_in.get("/capacity/report/?window=7d"))
    assert "Print / Save as PDF" in body and "data-print" in body
    assert "js/capacity-print.js" in body and "css/capacity-print.css" in body
    assert not re.search(r"\son[a-z]+\s*=", body)


def test_its_print_stylesheet_hides_navigation_and_breaks_pages():
    from pathlib import Path

    css = (Path(__file__).resolve().parents[2] / "static" / "css" / "capacity-print.css").read_text()
    media = css.split("@media print", 1)[1]
    assert ".topbar" in media and "display: none" in media
    assert "break-before: page" in media


def test_its_print_button_calls_window_print_from_a_static_file():
    from pathlib import Path

    js = (Path(__file__).resolve().parents[2] / "static" / "js" / "capacity-print.js").read_text()
    assert "window.print()" in js and "addEventListener(\"click\"" in js


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/correlation/", "/capacity/", "/capacity/report/", "/capacity/?format=csv"])
def test_it_sends_anonymous_visitors_to_the_login_page(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_it_refuses_the_capacity_page_to_a_display_token(client, read_token, analysed):
    response = client.get(f"/capacity/?window=7d&token={read_token}")
    assert response.status_code == 403  # a display token opens only the wall and the read API
    assert read_token not in text(response)


# --- query counts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url,expected",
    [("/correlation/?window=24h", 5), ("/capacity/?window=7d", 5), ("/capacity/report/?window=7d", 8)],
)
def test_it_reads_a_fixed_number_of_queries(client_in, analysed, django_assert_num_queries, url, expected):
    client_in.get(url)  # warm the session
    with django_assert_num_queries(expected):
        assert client_in.get(url).status_code == 200


def test_it_says_the_day_window_is_too_short_for_a_trend(client_in, analysed):
    body = text(client_in.get("/capacity/?window=24h"))
    assert "a trend needs full days inside the window" in body
    assert "trend_cpu" not in figures(client_in.get("/capacity/?window=24h"))



def test_its_query_count_does_not_grow_with_the_fleet(client_in, analysed, django_assert_num_queries):
    build_fleet(now=NOW, hours=24, seed=8, layout={f"extra-{i}": 2 for i in range(6)}, under_spec_group="extra-0", hourly_rollup=True)
    compute_findings("7d", NOW)
    client_in.get("/capacity/?window=7d")
    with django_assert_num_queries(5):
        assert client_in.get("/capacity/?window=7d").status_code == 200
    with django_assert_num_queries(5):
        assert client_in.get("/correlation/?window=7d").status_code == 200
