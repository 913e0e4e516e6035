"""Acceptance: whether a child earns a validation run after its minibatch."""

from __future__ import annotations

from collections.abc import Sequence

from gepa_graph.evaluation import EvalResult


class StrictImprovement:
    """GEPA's rule: the child must score strictly more than its parent on the same minibatch."""

    def reject_reason(
        self, parent: Sequence[EvalResult], child: Sequence[EvalResult]
    ) -> str | None:
        """None when the child's minibatch sum beats the parent's, else both sums."""
        before, after = sum(r.score for r in parent), sum(r.score for r in child)
        return None if after > before else f"minibatch score {after:g} vs parent {before:g}"


ACCEPTANCES = {"strict_improvement": StrictImprovement}
