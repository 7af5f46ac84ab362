"""The one group-health rule: a group with members and none online is down at once (even when they
are only late), and when most of a group going dark together reads as a possible site outage."""
from __future__ import annotations

import pytest

from workers.rules.health import (
    GROUP_HEALTH_RANK,
    GroupSummary,
    health_from_counts,
    possible_site_outage,
    summarize_group,
)


def test_a_group_whose_every_member_is_late_is_down():
    assert summarize_group(["late"] * 7).health == "down"


def test_a_group_with_no_member_online_is_down_whatever_the_others_are():
    assert summarize_group(["late", "offline", "never"]).health == "down"


def test_one_online_member_makes_it_degraded_not_down():
    assert summarize_group(["online"] + ["late"] * 6).health == "degraded"


@pytest.mark.parametrize(
    ("total", "online", "health"),
    [(0, 0, "empty"), (3, 3, "healthy"), (3, 1, "degraded"), (3, 0, "down")],
)
def test_health_follows_the_online_count(total, online, health):
    assert health_from_counts(total=total, online=online) == health


def test_an_all_late_group_sorts_with_the_down_groups():
    late = GroupSummary(total=7, online=0, late=7)
    assert GROUP_HEALTH_RANK[late.health] == GROUP_HEALTH_RANK["down"] == 0


def test_a_down_group_says_why():
    assert GroupSummary(total=7, online=0, late=7).down_note == "no member online (7 late)"
    assert GroupSummary(total=2, online=0, offline=2).down_note == "no member online"
    assert GroupSummary(total=2, online=1, late=1).down_note == ""


@pytest.mark.parametrize(
    ("down", "total", "share", "expected"),
    [
        (6, 7, 0.8, True),  # 6/7 = 86 %
        (7, 7, 0.8, True),
        (5, 7, 0.8, False),  # 71 %
        (2, 2, 0.8, True),
        (1, 1, 0.8, False),  # one worker is never a site
        (1, 2, 0.5, False),  # at least 2
        (7, 10, 0.7, True),  # 0.7 x 10 is not quite 7 in floating point
        (2, 0, 0.8, False),
    ],
)
def test_a_site_outage_needs_the_share_and_at_least_two(down, total, share, expected):
    assert possible_site_outage(down_together=down, total=total, share=share) is expected
