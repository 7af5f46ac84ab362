"""The query text the adapter emits: KQL and OData literals, datetimes, the three KQL queries."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from workers.azure.parse import parse_datetime
from workers.azure.queries import (
    agent_events_query,
    heartbeat_query,
    jobs_filters,
    kql_datetime,
    kql_string,
    odata_datetime,
    odata_string,
    utilization_query,
)

START = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "literal"),
    [
        ("o'brien", '"o\'brien"'),
        ('x" or 1==1 //', '"x\\" or 1==1 //"'),
        ("a|b", '"a|b"'),
        ("where", '"where"'),
        ("back\\slash", '"back\\\\slash"'),
        ("line\nbreak\r\ttab", '"line\\nbreak\\r\\ttab"'),
        ("", '""'),
        ("ünïcödé-名前", '"ünïcödé-名前"'),
    ],
)
def test_it_writes_a_kql_string_literal(name: str, literal: str) -> None:
    assert kql_string(name) == literal


@pytest.mark.parametrize("name", ["bell\x07", "nul\x00", "esc\x1b[0m", "del\x7f", "sep\u2028"])
def test_it_refuses_control_characters_kql_has_no_documented_escape_for(name: str) -> None:
    with pytest.raises(ValueError):
        kql_string(name)


def test_it_skips_an_unrepresentable_computer_name_but_keeps_the_others(caplog: pytest.LogCaptureFixture) -> None:
    query = heartbeat_query(START, END, ["ok-01", "bad\x07"])
    assert query is not None and '| where (Computer in~ ("ok-01") or tostring(split(Computer, \'.\')[0]) in~ ("ok-01"))' in query
    assert "skipping computer name" in caplog.text


def test_it_writes_a_kql_datetime_with_seven_fraction_digits_in_utc() -> None:
    local = datetime(2026, 11, 20, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert kql_datetime(local) == "datetime(2026-11-20T12:00:00.1234560Z)"


def test_it_takes_a_naive_datetime_as_utc() -> None:
    assert kql_datetime(datetime(2026, 11, 20, 12, 0)) == "datetime(2026-11-20T12:00:00.0000000Z)"


def test_it_refuses_text_where_a_datetime_belongs() -> None:
    with pytest.raises(TypeError):
        kql_datetime("2026-11-20) | take 1 //")  # type: ignore[arg-type]


def test_it_doubles_quotes_in_an_odata_literal() -> None:
    assert odata_string("o'brien's") == "'o''brien''s'"


def test_it_writes_an_odata_datetime_in_the_form_az_powershell_sends() -> None:
    assert odata_datetime(datetime(2024, 5, 2, 10, 0, tzinfo=UTC)) == "2024-05-02T10:00:00.0000000+00:00"


def test_it_builds_jobs_filters_without_until_status_or_group() -> None:
    assert jobs_filters(since=START) == [
        "properties/creationTime ge 2026-11-20T11:00:00.0000000+00:00",
        "properties/lastModifiedTime ge 2026-11-20T11:00:00.0000000+00:00",
    ]


def test_it_keeps_an_injection_attempt_inside_the_odata_literal() -> None:
    flt = jobs_filters(since=START, run_on="x' or properties/status eq 'Failed")[0]
    assert flt.endswith("properties/runOn eq 'x'' or properties/status eq ''Failed'")


def test_it_builds_the_heartbeat_query() -> None:
    assert heartbeat_query(START, END, ["o'brien", 'x" or 1==1 //']) == (
        "Heartbeat\n"
        "| where TimeGenerated >= datetime(2026-11-20T11:00:00.0000000Z) and TimeGenerated < datetime(2026-11-20T12:00:00.0000000Z)\n"
        '| where (Computer in~ ("o\'brien", "x\\" or 1==1 //") or tostring(split(Computer, \'.\')[0]) in~ ("o\'brien", "x\\" or 1==1 //"))\n'
        "| summarize arg_max(TimeGenerated, Version, OSType, Category, ComputerIP, _ResourceId) by Computer\n"
        "| project Computer, TimeGenerated, Version, OSType, Category, ComputerIP, _ResourceId"
    )


def test_it_omits_the_computer_clause_when_no_list_is_given() -> None:
    query = heartbeat_query(START, END, None)
    assert query is not None and "Computer in" not in query


def test_it_dedupes_computer_names() -> None:
    query = agent_events_query(START, END, ["a|b", "a|b"])
    assert query is not None and '| where (Computer in~ ("a|b") or tostring(split(Computer, \'.\')[0]) in~ ("a|b"))' in query


def test_it_asks_for_cpu_under_both_windows_objects_and_both_total_spellings() -> None:
    query = utilization_query(START, END)
    assert query is not None
    assert 'ObjectName in ("Processor", "Processor Information")' in query
    assert 'InstanceName in ("_Total", "total")' in query
    assert "bin(TimeGenerated, 1m)" in query


def test_it_asks_for_event_4502_of_the_operations_manager_log() -> None:
    query = agent_events_query(START, END)
    assert query is not None and '| where EventLog == "Operations Manager" and EventID == 4502' in query


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-02T10:14:31.3670000+00:00", datetime(2024, 5, 2, 10, 14, 31, 367000, tzinfo=UTC)),
        ("2024-05-02T10:14:59.1234567Z", datetime(2024, 5, 2, 10, 14, 59, 123456, tzinfo=UTC)),
        ("2024-05-02T12:00:00+02:00", datetime(2024, 5, 2, 10, 0, tzinfo=UTC)),
        ("2024-05-02T10:00:00", datetime(2024, 5, 2, 10, 0, tzinfo=UTC)),
        ("None", None),
        ("", None),
        (None, None),
    ],
)
def test_it_parses_wire_datetimes(text: str | None, expected: datetime | None) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-45T00:00:00Z", "2024-05-02T10:00:00.Z"])
def test_it_rejects_malformed_wire_datetimes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_it_matches_a_computer_by_its_host_name_either_way_as_ingestion_does():
    """An agent may report "hrw01.contoso.com" where Automation lists "HRW01" (or the reverse): the
    filter compares whole names and host parts case-insensitively, like ``_ComputerIndex``."""
    query = heartbeat_query(START, END, ["HRW01", "hrw02.contoso.com"])
    assert query is not None
    assert 'Computer in~ ("HRW01", "hrw02.contoso.com")' in query
    assert "tostring(split(Computer, '.')[0]) in~ (\"HRW01\", \"hrw02\")" in query
