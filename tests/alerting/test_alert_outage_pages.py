"""Outage facts on the pages: the alerts page dates an outage from the last signal, and a group with
no member online (all late) is down at once on the overview, the group page, the API and the wall,
through the one group-health rule. The clock is frozen (time_machine)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine

from tests.alerting.factories import T0, go, make_fleet, ok_poll, tick
from tests.fixtures.web import build_fleet, record_polls
from workers.models import WorkerStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", password="x" * 12))
    return client


def test_the_alerts_page_counts_an_outage_from_the_last_signal(ops, mailbox):
    account, _, (w1, _, _) = make_fleet()
    ok_poll(account, T0)
    go(w1, "offline", T0 + timedelta(minutes=10), silent_since=T0)
    tick(T0 + timedelta(minutes=10))
    ok_poll(account, T0 + timedelta(minutes=15))
    with time_machine.travel(T0 + timedelta(minutes=15), tick=False):
        body = ops.get("/alerts/").content.decode()
    row = re.search(r"<tr>\s*<td><strong>Worker down</strong>.*?</tr>", body, re.S)
    assert row is not None
    assert re.search(r'<td class="num"[^>]*><span class="dur" title="900 s">15 min</span></td>', row.group(0))


@pytest.fixture
def all_late():
    """Group "dark" (7 members, every one late) and group "calm" (7 online), polled just now; the
    clock stays frozen at T0 for the test."""
    with time_machine.travel(T0, tick=False):
        fleet = build_fleet(groups=2, workers_per_group=7, now=T0, group_names=["dark", "calm"])
        dark = fleet.groups[0]
        dark.workers.update(status=WorkerStatus.LATE)
        record_polls(fleet.account, at=T0 - timedelta(seconds=10))
        yield dark


def test_a_group_with_every_member_late_is_down_in_the_api(ops, all_late):
    groups = {g["name"]: g for g in ops.get("/api/v1/groups").json()["groups"]}
    assert groups["dark"]["health"] == "down"
    assert (groups["dark"]["workers_online"], groups["dark"]["workers_late"]) == (0, 7)
    assert groups["calm"]["health"] == "healthy"
    assert [g["name"] for g in ops.get("/api/v1/groups").json()["groups"]] == ["dark", "calm"]


def test_a_group_with_every_member_late_is_down_on_the_overview(ops, all_late):
    body = ops.get("/").content.decode()
    row = re.search(r"<tr[^>]*><th scope=\"row\"><a href=\"[^\"]*\">dark</a>.*?</tr>", body, re.S)
    assert row is not None
    assert '<span class="badge health-down">Down</span>' in row.group(0)
    assert "0 / 7" in row.group(0)


def test_a_group_with_every_member_late_says_why_on_its_page(ops, all_late):
    body = ops.get(f"/groups/{all_late.pk}/").content.decode()
    assert '<span class="badge health-down">Down</span> <span class="muted">no member online (7 late)</span>' in body


def test_a_group_with_every_member_late_is_a_down_tile_on_the_wall(ops, all_late):
    html = ops.get("/wall/").content.decode()
    tile = re.search(rf'<article class="tile health-down" data-group-id="{all_late.pk}".*?</article>', html, re.S)
    assert tile is not None
    assert '<span class="tile-health">DOWN</span>' in tile.group(0)
    feed = ops.get("/api/v1/wall").json()
    assert feed["totals"]["groups_by_health"]["down"] == 1
