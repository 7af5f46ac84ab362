"""Pure rules for capacity findings: "where CPU or memory pressure explains job delay".

A (metric, target) pair is only *flagged* when all hold: a positive association, real pressure (the
metric's p95 is above the pressure limit, ``PressureLimits`` from settings), an effect (the target's
p95 under pressure is several times its p95 otherwise) and significance of that effect (a
permutation test). Correlation alone would flag healthy workers whose CPU merely follows the daily
cycle, and would miss a pressured machine whose effect is diluted by its peers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from workers.rules.stats import (
    Correlation,
    LinearFit,
    Series,
    clean_pairs,
    correlate,
    linear_fit,
    percentile,
    tail_ratio_test,
)


@dataclass(frozen=True)
class FindingRules:
    """Thresholds a pair must pass to be flagged. Defaults are deliberately strict: a false alarm on a
    healthy machine costs an operator's trust, a missed weak effect costs little."""

    pressure_threshold: float  # percent, the metric's limit from PressureLimits: it must really reach this
    pressure_percentile: float = 95.0  # ... at this percentile of its pairs
    alpha: float = 0.01  # one-sided permutation test of the effect (p95 ratio)
    permutations: int = 1999
    min_rho: float = 0.0  # Spearman's rho must be above this (a positive association)
    min_ratio: float = 1.5  # target p95 when pressured / target p95 when calm
    min_n: int = 30  # pairs (jobs) with both a metric value and a target value
    min_side: int = 10  # pairs on each side of the threshold to compare


@dataclass(frozen=True)
class PairAssessment:
    correlation: Correlation | None
    fit: LinearFit | None
    metric_p95: float | None
    high_n: int  # pairs with the metric above the threshold
    low_n: int
    target_p95_high: float | None
    target_p95_low: float | None
    ratio: float | None  # target_p95_high / target_p95_low
    effect_p: float | None  # permutation p-value of the ratio (None when not tested)
    flagged: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)  # why it was NOT flagged (empty when flagged)

    @property
    def score(self) -> float:
        """Ranking strength: rho times log2 of the effect ratio (capped), 0 when undefined."""
        if self.correlation is None or self.ratio is None or self.ratio <= 1:
            return 0.0
        return max(self.correlation.spearman, 0.0) * math.log2(min(self.ratio, 64.0))


def assess_pair(x: Series, y: Series, *, rules: FindingRules) -> PairAssessment:
    """Decide whether the metric x (percent, per job) explains the target y (seconds, per job).

    Flagged only with significance AND effect size AND actual pressure AND a positive association;
    ``reasons`` lists every rule that failed, in words, so the page can say why a pair was not flagged.

    Significance is that of the effect, not of rho: in a group of k members only about 1/k of the
    jobs run on the pressured machine, so the correlation over all of the group's jobs is diluted
    (small rho) while the tail under pressure is much longer. A one-sided permutation test of the p95
    ratio (labels "above / below the threshold" shuffled ``permutations`` times, seeded so a rerun gives
    the same p) measures exactly that. It only runs when the pressure and effect rules already pass.
    """
    xa, ya = clean_pairs(x, y)
    corr = correlate((xa), (ya))
    fit = linear_fit((xa), (ya))
    metric_p95 = percentile(list(xa), rules.pressure_percentile)
    high = xa > rules.pressure_threshold
    high_n, low_n = int(high.sum()), int((~high).sum())
    p_high = float(np.percentile(ya[high], 95)) if high_n else None
    p_low = float(np.percentile(ya[~high], 95)) if low_n else None
    ratio: float | None = None
    if p_high is not None and p_low is not None:
        ratio = p_high / p_low if p_low > 0 else (math.inf if p_high > 0 else 1.0)
    reasons: list[str] = []
    if xa.size < rules.min_n:
        reasons.append(f"only {xa.size} pairs (need {rules.min_n})")
    if corr is None:
        reasons.append("no variation to correlate")
    elif corr.spearman <= rules.min_rho:
        reasons.append(f"no positive association (rho = {corr.spearman:.2f})")
    if metric_p95 is None or metric_p95 <= rules.pressure_threshold:
        shown = "n/a" if metric_p95 is None else f"{metric_p95:.0f} %"
        reasons.append(f"no real pressure (p{rules.pressure_percentile:g} = {shown} <= {rules.pressure_threshold:g} %)")
    if high_n < rules.min_side or low_n < rules.min_side:
        reasons.append(f"too few pairs on one side of {rules.pressure_threshold:g} % ({high_n} above, {low_n} below; need {rules.min_side})")
    elif ratio is None or ratio < rules.min_ratio:
        shown = "n/a" if ratio is None else f"{ratio:.2f}x"
        reasons.append(f"small effect ({shown} < {rules.min_ratio:g}x)")
    effect_p: float | None = None
    if not reasons:
        effect_p = tail_ratio_test(ya, high, permutations=rules.permutations)
        if effect_p >= rules.alpha:
            reasons.append(f"effect not significant (permutation p = {effect_p:.2g} >= {rules.alpha:g})")
    return PairAssessment(
        correlation=corr,
        fit=fit,
        metric_p95=metric_p95,
        high_n=high_n,
        low_n=low_n,
        target_p95_high=p_high,
        target_p95_low=p_low,
        ratio=ratio,
        effect_p=effect_p,
        flagged=not reasons,
        reasons=tuple(reasons),
    )


def effect_sentence(*, metric_label: str, target_label: str, threshold: float, ratio: float | None) -> str:
    """Plain words for a finding, e.g. "when CPU > 85 % queue delay p95 is 4.1x higher"."""
    if ratio is None:
        return f"{target_label} p95 could not be compared above and below {metric_label} {threshold:g} %"
    if math.isinf(ratio):
        return f"when {metric_label} > {threshold:g} % {target_label} p95 is above zero, and zero otherwise"
    return f"when {metric_label} > {threshold:g} % {target_label} p95 is {ratio:.1f}x higher"
