"""workers.rules.findings: when pressure explains delay, and when it does not."""
from __future__ import annotations

import numpy as np

from workers.rules import findings

# A finding's rules at the shipped default CPU limit (CAPACITY_CPU_PRESSURE_PCT).
RULES = findings.FindingRules(pressure_threshold=85.0)


def _rng(seed: int = 3) -> np.random.Generator:
    return np.random.default_rng(seed)


def _pressured_series(seed: int, *, pressured: bool, n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(seed)
    if pressured:
        x = np.clip(rng.normal(80, 12, n), 0, 100)
        y = 20 + np.where(x > 85, (x - 85) * 30, 0) + rng.exponential(5, n)
    else:
        x = np.clip(rng.normal(35, 6, n), 0, 100)
        y = 20 + 0.6 * x + rng.exponential(5, n)  # associated, but never pressured
    return x, y


def test_it_flags_a_pair_with_significance_effect_and_pressure():
    x, y = _pressured_series(1, pressured=True)
    a = findings.assess_pair(list(x), list(y), rules=RULES)
    assert a.flagged, a.reasons
    assert a.ratio is not None and a.ratio > 1.5
    assert a.score > 0


def test_it_does_not_flag_a_correlated_pair_without_pressure():
    x, y = _pressured_series(2, pressured=False)
    a = findings.assess_pair(list(x), list(y), rules=RULES)
    assert a.correlation is not None and a.correlation.spearman_p < 0.001  # significant ...
    assert not a.flagged  # ... but the machine never reaches the threshold
    assert any("no real pressure" in r for r in a.reasons)


def test_it_does_not_flag_pressure_without_an_effect():
    rng = _rng(4)
    x = np.clip(rng.normal(85, 8, 96), 0, 100)
    y = 30 + rng.exponential(5, 96)
    a = findings.assess_pair(list(x), list(y), rules=RULES)
    assert not a.flagged


def test_it_does_not_flag_too_few_pairs():
    x, y = _pressured_series(1, pressured=True, n=12)
    a = findings.assess_pair(list(x), list(y), rules=RULES)
    assert not a.flagged
    assert any("pairs" in r for r in a.reasons)


def test_it_states_the_effect_in_plain_words():
    text = findings.effect_sentence(metric_label="CPU", target_label="queue delay", threshold=85, ratio=4.12)
    assert text == "when CPU > 85 % queue delay p95 is 4.1x higher"


def test_it_flags_a_diluted_effect_with_a_weak_correlation():
    # One member in eight is pressured: only its jobs (1 in 8) are delayed, so rho is small.
    rng = _rng(12)
    n = 600
    x = np.clip(rng.normal(80, 8, n), 0, 100)
    picked = rng.random(n) < 1 / 8
    y = rng.uniform(1, 30, n) + np.where(picked & (x > 85), (x - 85) * 40, 0)
    a = findings.assess_pair(list(x), list(y), rules=RULES)
    assert a.correlation is not None and a.correlation.spearman < 0.3
    assert a.flagged, a.reasons
    assert a.effect_p is not None and a.effect_p < 0.01
