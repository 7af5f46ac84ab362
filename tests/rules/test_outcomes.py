"""workers.rules.outcomes: Azure's open set of job statuses in outcome buckets."""
from __future__ import annotations

import pytest

from workers.rules import outcomes


@pytest.mark.parametrize("status,expected", [
    ("Completed", "completed"), ("failed", "failed"), ("Stopped", "stopped"), ("Suspended", "suspended"),
    ("Running", "other"), ("Queued", "other"), ("Some new status", "other"), ("", "other"),
])
def test_it_maps_open_set_statuses_to_outcomes(status, expected):
    assert outcomes.outcome(status) == expected


def test_it_recognises_the_not_available_failure_text():
    text = "Failed to start, as hybrid worker wasn't available when scheduled job started"
    assert outcomes.is_not_available_failure("Failed", text)
    assert not outcomes.is_not_available_failure("Completed", text)
    assert not outcomes.is_not_available_failure("Failed", "Access denied")


def test_it_gives_a_zero_count_for_every_outcome_in_order():
    assert outcomes.empty_outcomes() == {"completed": 0, "failed": 0, "stopped": 0, "suspended": 0, "other": 0}


def test_it_calls_the_four_final_statuses_terminal():
    assert all(outcomes.is_terminal(s) for s in outcomes.TERMINAL_STATUSES)
    assert not outcomes.is_terminal("Running")
