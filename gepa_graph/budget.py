"""The budget: the one writer of the ledger (rollouts exact, USD cost, wall time, call counts),
when to stop, and how long one call may take."""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass

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


@dataclass
class Hold:
    """Rollouts promised to one piece of work and not yet reserved by it."""

    left: int


_current_hold: contextvars.ContextVar[Hold | None] = contextvars.ContextVar(
    "gepa_graph_hold", default=None
)


class BudgetExhausted(Exception):
    """Raised before launching rollouts that would exceed ``max_rollouts``."""


class Budget:
    """What a run has spent and may still spend; the engine asks it before every batch, so a
    budget is never exceeded, and its ledger is what checkpoints and events report."""

    def __init__(self, config: OptimizeConfig, prior_seconds: float = 0.0) -> None:
        self.config = config
        self.ledger = Ledger(max_rollouts=config.max_rollouts)
        self._started = time.monotonic()
        self._prior_seconds = prior_seconds
        self.held = 0  # rollouts promised to work in flight (see hold)

    @property
    def rollouts_left(self) -> int | None:
        """Rollouts still allowed under ``max_rollouts`` (None without that budget)."""
        if self.config.max_rollouts is None:
            return None
        return self.config.max_rollouts - self.ledger.rollouts_used

    @property
    def available(self) -> int | None:
        """Rollouts left that no work in flight was promised: what new work may plan on."""
        left = self.rollouts_left
        return None if left is None else left - self.held

    def hold(self, count: int) -> Hold:
        """Promise ``count`` rollouts to work about to start, so that work started later
        cannot take them. Rollouts the work reserves while its hold is current (``charge``)
        come out of the hold; ``release`` gives back what it did not use."""
        self.held += count
        return Hold(count)

    @staticmethod
    def charge(hold: Hold | None) -> None:
        """Make ``hold`` the current task's: its reservations are taken from it."""
        _current_hold.set(hold)

    def release(self, hold: Hold) -> None:
        """Give back what ``hold`` still promises (the rollouts its work did not reserve) once
        that work ends, however it ends; releasing it twice gives back nothing more."""
        self.held -= hold.left
        hold.left = 0

    def add_probe(self, rollouts: int, cost_usd: float | None) -> None:
        """Book a probe's seed runs: rollouts like any other (reserved, so the limit holds),
        counted apart because the journal does not hold them."""
        self.reserve_rollouts(rollouts)
        self.ledger.probe_rollouts += rollouts
        self.add_task_cost(cost_usd)

    def reserve_rollouts(self, count: int) -> None:
        """Spend ``count`` rollouts now, or raise without spending any.

        Reserving a whole batch before it starts is what keeps the ledger exact and the run
        from ever exceeding ``max_rollouts``.
        """
        left = self.rollouts_left
        if left is not None and count > left:
            raise BudgetExhausted(f"{count} rollouts needed, {left} left of max_rollouts")
        self.ledger.rollouts_used += count
        hold = _current_hold.get()
        if hold is not None:
            taken = min(count, hold.left)
            hold.left -= taken
            self.held -= taken

    def add_task_cost(self, cost: float | None) -> None:
        """Count what the agent's own model calls cost (None: the model has no price)."""
        if cost:
            self.ledger.task_cost_usd += cost
            self.ledger.cost_usd += cost

    def add_reflection_cost(self, cost: float | None) -> None:
        """Count what a reflection call cost (None: the model has no price)."""
        if cost:
            self.ledger.reflection_cost_usd += cost
            self.ledger.cost_usd += cost

    def add_reflection_call(self) -> None:
        """Count one reflection reply the search used (a replayed one included)."""
        self.ledger.reflection_calls += 1

    def add_metric_calls(self, count: int) -> None:
        """Count calls of the metric (``score_repeats`` per scored rollout; no rollout)."""
        self.ledger.metric_calls += count

    def add_reused_rollout(self) -> None:
        """Count one result a candidate took from another's rollout (no rollout: reuse.py)."""
        self.ledger.reused_rollouts += 1

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
        """Wall time of the run so far, including the time before a resume."""
        return self._prior_seconds + time.monotonic() - self._started

    def seconds_left(self) -> float | None:
        """Wall time left under ``max_seconds`` (None without that budget): calls that may
        hang are cut off there so the limit holds."""
        if self.config.max_seconds is None:
            return None
        return self.config.max_seconds - self.seconds()

    def snapshot(self) -> Ledger:
        """A copy of the ledger, timed now: what an event or a checkpoint records."""
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
