"""``manage.py doctor`` (issue 13, item 8): the real adapter and SDKs against the HTTPS emulator, in
its lenient and strict job-filter modes, with a missing role (an injected 403 on a route), and the
lastSeenDateTime sampling on the emulator's manual clock. Plus the pure judgments it prints.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from urllib.parse import unquote

import pytest
from django.core.management import CommandError, call_command

from workers.azure.throttle import reset_throttles
from workers.fleet.accounts import add_account_from_connection_file
from workers.fleet.doctor import diagnose
from workers.rules import doctor as rules


@pytest.fixture(autouse=True)
def _fresh_throttles():
    reset_throttles()
    yield
    reset_throttles()


@pytest.fixture
def emu(make_emulator):
    return make_emulator(seed=11, groups=3, workers=8, history_days=3 / 24, page_size=10, scenarios=False)


def _doctor(*args: str) -> tuple[int, str]:
    """Run the command; (exit code, stdout)."""
    out = StringIO()
    try:
        call_command("doctor", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def _line(text: str, name: str) -> str:
    found = [line for line in text.splitlines() if line[8:].startswith(f"{name}:")]
    assert len(found) == 1, text
    return found[0]


def _level(line: str) -> str:
    return line.split(" ", 1)[0]


@pytest.fixture
def on_emulator_clock(emu, time_machine):
    time_machine.move_to(emu.clock.now(), tick=False)
    add_account_from_connection_file(emu.connection_file)
    return emu


# --- the command against the emulator --------------------------------------------------------------


@pytest.mark.django_db
def test_lenient_service_accepts_every_filter_and_nothing_blocks(on_emulator_clock):
    code, text = _doctor("--sample-minutes", "0")
    assert code == 0, text
    assert _level(_line(text, "role Reader")) == rules.OK
    assert "3 groups, 8 workers listed" in _line(text, "role Reader")
    assert _level(_line(text, "role Log Analytics Reader")) == rules.OK
    filters = _line(text, "jobs $filter")
    assert "creationTime ge: accepted, status eq: accepted, lastModifiedTime ge: accepted, runOn eq: accepted" in filters
    assert "status changes by lastModifiedTime" in filters
    assert _level(filters) == rules.OK
    assert _level(_line(text, "lastSeenDateTime cadence")) == rules.SKIP
    assert "workers pinged in the last 15 minutes" in _line(text, "HybridWorkerPing")
    assert "0 blocker(s)" in text


@pytest.mark.django_db
def test_strict_service_refuses_last_modified_and_run_on_and_the_polls_still_work(on_emulator_clock):
    on_emulator_clock.server.set_job_filters("strict")
    code, text = _doctor("--sample-minutes", "0")
    assert code == 0, text
    filters = _line(text, "jobs $filter")
    assert "creationTime ge: accepted, status eq: accepted, lastModifiedTime ge: refused, runOn eq: refused" in filters
    assert "status changes by listing each unfinished status" in filters
    assert _level(filters) == rules.OK


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["lenient", "strict"])
def test_the_changed_jobs_probe_sends_the_filter_the_jobs_poll_sends(on_emulator_clock, mode):
    """The jobs poll asks ``lastModifiedTime ge S and creationTime lt S`` when creationTime filters are
    accepted; a service taking the clause alone but refusing the pair must not pass the doctor."""
    on_emulator_clock.server.set_job_filters(mode)
    _doctor("--sample-minutes", "0")
    probes = [unquote(r["query"]) for r in on_emulator_clock.requests()
              if r["path"].endswith("/jobs") and "lastModifiedTime" in unquote(r["query"])]
    assert probes, "the doctor did not probe the lastModifiedTime filter"
    assert all("properties/creationTime lt " in q for q in probes), probes


@pytest.mark.django_db
def test_job_list_items_lack_exception_and_a_get_carries_it(on_emulator_clock):
    t = on_emulator_clock.clock.now().timestamp()
    newest = sorted((j for j in on_emulator_clock.simulation.jobs if j.created <= t), key=lambda j: -j.created)[:50]
    failed = [j for j in newest if j.status_at(t) in ("Failed", "Suspended", "Stopped")]
    assert any(j.exception and j.status_at(t) != "Stopped" for j in failed)  # the seed's history has some
    _, text = _doctor("--sample-minutes", "0")
    items = _line(text, "job list items")
    assert "50 of 50 listed jobs name their group (runOn)" in items
    assert f"0 of {len(failed)} failed/suspended/stopped list items carry exception" in items
    assert "a GET of one job carries it" in items


@pytest.mark.django_db
def test_a_missing_log_analytics_role_is_a_blocker_with_its_name(on_emulator_clock):
    on_emulator_clock.inject_fault("403", count=50, route="logs")
    code, text = _doctor("--sample-minutes", "0")
    assert code == 1
    line = _line(text, "role Log Analytics Reader")
    assert _level(line) == rules.BLOCKER
    assert f"missing role Log Analytics Reader on the Log Analytics workspace {on_emulator_clock.connection['workspace_id']}" in line
    assert "assign the built-in role 'Log Analytics Reader'" in text
    assert _level(_line(text, "role Reader")) == rules.OK
    assert "1 blocker(s)" in text


@pytest.mark.django_db
def test_a_missing_reader_role_on_the_account_is_a_blocker_in_json_too(on_emulator_clock):
    on_emulator_clock.inject_fault("403", count=50, route="arm")
    code, text = _doctor("--sample-minutes", "0", "--json")
    assert code == 1
    report = json.loads(text)
    assert report["exit_code"] == 1
    by_name = {c["name"]: c for c in report["checks"]}
    reader = by_name["role Reader"]
    assert reader["level"] == rules.BLOCKER
    assert reader["finding"].startswith(f"missing role Reader on the Automation account {report['account']}")
    assert "AuthorizationFailed" in reader["finding"] or "authorization" in reader["finding"]
    assert by_name["jobs $filter"]["level"] == rules.SKIP
    assert by_name["HybridWorkerPing"]["level"] == rules.SKIP
    assert by_name["ARM read budget"]["level"] == rules.SKIP
    assert by_name["role Log Analytics Reader"]["level"] == rules.OK


@pytest.mark.django_db
def test_the_arm_budget_line_reports_what_arm_said_is_left(on_emulator_clock):
    on_emulator_clock.server.configure_arm_throttle(250, 25)
    _, text = _doctor("--sample-minutes", "0")
    line = _line(text, "ARM read budget")
    left = int(line.split(":", 1)[1].split(" reads left")[0])
    assert 200 < left < 250
    assert "3 groups every 30 s" in line


@pytest.mark.django_db
def test_an_unknown_account_or_a_bad_sample_length_is_a_clear_error(on_emulator_clock):
    with pytest.raises(CommandError, match="No such enabled account"):
        call_command("doctor", "--account", "nope", stdout=StringIO())
    with pytest.raises(CommandError, match="--sample-minutes"):
        call_command("doctor", "--sample-minutes", "-1", stdout=StringIO())


# --- sampling lastSeenDateTime on the emulator's clock ----------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("late, offline, level", [(90, 180, rules.OK), (30, 60, rules.WARN)])
def test_sampling_last_seen_recommends_thresholds(emu, settings, late, offline, level):
    settings.LASTSEEN_LATE_SECONDS, settings.LASTSEEN_OFFLINE_SECONDS = late, offline
    settings.POLL_WORKERS_SECONDS = 30
    account = add_account_from_connection_file(emu.connection_file)[0]
    report = diagnose(account, now=emu.clock.now, sample_minutes=2, sleep=lambda s: emu.clock.advance(s))
    cadence = next(c for c in report.checks if c.name == "lastSeenDateTime cadence")
    assert cadence.level == level, cadence
    # The emulator advances lastSeen every 30 s: late 1.5 x 30 + 30 -> 90, offline twice that.
    assert dict(cadence.settings) == {"LASTSEEN_LATE_SECONDS": "90", "LASTSEEN_OFFLINE_SECONDS": "180"}
    assert "typical step 30 s" in cadence.finding


# --- the pure judgments ------------------------------------------------------------------------------


T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_cadence_ignores_workers_that_never_advanced():
    samples = [(T0 + timedelta(seconds=15 * i), {"a": T0 + timedelta(seconds=60 * (i // 4)), "b": T0}) for i in range(9)]
    cadence = rules.lastseen_cadence(samples)
    assert (cadence.workers, cadence.advanced, cadence.typical_step, cadence.max_step) == (2, 1, 60.0, 60.0)
    assert cadence.max_age == 45.0


def test_no_advance_at_all_asks_for_a_longer_sample():
    samples = [(T0 + timedelta(seconds=15 * i), {"a": T0}) for i in range(5)]
    check = rules.recommend_lastseen(rules.lastseen_cadence(samples), minutes=1, poll_workers_seconds=30, late=90, offline=180)
    assert check.level == rules.WARN and "--sample-minutes 10" in check.action


def test_a_slow_cadence_recommends_longer_thresholds():
    cadence = rules.Cadence(workers=5, advanced=5, typical_step=240, max_step=300, max_age=290)
    check = rules.recommend_lastseen(cadence, minutes=10, poll_workers_seconds=30, late=90, offline=180)
    assert check.level == rules.WARN
    assert dict(check.settings) == {"LASTSEEN_LATE_SECONDS": "480", "LASTSEEN_OFFLINE_SECONDS": "960"}


def test_a_403_names_the_role_and_the_scope():
    check = rules.judge_permission(role="Reader", scope="the Automation account aa", status=403, error="HTTP 403", seen="")
    assert check.level == rules.BLOCKER and check.finding.startswith("missing role Reader on the Automation account aa")
    assert rules.exit_code([check]) == 1
    assert rules.exit_code([rules.Check("x", rules.WARN, "w")]) == 0


def test_mma_heartbeats_are_a_warning_and_ama_only_is_ok():
    assert rules.judge_heartbeats({"a": "Azure Monitor Agent", "b": "Direct Agent"}, machines=2).level == rules.WARN
    assert rules.judge_heartbeats({"a": "Azure Monitor Agent"}, machines=1).level == rules.OK
    assert "without a heartbeat" in rules.judge_heartbeats({}, machines=3).finding


def test_refused_created_and_status_filters_warn_but_never_block():
    outcomes = {rules.FILTER_CREATED: rules.REFUSED, rules.FILTER_STATUS: rules.REFUSED,
                rules.FILTER_MODIFIED: rules.IGNORED, rules.FILTER_RUN_ON: rules.REFUSED}
    check = rules.judge_job_filters(outcomes)
    assert check.level == rules.WARN and "unfiltered list" in check.finding and "one GET per unfinished job" in check.finding


def test_an_estate_over_the_read_budget_gets_a_poll_interval():
    check = rules.judge_arm_budget(remaining=240, groups=1000, poll_workers_seconds=30, refill_per_second=25, throttled=0)
    assert check.level == rules.WARN and dict(check.settings) == {"POLL_WORKERS_SECONDS": "50"}
    ok = rules.judge_arm_budget(remaining=240, groups=100, poll_workers_seconds=30, refill_per_second=25, throttled=0)
    assert ok.level == rules.OK


def test_perf_over_the_row_limit_and_no_cpu_data_warn():
    many = rules.judge_volume(rules.Volume(rows=450_000, computers=3000), rules.Volume(rows=None), machines=3000)
    assert many.level == rules.WARN and "slices" in many.finding
    none = rules.judge_volume(rules.Volume(rows=0), rules.Volume(rows=None), machines=4)
    assert none.level == rules.WARN and "pressure diagnoses" in none.finding
    insights = rules.judge_volume(rules.Volume(rows=60, computers=1), rules.Volume(rows=180, computers=3), machines=4)
    assert insights.level == rules.OK


def test_the_report_ends_with_the_settings_and_the_verdict():
    checks = [rules.Check("a", rules.OK, "fine"), rules.Check("b", rules.WARN, "hm", "do x", {"X": "1"})]
    lines = rules.report_lines(checks)
    assert lines == ["OK      a: fine", "WARN    b: hm", "        -> do x", "Recommended settings:", "  X=1",
                     "0 blocker(s), 1 warning(s)."]


# --- the count queries, read by Microsoft's parser -------------------------------------------------


def test_the_count_queries_pass_microsofts_kql_parser_with_hostile_names():
    from tests.azure.test_azure_kql_validator import HOSTILE_NAMES, NODE, PACKAGE, RESOURCE_IDS, validate
    from workers.azure.probes import VOLUME_TABLES, volume_query

    if NODE is None or not PACKAGE.exists():
        pytest.skip("node and `npm ci --prefix tests/kql` are needed for the Kusto.Language validator")
    queries = [volume_query(table, T0 - timedelta(hours=1), T0, machines, resource_ids=ids)
               for table in VOLUME_TABLES for machines, ids in ((None, None), (HOSTILE_NAMES, RESOURCE_IDS))]
    assert all(q is not None for q in queries)
    verdict = validate(queries=queries, literals=[])
    assert verdict["queries"] == [[] for _ in queries]
    with pytest.raises(ValueError):
        volume_query("SecurityEvent", T0 - timedelta(hours=1), T0)
