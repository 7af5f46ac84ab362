"""Every KQL string the adapter can emit, checked by Microsoft's own parser (Kusto.Language).

The emulator's engine (duckdb-kql) accepts some text real Log Analytics rejects (wrong-case table
or column names); Kusto.Language with the real table schemas does not. Install once with
``npm ci --prefix tests/kql`` (Node >= 10); without node or the package these tests skip.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from workers.azure import agent_events_query, heartbeat_query, kql_string, utilization_query

KQL_DIR = Path(__file__).resolve().parents[1] / "kql"
PACKAGE = KQL_DIR / "node_modules" / "@kusto" / "language-service-next" / "Kusto.Language.Bridge.min.js"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (needed for the Kusto.Language validator)"),
    pytest.mark.skipif(not PACKAGE.exists(), reason="run `npm ci --prefix tests/kql` to install @kusto/language-service-next"),
]

START = datetime(2026, 11, 20, 11, 0, tzinfo=timezone.utc)
END = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
HOSTILE_NAMES = ["o'brien", 'x" or 1==1 //', "a|b", "where", "back\\slash", "line\nbreak", "cr\rtab\t", "hrw-win-01", "名前"]
BUILDERS = [heartbeat_query, utilization_query, agent_events_query]


def validate(*, queries: list[str] = (), literals: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
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
    return out


def test_it_emits_only_kql_that_microsofts_parser_accepts_against_the_real_schemas() -> None:
    queries = every_query()
    diagnostics = validate(queries=queries)["queries"]
    problems = {q: d for q, d in zip(queries, diagnostics) if d}
    assert problems == {}


def test_it_writes_literals_that_microsofts_parser_reads_back_unchanged() -> None:
    decoded = validate(literals=[kql_string(name) for name in HOSTILE_NAMES])["literals"]
    assert decoded == HOSTILE_NAMES


def test_the_validator_reports_a_wrong_case_table_name() -> None:
    (diagnostics,) = validate(queries=["heartbeat | count"])["queries"]
    assert [d["code"] for d in diagnostics] == ["KS204"]


def test_the_validator_reports_a_wrong_case_column_name() -> None:
    (diagnostics,) = validate(queries=['Perf | where computer == "x"'])["queries"]
    assert [d["code"] for d in diagnostics] == ["KS142"]
