"""Typed events the engine emits; listeners (progress display, tracking) subscribe to them.

Events carry records (``gepa_graph.records``, ``gepa_graph.result``), never live objects, so a
listener sees what a result loaded from disk holds. A listener is any ``callable(event)``, or a
``Listener`` subclass overriding the hooks it needs (one documented no-op per event type).

Listeners must not be able to break an optimization: an exception in a listener is reported
once (logging) and the listener keeps receiving later events.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gepa_graph.records import CandidateRecord, HeldOutScores, Ledger, Rejection
from gepa_graph.result import Result

log = logging.getLogger("gepa_graph")

__all__ = [
    "BudgetUpdated",
    "CandidateAccepted",
    "Event",
    "EventBus",
    "IterationStarted",
    "Ledger",
    "Listener",
    "MinibatchEvaluated",
    "OptimizationFinished",
    "OptimizationStarted",
    "ProposalRejected",
    "ReflectionCalled",
    "TestsetEvaluated",
]


class Event(BaseModel):
    """Base of every event: immutable."""

    model_config = ConfigDict(frozen=True)


class OptimizationStarted(Event):
    """A run starts (or resumes): its folder, config, seed prompts and data sizes.

    Fields: ``run_dir`` (None for a run without a folder), ``resumed`` (True when it continues
    a killed run from its folder's journal), ``config`` (the OptimizeConfig as JSON),
    ``seed_prompts`` (module -> seed text), ``n_train`` and ``n_val`` (example counts),
    ``reflection_lm`` (the reflection LM's model string or callable name).
    """

    run_dir: str | None
    resumed: bool
    config: dict[str, Any]
    seed_prompts: dict[str, str]
    n_train: int
    n_val: int
    reflection_lm: str


class IterationStarted(Event):
    """A mutation (of ``module`` of one parent) or a merge (of two parents) begins.

    Fields: ``iteration`` (this proposal's number, which later events of the same proposal
    carry: with proposals in flight together, their events interleave), ``kind`` ("mutation"
    or "merge"), ``parent_ids`` (one parent for a mutation, two for a merge), ``module`` (the
    modules rewritten, joined by ``+``; None for a merge).
    """

    iteration: int
    kind: Literal["mutation", "merge"]
    parent_ids: tuple[str, ...]
    module: str | None = None


class ReflectionCalled(Event):
    """The reflection LM answered a prompt about ``module`` of ``parent_id``.

    Emitted when the proposal settles, not when the LM replied. Fields: ``iteration`` (the
    proposal's number), ``prompt`` and ``reply`` (the full text sent, and the LM's raw answer
    before the new prompt is extracted from it), ``cost_usd`` (None when LiteLLM does not know
    the price).
    """

    iteration: int
    module: str
    parent_id: str
    prompt: str
    reply: str
    cost_usd: float | None = None


class ProposalRejected(Rejection, Event):
    """A proposal that did not enter the pool (the event of a ``records.Rejection``)."""


class MinibatchEvaluated(Event):
    """A parent or child ran on a minibatch: the example keys and their scores.

    Fields: ``iteration`` (the proposal's number), ``candidate_id`` (the candidate that ran),
    ``role`` ("parent" or "child"), ``example_keys`` and ``scores`` (in the same order). A
    child stopped early (``staged_minibatch``) has only the examples it ran.
    """

    iteration: int
    candidate_id: str
    role: Literal["parent", "child"]
    example_keys: tuple[str, ...]
    scores: tuple[float, ...]


class CandidateAccepted(Event):
    """A candidate joined the pool: its ``candidate`` record, and ``is_best``: True for the
    seed, and for a candidate scored on every validation example whose mean beats the best
    before it (a tie is not a new best)."""

    candidate: CandidateRecord
    is_best: bool

    @property
    def iteration(self) -> int:
        """The iteration that produced the candidate (0 for the seed)."""
        return self.candidate.iteration

    @property
    def val_scores(self) -> dict[str, float]:
        """Validation scores by example key."""
        return self.candidate.val_scores

    @property
    def mean_score(self) -> float:
        """Mean validation score."""
        return self.candidate.mean_score

    @property
    def rollouts_used(self) -> int:
        """Rollouts spent when the candidate was accepted."""
        return self.candidate.rollouts_at_discovery


class BudgetUpdated(Event):
    """A proposal or merge ended: what the run has spent and where the pool stands.

    Fields: ``iteration`` (the highest proposal number started so far, not necessarily the one
    that ended), ``ledger`` (a snapshot), ``best_id`` and ``best_score`` (the best candidate and
    its mean validation score), ``pool_size`` (candidates in the pool), ``pareto_score`` (mean
    over validation examples of the best score any candidate reached), ``rollouts_in_flight``
    (rollouts holding a slot right now), ``slot_utilization`` (busy slot-seconds over
    ``concurrency`` x elapsed seconds, 0..1; None before any time has elapsed).
    """

    iteration: int
    ledger: Ledger
    best_score: float
    best_id: str
    pool_size: int
    pareto_score: float  # mean over validation examples of the best score any candidate reached
    rollouts_in_flight: int = 0  # rollouts holding a slot right now
    slot_utilization: float | None = None  # busy slot-seconds / (concurrency x seconds) so far


class OptimizationFinished(Event):
    """The run ended (``stop_reason``); ``result`` is the Result (None only when hand-built).

    The other fields repeat the Result's: ``best_id``, ``best_score`` and ``seed_score`` (mean
    validation scores), ``ledger`` (the final spend), ``iterations`` (proposals and merges
    started).
    """

    stop_reason: str
    best_id: str
    best_score: float
    seed_score: float
    ledger: Ledger
    iterations: int
    result: Result | None = None  # for listeners that write a final report

    @classmethod
    def of(cls, result: Result) -> OptimizationFinished:
        """The event for a finished run's ``result`` (its fields repeated, the result attached)."""
        return cls(
            stop_reason=result.stop_reason,
            best_id=result.best_id,
            best_score=result.best_score,
            seed_score=result.seed_score,
            ledger=result.ledger,
            iterations=result.iterations,
            result=result,
        )


class TestsetEvaluated(HeldOutScores, Event):
    """Held-out examples (``optimize(testset=...)``) scored for the seed and the best candidate
    once the search has finished, outside the search budget: the run's ``HeldOutScores``
    (saved with it), told to the listeners."""

    __test__ = False  # not a pytest test class


def hook_name(event_type: type[Event]) -> str:
    """The Listener hook of an event type: ``CandidateAccepted`` -> ``on_candidate_accepted``."""
    return "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", event_type.__name__).lower()


class Listener:
    """Base class of event listeners: override the hooks you need, each a no-op here.

    The EventBus calls ``listener(event)``; ``__call__`` hands the event to the hook named after
    its type (``on_candidate_accepted`` for CandidateAccepted), or to ``on_event`` for an event
    type with no hook of its own. A listener that must not block the run (one writing to a remote
    server) may override ``__call__`` to queue the event and call ``dispatch`` later.
    ``close()`` is called once when the optimization ends, however it ends.
    """

    def __call__(self, event: Event) -> None:
        """Receive one event from the bus: dispatch it to its hook."""
        self.dispatch(event)

    def dispatch(self, event: Event) -> None:
        """Call the hook of ``event``'s type (``on_event`` if it has none)."""
        for cls in type(event).__mro__:
            if cls is Event:
                break
            hook = getattr(self, hook_name(cls), None)
            if hook is not None:
                hook(event)
                return
        self.on_event(event)

    def on_optimization_started(self, event: OptimizationStarted) -> None:
        """A run starts or resumes (emitted once per process, before anything runs)."""

    def on_iteration_started(self, event: IterationStarted) -> None:
        """A mutation or merge begins."""

    def on_reflection_called(self, event: ReflectionCalled) -> None:
        """The reflection LM replied."""

    def on_proposal_rejected(self, event: ProposalRejected) -> None:
        """A proposal did not join the pool."""

    def on_minibatch_evaluated(self, event: MinibatchEvaluated) -> None:
        """A parent or child ran on a minibatch."""

    def on_candidate_accepted(self, event: CandidateAccepted) -> None:
        """A candidate joined the pool (``event.candidate`` is its record)."""

    def on_budget_updated(self, event: BudgetUpdated) -> None:
        """A step ended: the ledger and the pool's scores."""

    def on_optimization_finished(self, event: OptimizationFinished) -> None:
        """The run ended; ``event.result`` is its Result."""

    def on_testset_evaluated(self, event: TestsetEvaluated) -> None:
        """Held-out scores of the seed and the best candidate."""

    def on_event(self, event: Event) -> None:
        """An event type with no hook of its own (one added after this listener was written)."""

    def close(self) -> None:
        """The optimization is over (finished, failed or interrupted): release resources."""


# What optimize(listeners=...) and the bus accept: a Listener, or any callable(event).
ListenerLike = Listener | Callable[[Event], Any]


class EventBus:
    """Delivers each event to every listener in order; a failing listener is logged once and
    keeps receiving events."""

    def __init__(self, listeners: list[ListenerLike] | None = None) -> None:
        self._listeners: list[ListenerLike] = list(listeners or [])
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
                log.warning(
                    "closing event listener %r failed: %s: %s", listener, type(exc).__name__, exc
                )

    def emit(self, event: Event) -> None:
        """Deliver ``event``: ``listener(event)``, or ``listener.on_event(event)`` for an object
        that is not callable but has that method."""
        for index, listener in enumerate(self._listeners):
            try:
                if callable(listener):
                    listener(event)
                else:
                    listener.on_event(event)
            except Exception as exc:  # a listener never stops the optimization
                if index not in self._failed:
                    self._failed.add(index)
                    log.warning(
                        "event listener %r failed on %s (reported once, it keeps receiving "
                        "events): %s: %s",
                        listener,
                        type(event).__name__,
                        type(exc).__name__,
                        exc,
                    )
