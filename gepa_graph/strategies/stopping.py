"""Stop conditions, checked between steps (never mid-batch)."""

from __future__ import annotations

from gepa_graph import pareto
from gepa_graph.strategies.base import Search, StopCondition

# Iterations in a row that spent no rollout (every proposal a repeat, every minibatch already
# known) even after varying the minibatch, showing the reflection LM its rejected attempts and
# turning to other parents, before the run stops as stalled instead of spinning: at once when
# every candidate is exhausted as a parent, at the latest after MAX_IDLE_ITERATIONS * 4.
MAX_IDLE_ITERATIONS = 25


class Budgets:
    """The rollout, cost and time budgets, ``max_iterations``, ``max_stale_iterations``, a
    stalled search, and a perfect validation score."""

    def stop_reason(self, search: Search) -> str | None:
        """The first of: a budget used up, ``max_iterations``, ``max_stale_iterations``, a
        stalled search, a perfect score on the whole validation set."""
        reason = search.budget_stop_reason()
        if reason:
            return reason
        config = search.config
        if config.max_iterations is not None and search.iteration >= config.max_iterations:
            return "max_iterations"
        if (
            config.max_stale_iterations is not None
            and search.stale_iterations >= config.max_stale_iterations
        ):
            return "max_stale_iterations"
        idle = search.idle_iterations
        if idle >= MAX_IDLE_ITERATIONS and (
            set(search.scores) <= search.exhausted or idle >= 4 * MAX_IDLE_ITERATIONS
        ):
            return "stalled"
        best = search.best_id
        if (
            pareto.is_complete(search.scores[best], search.val_keys)
            and search.mean(best) >= config.perfect_score
        ):
            return "perfect_score"
        return None


class StopAll:
    """Several stop conditions: the first that fires stops the run."""

    def __init__(self, *conditions: StopCondition) -> None:
        self.conditions = conditions

    def stop_reason(self, search: Search) -> str | None:
        """The first condition's reason that fires, in the order given."""
        for condition in self.conditions:
            reason = condition.stop_reason(search)
            if reason:
                return reason
        return None
