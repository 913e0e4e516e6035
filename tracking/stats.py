"""Paired statistics for the promotion gate, in the standard library only (no scipy).

Two prompt sets scored on the same examples give paired scores; their per-example differences
are what the gate tests. ``bootstrap_interval`` is a percentile bootstrap of the mean
difference, ``sign_test`` an exact binomial test on wins and losses, ``wilcoxon_signed_rank``
the signed-rank test (its exact distribution given the tied ranks up to 60 non-zero
differences, else the normal approximation with tie and continuity corrections).
The p-values are one-sided: how likely a difference this favourable to the candidate is when
neither prompt set is better. ``compare_paired`` runs them all.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

EXACT_WILCOXON_MAX_N = 60


def differences(candidate: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Per-example ``candidate - baseline``; ValueError unless both score the same examples."""
    if len(candidate) != len(baseline):
        raise ValueError(f"paired scores differ in length: {len(candidate)} vs {len(baseline)}")
    if not candidate:
        raise ValueError("no paired scores to compare")
    return [round(c - b, 12) for c, b in zip(candidate, baseline)]  # 0.3-0.2 == 0.2-0.1


def bootstrap_interval(
    diffs: Sequence[float], alpha: float = 0.05, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """The ``alpha`` and ``1 - alpha`` percentiles of the bootstrapped mean of ``diffs``: the
    first is a one-sided ``1 - alpha`` lower confidence bound of the mean difference."""
    n = len(diffs)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(resamples))

    def percentile(q: float) -> float:
        position = q * (resamples - 1)
        low = math.floor(position)
        high = min(low + 1, resamples - 1)
        return means[low] + (means[high] - means[low]) * (position - low)

    return percentile(alpha), percentile(1 - alpha)


def _binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n


def sign_test(diffs: Sequence[float]) -> float:
    """One-sided exact sign test: P(at least this many wins | wins and losses equally likely).
    Ties are dropped; with no wins or losses the p-value is 1."""
    wins = sum(d > 0 for d in diffs)
    losses = sum(d < 0 for d in diffs)
    if wins + losses == 0:
        return 1.0
    return _binomial_tail(wins, wins + losses)


def _ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _exact_upper_tail(ranks: Sequence[float], w_plus: float) -> float:
    """P(W+ >= w_plus) under the null, each rank's sign a fair coin: counts of subset sums of
    the doubled ranks (average ranks of ties are halves, so doubled they are integers)."""
    doubled = [round(2 * r) for r in ranks]
    counts = [1] + [0] * sum(doubled)
    for rank in doubled:
        for total in range(len(counts) - 1, rank - 1, -1):
            counts[total] += counts[total - rank]
    return sum(counts[round(2 * w_plus) :]) / 2 ** len(ranks)


def wilcoxon_signed_rank(diffs: Sequence[float]) -> float:
    """One-sided Wilcoxon signed-rank test that the differences lean positive. Zero
    differences are dropped (Wilcoxon's convention); with none left the p-value is 1."""
    nonzero = [d for d in diffs if d != 0]
    n = len(nonzero)
    if n == 0:
        return 1.0
    magnitudes = [abs(d) for d in nonzero]
    ranks = _ranks(magnitudes)
    w_plus = sum(r for r, d in zip(ranks, nonzero) if d > 0)
    if n <= EXACT_WILCOXON_MAX_N:
        return _exact_upper_tail(ranks, w_plus)
    mean = n * (n + 1) / 4
    groups: dict[float, int] = {}
    for m in magnitudes:
        groups[m] = groups.get(m, 0) + 1
    variance = n * (n + 1) * (2 * n + 1) / 24 - sum(t**3 - t for t in groups.values()) / 48
    if variance <= 0:
        return 1.0
    z = (w_plus - mean - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


@dataclass(frozen=True)
class PairedComparison:
    """The gate's statistics for one paired comparison: ``n`` examples, ``mean_diff``
    (candidate minus baseline), the bootstrap interval ``ci_low``..``ci_high`` (``ci_low`` is
    the one-sided ``1 - alpha`` lower bound), the one-sided p-values of the sign and Wilcoxon
    tests, wins/losses/ties, and whether it ``passes``: ``ci_low > margin`` and Wilcoxon
    ``p < alpha``."""

    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_sign: float
    p_wilcoxon: float
    wins: int
    losses: int
    ties: int
    margin: float
    alpha: float
    passes: bool

    def reason(self) -> str:
        """Why the comparison passes or not, in one clause."""
        if self.passes:
            return (
                f"lower bound {self.ci_low:+.4f} clears the margin {self.margin:g} and "
                f"Wilcoxon p={self.p_wilcoxon:.3g} < {self.alpha:g}"
            )
        if self.wins == 0 and self.losses == 0:
            return "no difference on any example"
        why = []
        if self.ci_low <= self.margin:
            why.append(f"lower bound {self.ci_low:+.4f} does not clear the margin {self.margin:g}")
        if self.p_wilcoxon >= self.alpha:
            why.append(f"Wilcoxon p={self.p_wilcoxon:.3g} is not below {self.alpha:g}")
        return " and ".join(why) or "not better"

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for MLflow params and metrics)."""
        return asdict(self)


def compare_paired(
    candidate: Sequence[float],
    baseline: Sequence[float],
    *,
    margin: float = 0.0,
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedComparison:
    """Paired comparison of two score vectors over the same examples (same order)."""
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be between 0 and 0.5, got {alpha}")
    diffs = differences(candidate, baseline)
    p_wilcoxon = wilcoxon_signed_rank(diffs)
    ci_low, ci_high = bootstrap_interval(diffs, alpha, resamples, seed)
    return PairedComparison(
        n=len(diffs),
        mean_diff=sum(diffs) / len(diffs),
        ci_low=ci_low,
        ci_high=ci_high,
        p_sign=sign_test(diffs),
        p_wilcoxon=p_wilcoxon,
        wins=sum(d > 0 for d in diffs),
        losses=sum(d < 0 for d in diffs),
        ties=sum(d == 0 for d in diffs),
        margin=margin,
        alpha=alpha,
        passes=ci_low > margin and p_wilcoxon < alpha,
    )
