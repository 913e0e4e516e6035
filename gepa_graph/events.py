"""Typed events the engine emits; listeners (progress display, tracking) subscribe to them.

Listeners must not be able to break an optimization: an exception in a listener is reported
once (logging) and the listener keeps receiving later events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

log = logging.getLogger("gepa_graph")


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class CandidateInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    prompts: dict[str, str]
    parent_ids: tuple[str, ...]
    origin: str
    changed_modules: tuple[str, ...]


class Ledger(BaseModel):
    """Budget snapshot."""

    rollouts_used: int = 0
    max_rollouts: int | None = None
    cost_usd: float = 0.0
    reflection_cost_usd: float = 0.0
    task_cost_usd: float = 0.0
    reflection_calls: int = 0
    lm_retries: int = 0
    lm_failures: int = 0
    failed_rollouts: int = 0
    rollout_retries: int = 0
    seconds: float = 0.0


class OptimizationStarted(Event):
    run_dir: str | None
    resumed: bool
    config: dict[str, Any]
    seed_prompts: dict[str, str]
    n_train: int
    n_val: int
    reflection_lm: str


class IterationStarted(Event):
    iteration: int
    kind: Literal["mutation", "merge"]
    parent_ids: tuple[str, ...]
    module: str | None = None


class ReflectionCalled(Event):
    iteration: int
    module: str
    parent_id: str
    prompt: str
    reply: str
    cost_usd: float | None = None


class ProposalRejected(Event):
    """A proposal that did not enter the pool. ``reason`` is a short code, ``detail`` prose."""

    iteration: int
    kind: Literal["mutation", "merge"]
    reason: str
    detail: str = ""
    module: str | None = None
    parent_ids: tuple[str, ...] = ()
    proposed_text: str | None = None


class MinibatchEvaluated(Event):
    iteration: int
    candidate_id: str
    role: Literal["parent", "child"]
    example_keys: tuple[str, ...]
    scores: tuple[float, ...]


class CandidateAccepted(Event):
    iteration: int
    candidate: CandidateInfo
    val_scores: dict[str, float]
    mean_score: float
    rollouts_used: int
    is_best: bool


class BudgetUpdated(Event):
    iteration: int
    ledger: Ledger
    best_score: float
    best_id: str
    pool_size: int
    pareto_score: float  # mean over validation examples of the best score any candidate reached
    rollouts_in_flight: int = 0  # rollouts holding a slot right now
    slot_utilization: float | None = None  # busy slot-seconds / (concurrency x seconds) so far


class OptimizationFinished(Event):
    stop_reason: str
    best_id: str
    best_score: float
    seed_score: float
    ledger: Ledger
    iterations: int
    result: Any = None  # the gepa_graph.Result, for listeners that write a final report


class TestsetEvaluated(Event):
    """Held-out examples (``optimize(testset=...)``) scored for the seed and the best candidate
    once the search has finished; these rollouts are outside the search budget."""

    __test__ = False  # not a pytest test class

    seed_id: str
    best_id: str
    seed_scores: dict[str, float]  # example key -> score
    best_scores: dict[str, float]
    seed_score: float  # means
    best_score: float


Listener = Callable[[Event], Any]


class EventBus:
    def __init__(self, listeners: list[Listener] | None = None) -> None:
        self._listeners: list[Listener] = list(listeners or [])
        self._failed: set[int] = set()

    def close(self) -> None:
        """Call each listener's optional ``close()``; failures are logged, never raised."""
        for listener in self._listeners:
            close = getattr(listener, "close", None)
            if close is None:
                continue
            try:
                close()
            except Exception as exc:
                log.warning("closing event listener %r failed: %s: %s",
                            listener, type(exc).__name__, exc)

    def emit(self, event: Event) -> None:
        for index, listener in enumerate(self._listeners):
            try:
                listener(event)
            except Exception as exc:  # a listener never stops the optimization
                if index not in self._failed:
                    self._failed.add(index)
                    log.warning(
                        "event listener %r failed on %s (reported once, it keeps receiving "
                        "events): %s: %s",
                        listener, type(event).__name__, type(exc).__name__, exc,
                    )
