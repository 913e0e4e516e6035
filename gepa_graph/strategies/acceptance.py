"""Acceptance: whether a child earns a validation run after its minibatch."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from gepa_graph.errors import InvalidInput
from gepa_graph.evaluation import EvalResult
from gepa_graph.strategies.base import Acceptance


class StrictImprovement:
    """GEPA's rule: the child must score strictly more than its parent on the same minibatch."""

    def reject_reason(
        self, parent: Sequence[EvalResult], child: Sequence[EvalResult]
    ) -> str | None:
        """None when the child's minibatch sum beats the parent's, else both sums."""
        before, after = sum(r.score for r in parent), sum(r.score for r in child)
        return None if after > before else f"minibatch score {after:g} vs parent {before:g}"


def noise_variance(results: Sequence[EvalResult]) -> float:
    """The metric's own variance on one output, pooled over every result scored more than
    once (the mean of their sample variances); 0 when none was (nothing says it is noisy)."""
    variances = [statistics.variance(r.samples) for r in results if len(r.samples) > 1]
    return statistics.fmean(variances) if variances else 0.0


class ConfidentImprovement:
    """For a noisy metric scored several times per output (``score_repeats``): the child's
    minibatch sum must beat the parent's by more than ``z`` standard errors of the difference.

    Parent and child run on the same examples, so only the metric's noise separates them
    beyond their true difference: its variance is pooled over both minibatches' repeats
    (``noise_variance``) and each score, a mean of ``n`` calls, contributes variance / n (a
    failed rollout's ``failure_score`` contributes none). Scored once, the noise is unknown
    and the rule is StrictImprovement's.
    """

    def __init__(self, z: float = 1.0) -> None:
        if not (math.isfinite(z) and z >= 0):
            raise InvalidInput(f"ConfidentImprovement z={z} must be a finite number >= 0")
        self.z = z

    def reject_reason(
        self, parent: Sequence[EvalResult], child: Sequence[EvalResult]
    ) -> str | None:
        """None when the child's sum beats the parent's by more than ``z`` standard errors,
        else the sums and the margin it needed."""
        before, after = sum(r.score for r in parent), sum(r.score for r in child)
        judged = [r for r in [*parent, *child] if r.error is None]  # a failure is no verdict
        variance = noise_variance(judged)
        spread = math.sqrt(sum(variance / r.score_count for r in judged))
        if after - before > self.z * spread:
            return None
        return (
            f"minibatch score {after:g} vs parent {before:g}, needs a gain over "
            f"{self.z:g} x {spread:.3g} (standard error)"
        )


def best_case(
    results: Sequence[EvalResult | None], baseline: Sequence[EvalResult], top: float, repeats: int
) -> list[EvalResult]:
    """A child's minibatch results with each example not yet run (None) at the ``top`` score
    and no spread (its ``repeats`` values all at the top), keyed as the baseline's results in
    the same order: the completion most favourable to the child. An acceptance that rejects it
    rejects every completion (StrictImprovement: the sum can only fall; ConfidentImprovement:
    nor can the standard error), so the child can stop there."""
    samples = [top] * repeats if repeats > 1 else []
    return [
        EvalResult(example_key=base.example_key, score=top, samples=samples)
        if result is None
        else result
        for result, base in zip(results, baseline, strict=True)
    ]


ACCEPTANCES: dict[str, type[Acceptance]] = {
    "strict_improvement": StrictImprovement,
    "confident_improvement": ConfidentImprovement,
}
