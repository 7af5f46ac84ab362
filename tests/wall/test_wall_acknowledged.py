"""The wall marks acknowledged alerts: per tile and in the totals, counted in the same query as the
open alerts (the snapshot's query count is pinned in test_wall_selector)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.browser.fleet import build_fleet
from workers.models import Alert, AlertState
from workers.wall.selectors import wall_snapshot

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def _alert(group, *, acknowledged: bool, state: str = AlertState.OPEN) -> Alert:
    return Alert.objects.create(kind="worker_down", group=group, account=group.account, state=state, title="down",
                                opened_at=NOW - timedelta(minutes=5), acknowledged_at=NOW - timedelta(minutes=1) if acknowledged else None)


def test_it_counts_acknowledged_open_alerts_per_tile_and_in_total():
    fleet = build_fleet(now=NOW, groups=3, workers_per_group=2, group_names=["all-acked", "half-acked", "none-acked"])
    acked, half, none = fleet.groups
    _alert(acked, acknowledged=True)
    _alert(half, acknowledged=True)
    _alert(half, acknowledged=False)
    _alert(none, acknowledged=False)
    _alert(none, acknowledged=True, state=AlertState.RESOLVED)  # resolved: counts nowhere

    snapshot = wall_snapshot(now=NOW)

    tiles = {t.group.name: t for t in snapshot.tiles}
    assert {n: (t.open_alerts, t.acknowledged_alerts) for n, t in tiles.items()} == {
        "all-acked": (1, 1), "half-acked": (2, 1), "none-acked": (1, 0),
    }
    assert (snapshot.totals.open_alerts, snapshot.totals.acknowledged_alerts) == (4, 2)


def test_the_small_print_says_which_alerts_are_acknowledged():
    fleet = build_fleet(now=NOW, groups=3, workers_per_group=2, group_names=["all-acked", "half-acked", "none-acked"])
    acked, half, none = fleet.groups
    _alert(acked, acknowledged=True)
    _alert(half, acknowledged=True)
    _alert(half, acknowledged=False)
    _alert(none, acknowledged=False)

    details = {t.group.name: t.detail for t in wall_snapshot(now=NOW).tiles}

    assert details == {"all-acked": "1 open alert, acknowledged", "half-acked": "2 open alerts (1 acknowledged)", "none-acked": "1 open alert"}


def test_the_feed_and_the_first_paint_carry_the_acknowledged_count(client, django_user_model):
    fleet = build_fleet(now=NOW, groups=1, workers_per_group=2)
    _alert(fleet.groups[0], acknowledged=True)
    client.force_login(django_user_model.objects.create_user("viewer", password="pw-not-secret-123"))

    feed = client.get("/api/v1/wall").json()
    page = client.get("/wall/").content.decode()

    assert (feed["totals"]["acknowledged_alerts"], feed["groups"][0]["acknowledged_alerts"]) == (1, 1)
    assert "open alerts · 1 acknowledged" in page and "1 open alert, acknowledged" in page
