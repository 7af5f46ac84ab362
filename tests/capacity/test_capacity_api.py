"""GET /api/v1/correlations: shape, ranking, 400s and auth."""
from __future__ import annotations

import pytest

from tests.capacity.data import build_analysed_fleet
from tests.fixtures.web import NOW

pytestmark = pytest.mark.django_db

REQUIRED = {"group", "worker", "metric", "target", "pearson", "spearman", "n", "p_value"}


@pytest.fixture
def analysed(now):
    return build_analysed_fleet(now=NOW, hours=30)


def test_it_returns_ranked_findings_with_the_documented_fields(client_in, analysed):
    response = client_in.get("/api/v1/correlations?window=24h")
    assert response.status_code == 200
    body = response.json()
    assert body["window"] == "24h"
    assert body["computed_at"] == "2026-11-20T12:00:00Z"
    findings = body["findings"]
    assert findings and all(REQUIRED <= set(f) for f in findings)
    assert [f["rank"] for f in findings] == sorted(f["rank"] for f in findings)
    assert findings[0]["worker"] == analysed.under_spec
    assert all(f["flagged"] for f in findings)


def test_it_gives_null_worker_for_a_group_level_finding(client_in, analysed):
    findings = client_in.get("/api/v1/correlations?window=24h").json()["findings"]
    group_level = [f for f in findings if f["worker"] is None]
    assert group_level and all(f["group"] == "hrw-win-prod" for f in group_level)


def test_it_defaults_to_seven_days(client_in, analysed):
    assert client_in.get("/api/v1/correlations").json()["window"] == "7d"


def test_it_includes_examined_pairs_when_asked(client_in, analysed):
    flagged = client_in.get("/api/v1/correlations?window=24h").json()["findings"]
    everything = client_in.get("/api/v1/correlations?window=24h&all=1").json()["findings"]
    assert len(everything) > len(flagged)
    assert any(not f["flagged"] for f in everything)


def test_it_answers_an_empty_list_before_the_first_run(client_in, now):
    body = client_in.get("/api/v1/correlations?window=30d").json()
    assert body == {**body, "window": "30d", "computed_at": None, "findings": []}


@pytest.mark.parametrize("query", ["window=1y", "window=7days", "all=yes", "group=x"])
def test_it_answers_400_json_to_bad_parameters(client_in, now, query):
    response = client_in.get(f"/api/v1/correlations?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def test_it_refuses_anonymous_callers_with_json_401(client, db):
    response = client.get("/api/v1/correlations?window=7d")
    assert response.status_code == 401
    assert response.json()["error"]


def test_it_accepts_a_bearer_token(client, read_token, analysed):
    response = client.get("/api/v1/correlations?window=24h", HTTP_AUTHORIZATION=f"Bearer {read_token}")
    assert response.status_code == 200
    assert response.json()["findings"]


def test_it_reads_a_fixed_number_of_queries(client, read_token, analysed, django_assert_num_queries):
    client.get("/api/v1/correlations?window=24h", HTTP_AUTHORIZATION=f"Bearer {read_token}")  # records last use
    # token lookup + latest run + findings, however many groups and findings there are
    with django_assert_num_queries(3):
        client.get("/api/v1/correlations?window=24h", HTTP_AUTHORIZATION=f"Bearer {read_token}")
