"""Pure parsers and formatters of the emulator: jobs $filter, Log Analytics timespan, cell formats."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from workers.emulator.server.kql import QueryError, format_datetime, format_timespan, parse_timespan
from workers.emulator.server.odata import Clause, FilterError, parse_job_filter

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_it_parses_the_dotnet_round_trip_datetime_form():
    (clause,) = parse_job_filter("properties/creationTime ge 2024-05-02T10:00:00.1234567+00:00")
    assert clause == Clause("creationTime", "ge", datetime(2024, 5, 2, 10, 0, 0, 123456, tzinfo=UTC))


def test_it_keeps_a_non_utc_offset():
    (clause,) = parse_job_filter("properties/lastModifiedTime lt 2024-05-02T12:00:00+02:00")
    assert clause.value == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    assert clause.value.utcoffset() == timedelta(hours=2)


def test_it_accepts_the_datetime_literal_form():
    (clause,) = parse_job_filter("properties/startTime gt datetime'2024-05-02T10:00:00Z'")
    assert clause.value == datetime(2024, 5, 2, 10, tzinfo=UTC)


def test_it_joins_clauses_with_and():
    clauses = parse_job_filter("properties/creationTime ge 2024-05-02T10:00:00Z and properties/status eq 'Failed' "
                               "AND properties/runOn eq 'hrw-linux'")
    assert [(c.field, c.op) for c in clauses] == [("creationTime", "ge"), ("status", "eq"), ("runOn", "eq")]


def test_it_reads_a_doubled_quote_as_one_quote():
    (clause,) = parse_job_filter("properties/runOn eq 'o''brien'")
    assert clause.value == "o'brien"


def test_it_reads_keywords_and_pipes_inside_strings_as_text():
    (clause,) = parse_job_filter("properties/runbook/name ne 'a and b | c'")
    assert clause == Clause("runbook", "ne", "a and b | c")


def test_an_empty_filter_is_no_filter():
    assert parse_job_filter("  ") == []


@pytest.mark.parametrize("text", [
    "properties/status eq Failed",
    "properties/status eq 'Failed' or properties/status eq 'Stopped'",
    "properties/status eq 'unterminated",
    "properties/creationTime ge 2024-05-02",
    "properties/creationTime ne 2024-05-02T10:00:00Z",
    "properties/status lt 'b'",
    "properties/jobId eq 'x'",
    "properties/status eq 'a' and",
    "properties/status eq 'a' trailing",
    "__import__('os').system('x')",
    "properties/creationTime ge 2024-13-45T10:00:00Z",
])
def test_it_refuses_what_is_not_in_the_grammar(text):
    with pytest.raises(FilterError):
        parse_job_filter(text)


def test_a_duration_timespan_ends_now():
    assert parse_timespan("PT3600.0S", NOW) == (NOW - timedelta(hours=1), NOW)


def test_a_day_duration_is_understood():
    assert parse_timespan("P1D", NOW) == (NOW - timedelta(days=1), NOW)


def test_a_start_end_timespan():
    start, end = parse_timespan("2026-11-20T09:15:00.000Z/2026-11-20T10:15:00.000Z", NOW)
    assert (start, end) == (datetime(2026, 11, 20, 9, 15, tzinfo=UTC), datetime(2026, 11, 20, 10, 15, tzinfo=UTC))


def test_a_start_duration_timespan():
    start, end = parse_timespan("2026-11-20T10:15:00.000Z/PT1800.0S", NOW)
    assert end - start == timedelta(minutes=30)


def test_a_null_timespan_is_no_window():
    assert parse_timespan(None, NOW) == (None, None)


@pytest.mark.parametrize("value", ["yesterday", "PT", "2026-11-20T10:00:00Z", "P1X", 3600,
                                   "2026-11-20T10:00:00Z/2026-11-20T09:00:00Z"])
def test_a_bad_timespan_is_a_query_error(value):
    with pytest.raises(QueryError) as info:
        parse_timespan(value, NOW)
    assert info.value.body()["error"]["code"] == "BadArgumentError"


def test_datetimes_are_formatted_with_seven_digits_and_z():
    assert format_datetime(datetime(2026, 11, 20, 10, 14, 59, 123456)) == "2026-11-20T10:14:59.1234560Z"
    assert format_datetime(datetime(2026, 11, 20, 11, 0, tzinfo=timezone(timedelta(hours=1)))) == \
        "2026-11-20T10:00:00.0000000Z"


def test_timespans_are_formatted_like_kusto():
    assert format_timespan(timedelta(seconds=57, microseconds=600000)) == "00:00:57.6000000"
    assert format_timespan(timedelta(days=2, hours=3)) == "2.03:00:00.0000000"
    assert format_timespan(-timedelta(minutes=1)) == "-00:01:00.0000000"
