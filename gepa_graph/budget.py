"""The budget: the one writer of the ledger (rollouts exact, USD cost, wall time, call counts),
when to stop, and how long one call may take."""

from __future__ import annotations

import time

from gepa_graph.config import OptimizeConfig
from gepa_graph.records import Ledger


# A call still running this long after max_seconds is cut off, so the limit really holds.
DEADLINE_GRACE_S = 1.0


def call_limit(timeout: float | None, seconds_left: float | None) -> tuple[float | None, bool]:
    """How long one call of user code or of an LM may take: its own ``timeout``, or less
    when the run's ``max_seconds`` comes first; and whether the deadline is what set it."""
    if seconds_left is not None and (timeout is None or seconds_left + DEADLINE_GRACE_S < timeout):
        return max(seconds_left, 0.0) + DEADLINE_GRACE_S, True
    return timeout, False


class BudgetExhausted(Exception):
    """Raised before launching rollouts that would exceed ``max_rollouts``."""


class Budget:
    """Spends and counts for one run: every change to its ``ledger`` goes through a method here;
    ``snapshot()`` is what the checkpoint and the events carry."""

    def __init__(self, config: OptimizeConfig, prior_seconds: float = 0.0) -> None:
        self.config = config
        self.ledger = Ledger(max_rollouts=config.max_rollouts)
        self._started = time.monotonic()
        self._prior_seconds = prior_seconds

    @property
    def rollouts_left(self) -> int | None:
        """Rollouts left under ``max_rollouts`` (None without that budget)."""
        if self.config.max_rollouts is None:
            return None
        return self.config.max_rollouts - self.ledger.rollouts_used

    def reserve_rollouts(self, count: int) -> None:
        """Spend ``count`` rollouts now, or raise without spending any.

        Reserving a whole batch before it starts is what keeps the ledger exact and the run
        from ever exceeding ``max_rollouts``.
        """
        left = self.rollouts_left
        if left is not None and count > left:
            raise BudgetExhausted(f"{count} rollouts needed, {left} left of max_rollouts")
        self.ledger.rollouts_used += count

    def add_task_cost(self, cost: float | None) -> None:
        """Add the USD cost of a rollout (None or 0: unknown or free)."""
        if cost:
            self.ledger.task_cost_usd += cost
            self.ledger.cost_usd += cost

    def add_reflection_cost(self, cost: float | None) -> None:
        """Add the USD cost of a reflection call (None or 0: unknown or free)."""
        if cost:
            self.ledger.reflection_cost_usd += cost
            self.ledger.cost_usd += cost

    def add_reflection_call(self) -> None:
        """Count one reflection reply the search used (a replayed one included)."""
        self.ledger.reflection_calls += 1

    def add_failed_rollout(self) -> None:
        """Count one rollout scored as a failure (the system or the metric failed)."""
        self.ledger.failed_rollouts += 1

    def add_rollout_retry(self) -> None:
        """Count one rollout run again after a transient failure (still one rollout)."""
        self.ledger.rollout_retries += 1

    def add_lm_retry(self) -> None:
        """Count one reflection LM call retried after a transient failure."""
        self.ledger.lm_retries += 1

    def add_lm_failure(self) -> None:
        """Count one reflection LM call that failed for good."""
        self.ledger.lm_failures += 1

    def seconds(self) -> float:
        """Wall time of the run, the seconds of earlier sessions (before a resume) included."""
        return self._prior_seconds + time.monotonic() - self._started

    def seconds_left(self) -> float | None:
        """Wall time left under ``max_seconds`` (None without that budget): calls that may
        hang are cut off there so the limit holds."""
        if self.config.max_seconds is None:
            return None
        return self.config.max_seconds - self.seconds()

    def snapshot(self) -> Ledger:
        """A copy of the ledger with the wall time brought up to date."""
        self.ledger.seconds = round(self.seconds(), 3)
        return self.ledger.model_copy()

    def stop_reason(self) -> str | None:
        """Which budget, if any, is used up. Checked between steps, never mid-batch."""
        config = self.config
        if config.max_rollouts is not None and self.ledger.rollouts_used >= config.max_rollouts:
            return "max_rollouts"
        if config.max_cost_usd is not None and self.ledger.cost_usd >= config.max_cost_usd:
            return "max_cost_usd"
        if config.max_seconds is not None and self.seconds() >= config.max_seconds:
            return "max_seconds"
        return None
