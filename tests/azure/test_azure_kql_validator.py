"""Every KQL string the adapter can emit, checked by Microsoft's own parser (Kusto.Language).

The emulator's engine (duckdb-kql) accepts some text real Log Analytics rejects (wrong-case table
or column names); Kusto.Language with the real table schemas does not. Install once with
``npm ci --prefix tests/kql`` (Node >= 10); without node or the package these tests skip.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from workers.azure.queries import (
    agent_events_query,
    heartbeat_query,
    insights_utilization_hourly_query,
    insights_utilization_query,
    kql_string,
    utilization_hourly_query,
    utilization_query,
)

KQL_DIR = Path(__file__).resolve().parents[1] / "kql"
PACKAGE = KQL_DIR / "node_modules" / "@kusto" / "language-service-next" / "Kusto.Language.Bridge.min.js"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (needed for the Kusto.Language validator)"),
    pytest.mark.skipif(not PACKAGE.exists(), reason="run `npm ci --prefix tests/kql` to install @kusto/language-service-next"),
]

START = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HOSTILE_NAMES = ["o'brien", 'x" or 1==1 //', "a|b", "where", "back\\slash", "line\nbreak", "cr\rtab\t", "hrw-win-01", "名前"]
BUILDERS = [heartbeat_query, utilization_query, utilization_hourly_query, agent_events_query, insights_utilization_query,
            insights_utilization_hourly_query]
RESOURCE_IDS = ["/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/hrw-win-01", *HOSTILE_NAMES]


def validate(*, queries: list[str], literals: list[str]) -> dict[str, Any]:
    completed = subprocess.run(
        [str(NODE), str(KQL_DIR / "validate.js")],
        input=json.dumps({"queries": list(queries), "literals": list(literals)}),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(completed.stdout)


def every_query() -> list[str]:
    out = []
    for build in BUILDERS:
        for computers in (None, ["hrw-win-01"], HOSTILE_NAMES):
            query = build(START, END, computers)
            assert query is not None
            out.append(query)
        for computers in ([], HOSTILE_NAMES):  # by _ResourceId, alone and with names
            query = build(START, END, computers, resource_ids=RESOURCE_IDS)
            assert query is not None and "_ResourceId in~ (" in query
            out.append(query)
    return out


NEGATIVE_CONTROLS = ["heartbeat | count", 'Perf | where computer == "x"']


@pytest.fixture(scope="module")
def verdict() -> dict[str, Any]:
    """One node run for the whole module (starting Kusto.Language takes seconds on this machine)."""
    queries = every_query()
    result = validate(queries=queries + NEGATIVE_CONTROLS, literals=[kql_string(name) for name in HOSTILE_NAMES])
    result["checked"] = queries + NEGATIVE_CONTROLS
    return result


def diagnostics_of(verdict: dict[str, Any], query: str) -> list[dict[str, Any]]:
    return verdict["queries"][verdict["checked"].index(query)]


def test_it_emits_only_kql_that_microsofts_parser_accepts_against_the_real_schemas(verdict: dict[str, Any]) -> None:
    problems = {q: diagnostics_of(verdict, q) for q in every_query() if diagnostics_of(verdict, q)}
    assert problems == {}


def test_it_writes_literals_that_microsofts_parser_reads_back_unchanged(verdict: dict[str, Any]) -> None:
    assert verdict["literals"] == HOSTILE_NAMES


def test_the_validator_reports_a_wrong_case_table_name(verdict: dict[str, Any]) -> None:
    assert [d["code"] for d in diagnostics_of(verdict, "heartbeat | count")] == ["KS204"]


def test_the_validator_reports_a_wrong_case_column_name(verdict: dict[str, Any]) -> None:
    assert [d["code"] for d in diagnostics_of(verdict, 'Perf | where computer == "x"')] == ["KS142"]
