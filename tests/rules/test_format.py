"""workers.rules.format: the one duration formatter (static/js/format.js is its twin)."""
from __future__ import annotations

import pytest

from workers.rules.format import format_duration


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (0.42, "0.4 s"), (4.26, "4.3 s"), (10, "10 s"), (42, "42 s"), (119, "119 s"),
    (120, "2 min"), (210, "3.5 min"), (420, "7 min"), (3599, "60 min"), (3900, "65 min"),
    (7200, "2 h"), (9000, "2.5 h"), (2 * 86400 + 3600, "2 d"), (259200, "3 d"), (1.5 * 86400 * 3, "4.5 d"),
])
def test_it_writes_a_duration_in_one_unit_without_a_trailing_zero(seconds, text):
    assert format_duration(seconds) == text


def test_it_counts_clock_skew_as_zero():
    assert format_duration(-5) == "0 s"


def test_it_writes_the_given_text_for_an_unknown_duration():
    assert format_duration(None) == "–"
    assert format_duration(None, empty="n/a") == "n/a"
