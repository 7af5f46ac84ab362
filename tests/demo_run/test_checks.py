"""The demo run's pure judgement (tests/demo_run/checks.py): emails rendered from the real templates
are parsed and matched to scenarios; fast, no services."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.template.loader import render_to_string

from tests.demo_run import checks
from workers.rules.diagnosis import DIAGNOSIS_CODES

T0 = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)  # the run starts (URL printed)
SERVICE = {"title": "Hybrid Worker service stopped", "detail": "d.", "fix": "f."}
OUTBOUND = {"title": "Outbound 443 to Azure Automation blocked", "detail": "d.", "fix": "f."}
DOWN_CAUSE = {"title": "Machine or Hybrid Worker service down", "detail": "d.", "fix": "f."}
TITLES = checks.diagnosis_titles()


def _row(name: str, down_at: datetime, cause: dict[str, str] | None, others: list[dict[str, str]] = ()) -> dict[str, Any]:
    snapshot = {"status": "offline", "url": f"http://x/workers/{name}/", "signals": [], "cause": cause,
                "other_causes": list(others), "worker_type": "HybridV2", "os_type": "Windows"}
    return {"name": name, "down_at": down_at, "recovered_at": None, "outage": "5 min", "snapshot": snapshot}


def down_email(rows: list[dict[str, Any]], *, at: datetime, subject: str | None = None) -> checks.Email:
    """A DOWN email as workers/alerting/content.render_down builds it, from the real templates."""
    advice = [{"cause": c, "probable": i == 0, "applies_to": "all"}
              for i, c in enumerate([rows[0]["snapshot"]["cause"], *rows[0]["snapshot"]["other_causes"]])]
    text = render_to_string("emails/down.txt", {"rows": rows, "down": rows, "group": None, "reminder": False, "site": None,
                                                "advice": advice if len(rows) > 1 else [], "alerts_url": "http://x/alerts/"})
    who = rows[0]["name"] if len(rows) == 1 else f"{len(rows)} workers"
    return checks.Email(at.timestamp(), subject or f"DOWN {who} (no group) — {rows[0]['snapshot']['cause']['title']}", text)


def scenario(kind: str, workers: list[str], start: datetime, minutes: float = 30, sid: int = 1) -> checks.Scenario:
    return checks.Scenario(sid, kind, workers[0], workers, start, start + timedelta(minutes=minutes), "scheduled")


def judge(scenarios: list[checks.Scenario], emails: list[checks.Email], minutes: float = 30) -> checks.Judgement:
    return checks.judge(scenarios, emails, run_start=T0, run_end=T0 + timedelta(minutes=minutes),
                        detection=timedelta(minutes=10), tolerance=timedelta(seconds=30), titles=TITLES)


def test_every_expected_cause_is_a_diagnosis_code_with_a_title():
    assert set(TITLES) == set(DIAGNOSIS_CODES)
    assert all(TITLES[code] for code in DIAGNOSIS_CODES)
    for codes in checks.EXPECTED_CAUSES.values():
        assert set(codes) <= set(DIAGNOSIS_CODES)


def test_a_single_worker_down_email_is_parsed_from_the_real_template():
    start = T0 + timedelta(minutes=16, seconds=2)
    mail = down_email([_row("hrw-lin-30", start, SERVICE, [OUTBOUND])], at=start + timedelta(minutes=6))
    page = checks.parse_email(mail)
    assert (page.kind, page.workers, page.starts) == ("down", ["hrw-lin-30"], {"hrw-lin-30": start})
    assert checks.named_causes(page, TITLES) == [("service_stopped", True), ("outbound_blocked", False)]


def test_a_members_email_lists_every_worker_with_its_last_signal():
    start = T0 + timedelta(minutes=16)
    rows = [_row("hrw-win-30", start, DOWN_CAUSE), _row("hrw-win-31", start + timedelta(seconds=20), DOWN_CAUSE)]
    page = checks.parse_email(down_email(rows, at=start + timedelta(minutes=6)))
    assert page.workers == ["hrw-win-30", "hrw-win-31"]
    assert page.starts["hrw-win-31"] == start + timedelta(seconds=20)
    assert checks.named_causes(page, TITLES) == [("agent_stopped", True)]


@pytest.mark.parametrize(("subject", "kind"), [
    ("STILL DOWN a for 4 h (no group) — x", "reminder"), ("RECOVERED a after 5 min", "recovered"),
    ("RECOVERED a from CPU/memory pressure after 1 h", "pressure_recovered"), ("BLIND monitoring of A — t", "blind"),
    ("FLAPPING a: 6 status changes in 30 min — held", "flapping"), ("PRESSURE a — CPU 97 % for 15 min: slow", "pressure"),
])
def test_subjects_are_classified(subject, kind):
    assert checks.classify(subject) == kind


def test_one_page_with_the_cause_and_start_passes():
    start = T0 + timedelta(minutes=16)
    mail = down_email([_row("hrw-lin-30", start - timedelta(seconds=12), SERVICE, [OUTBOUND])], at=start + timedelta(minutes=7))
    result = judge([scenario("outbound_blocked", ["hrw-lin-30"], start)], [mail])
    (verdict,) = result.judged
    assert verdict.ok and verdict.once and verdict.cause_ok
    assert not verdict.cause_primary  # named as "Also possible" behind the service-stopped reading
    assert verdict.start_delta_seconds == -12
    assert result.ok


def test_two_pages_a_wrong_cause_or_a_late_start_fail():
    start = T0 + timedelta(minutes=16)
    s = scenario("outbound_blocked", ["hrw-lin-30"], start)
    right = down_email([_row("hrw-lin-30", start, SERVICE, [OUTBOUND])], at=start + timedelta(minutes=7))
    assert not judge([s], [right, right]).judged[0].once
    wrong = down_email([_row("hrw-lin-30", start, DOWN_CAUSE)], at=start + timedelta(minutes=7))
    assert not judge([s], [wrong]).judged[0].cause_ok
    late = down_email([_row("hrw-lin-30", start + timedelta(minutes=2), SERVICE, [OUTBOUND])], at=start + timedelta(minutes=7))
    verdict = judge([s], [late]).judged[0]
    assert (verdict.start_ok, verdict.start_delta_seconds) == (False, 120)
    missed = judge([s], [])
    assert not missed.judged[0].once and not missed.ok


def test_pages_outside_the_scenarios_and_blind_emails_are_counted():
    history = scenario("agent_stopped", ["hrw-win-09"], T0 - timedelta(hours=3), minutes=45, sid=2)
    ongoing = scenario("under_spec", ["hrw-win-04"], T0 - timedelta(days=15), minutes=60 * 24 * 3650, sid=3)
    old = down_email([_row("hrw-win-09", T0 - timedelta(hours=3), DOWN_CAUSE)], at=T0 + timedelta(minutes=2))
    stray = down_email([_row("hrw-lin-01", T0, DOWN_CAUSE)], at=T0 + timedelta(minutes=3))
    # The subject exactly as workers.alerting.content.render_pressure writes it.
    pressure = checks.Email((T0 + timedelta(minutes=4)).timestamp(),
                            "PRESSURE hrw-win-04 (group hrw-win-prod) — CPU 96 % for 15 min: jobs are being delayed", "")
    blind = checks.Email((T0 + timedelta(minutes=5)).timestamp(), "BLIND monitoring of Demo — no poll; worker alerts held", "")
    result = judge([history, ongoing], [old, stray, pressure, blind])
    assert len(result.false_pages) == 2 and "historical" in result.false_pages[0]
    assert result.ongoing_pages == [pressure.subject]
    assert result.blind == [blind.subject]
    assert not result.ok
    assert [e["reason"] for e in result.excluded] == ["began before the run (ongoing)", "ended before the run (history)"]


def test_a_scenario_beginning_within_the_detection_delay_of_the_end_is_excluded():
    s = scenario("outbound_blocked", ["hrw-lin-30"], T0 + timedelta(minutes=25))
    result = judge([s], [])
    assert result.judged == []
    assert "detection delay" in result.excluded[0]["reason"]


def test_the_figures_use_the_bullets_thresholds():
    ok = checks.figures_verdict(latency_total=2014, overview_jobs=2000, jobs_h_7d=116.0, jobs_h_30d=105.0,
                                first_finding_worker="hrw-win-04", under_spec=["hrw-win-04"])
    assert ok["latency_ok"] and ok["capacity_ok"] and ok["correlations_ok"]
    bad = checks.figures_verdict(latency_total=2200, overview_jobs=2000, jobs_h_7d=116.0, jobs_h_30d=54.0,
                                 first_finding_worker="hrw-lin-01", under_spec=["hrw-win-04"])
    assert not (bad["latency_ok"] or bad["capacity_ok"] or bad["correlations_ok"])
    assert checks.overview_total([{"jobs_24h_completed": "3", "jobs_24h_failed": "1", "jobs_24h_stopped": "0",
                                   "jobs_24h_suspended": "0", "jobs_24h_other": "2"}]) == 6
