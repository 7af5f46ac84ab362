"""HybridWorkerPing as the third liveness signal: the pure rules (frozen ``now``).

The service is heard when Automation's lastSeen OR the ping is fresh, both judged as of our latest
look at either; the heartbeat stays the agent's signal; the reason says which signal is stale.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workers.rules.diagnosis import diagnoses
from workers.rules.health import worker_status
from workers.rules.pressure import PressureLimits
from workers.rules.signals import AUTOMATION, HEARTBEAT, PING, SIGNALS, Thresholds, service_signal, tolerance

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T = Thresholds(lastseen_late=90, lastseen_offline=180, heartbeat_late=240, heartbeat_offline=300, ping_late=300, ping_offline=420)
LIMITS = PressureLimits(cpu_pct=85, mem_pct=90)


def ago(seconds: float | None) -> datetime | None:
    return None if seconds is None else NOW - timedelta(seconds=seconds)


def judge(seen: float | None, hb: float | None, ping: float | None, *, looked: float | None = None,
          ping_looked: float | None = None, hb_looked: float | None = None, thresholds: Thresholds = T):
    return worker_status(
        now=NOW, last_seen_at=ago(seen), last_heartbeat_at=ago(hb), registered_at=ago(86400), thresholds=thresholds,
        automation_checked_at=ago(looked), heartbeat_checked_at=ago(hb_looked), last_ping_at=ago(ping),
        ping_checked_at=ago(ping_looked),
    )


def test_ping_is_the_third_signal_with_its_own_thresholds():
    assert SIGNALS == (AUTOMATION, HEARTBEAT, PING)
    assert T.limits(PING) == (300, 420) and T.limits(AUTOMATION) == (90, 180) and T.limits(HEARTBEAT) == (240, 300)
    assert tolerance(PING, thresholds=T) == timedelta(seconds=300)
    graced = T.with_grace(200)
    assert (graced.ping_late, graced.ping_offline) == (200, 200)
    with pytest.raises(ValueError):
        Thresholds(ping_late=500, ping_offline=400)


def test_without_a_ping_nothing_changes():
    with_none = judge(100, 30, None)
    assert with_none.status == "late" and with_none.stale_signals == [AUTOMATION]
    assert [s.name for s in with_none.signals] == [AUTOMATION, HEARTBEAT]
    assert "HybridWorkerPing" not in with_none.reason


def test_a_fresh_ping_keeps_the_worker_online_when_lastseen_is_stale_and_says_which_is_stale():
    # The per-group listing runs at inventory pace: lastSeen is 10 min old, the ping 2 min.
    v = judge(600, 30, 120)
    assert v.status == "online"
    assert v.stale_signals == [AUTOMATION] and set(v.fresh_signals) == {HEARTBEAT, PING}
    assert "Automation last seen 10 min ago" in v.reason and "HybridWorkerPing 2 min ago (fresh)" in v.reason


def test_a_lastseen_read_long_ago_does_not_outvote_a_ping_poll_that_no_longer_hears_the_worker():
    # Listing 14 min ago saw lastSeen fresh; our ping poll a minute ago has had no ping for 9 min.
    v = judge(14 * 60 + 10, None, 9 * 60, looked=14 * 60, ping_looked=60)
    assert v.status == "offline"
    assert v.alert_after == ago(9 * 60) + timedelta(seconds=420)
    assert judge(14 * 60 + 10, None, 3 * 60, looked=14 * 60, ping_looked=60).status == "online"


def test_when_the_ping_poll_is_behind_a_fresh_listing_still_judges():
    # Our ping poll failed for 20 min (its last ping is that old); the listing of 20 s ago is fresh.
    v = judge(25, None, 21 * 60, looked=20, ping_looked=20 * 60)
    assert v.status == "online"
    assert "HybridWorkerPing 21 min ago (fresh when last checked; not re-checked: our last ping poll of this account was 20 min ago)" in v.reason


def test_both_service_signals_stale_and_the_heartbeat_fresh_is_late_and_diagnosed():
    v = judge(400, 30, 400)
    assert v.status == "late" and set(v.stale_signals) == {AUTOMATION, PING}
    codes = [d.code for d in diagnoses(verdict=v, now=NOW, pressure=LIMITS, worker_type="HybridV2", os_type="Linux")]
    assert codes[:2] == ["service_stopped", "outbound_blocked"]


def test_a_fresh_ping_rules_out_the_service_and_network_causes():
    v = judge(400, 30, 60)
    codes = [d.code for d in diagnoses(verdict=v, now=NOW, pressure=LIMITS, worker_type="HybridV2", os_type="Linux")]
    assert "service_stopped" not in codes and "outbound_blocked" not in codes


def test_the_worker_is_down_only_when_every_part_is_offline():
    assert judge(200, 400, 300).status == "late"  # the ping is only late: not down
    assert judge(200, 400, 500).status == "offline"


def test_service_signal_is_the_better_of_the_two():
    s = service_signal(now=NOW, last_seen_at=ago(600), last_ping_at=ago(100), thresholds=T)
    assert s.name == PING and s.state == "fresh"
    assert s.offline_at == ago(100) + timedelta(seconds=420)
    only = service_signal(now=NOW, last_seen_at=ago(30), last_ping_at=None, thresholds=T)
    assert only.name == AUTOMATION and only.state == "fresh"
