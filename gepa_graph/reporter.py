"""What a run tells its listeners, in one place: the events of each piece of work (started, its
minibatches and reflections, its rejection), the budget as work settles, and nothing while a
resumed run replays its journal (the listeners were told the first time)."""

from __future__ import annotations

from typing import Literal

from gepa_graph import pareto
from gepa_graph.evaluation import Evaluator
from gepa_graph.events import (
    BudgetUpdated,
    Event,
    EventBus,
    IterationStarted,
    MinibatchEvaluated,
    OptimizationFinished,
    OptimizationStarted,
    ProposalRejected,
    ReflectionCalled,
)
from gepa_graph.pool import Pool
from gepa_graph.proposers.base import Kind, MinibatchRun, Outcome, Work
from gepa_graph.records import Ledger
from gepa_graph.state import OptimizerState
from gepa_graph.turns import Turns


class Reporter:
    """Emits a run's events; records each rejection in the checkpoint's ``state`` as well."""

    def __init__(self, bus: EventBus, turns: Turns, state: OptimizerState) -> None:
        self.bus = bus
        self.turns = turns
        self.state = state

    def emit(self, event: Event) -> None:
        """Tell listeners, except while a resumed run replays its journal (they were told)."""
        if self.turns.replaying and not isinstance(
            event, (OptimizationStarted, OptimizationFinished)
        ):
            return
        self.bus.emit(event)

    def started(self, iteration: int, work: Work) -> None:
        """A piece of work got its number."""
        self.emit(
            IterationStarted(
                iteration=iteration,
                kind=work.kind,
                parent_ids=work.parent_ids,
                module="+".join(work.modules) or None,
            )
        )

    def found(self, iteration: int, work: Work, outcome: Outcome) -> None:
        """What the work found: its parent's minibatch, its reflections, its child's."""
        self._minibatch(iteration, "parent", outcome.parent_minibatch)
        for module, reflection in outcome.reflections:
            for call in reflection.calls:  # the reflection, and its compression if it had one
                self.emit(
                    ReflectionCalled(
                        iteration=iteration,
                        module=module,
                        parent_id=work.parent_ids[0],
                        prompt=call.prompt,
                        reply=call.response.text,
                        cost_usd=call.response.usage.cost_usd,
                    )
                )
        self._minibatch(iteration, "child", outcome.child_minibatch)

    def _minibatch(
        self, iteration: int, role: Literal["parent", "child"], run: MinibatchRun | None
    ) -> None:
        if run is not None:
            self.emit(
                MinibatchEvaluated(
                    iteration=iteration,
                    candidate_id=run.candidate.id,
                    role=role,
                    example_keys=tuple(ex.key for ex in run.examples),
                    scores=tuple(r.score for r in run.results),
                )
            )

    def rejected(
        self,
        kind: Kind,
        reason: str,
        detail: str,
        module: str | None,
        parent_ids: tuple[str, ...],
        text: str | None,
        iteration: int,
    ) -> None:
        """A proposal that does not join the pool: kept in the checkpoint, and told."""
        rejection = ProposalRejected(
            iteration=iteration,
            kind=kind,
            reason=reason,
            detail=detail,
            module=module,
            parent_ids=parent_ids,
            proposed_text=text,
        )
        self.state.rejected.append(rejection)
        self.emit(rejection)

    def budget(self, ledger: Ledger, pool: Pool, evaluator: Evaluator, slot_seconds: float) -> None:
        """Where the run stands as work settles; ``slot_seconds``: the slots' capacity so far
        (concurrency times elapsed time), for their utilization."""
        self.emit(
            BudgetUpdated(
                iteration=self.state.iteration,
                ledger=ledger,
                best_score=pool.mean(pool.best_id),
                best_id=pool.best_id,
                pool_size=len(pool.candidates),
                pareto_score=pareto.pareto_aggregate(pool.scores, pool.val_keys),
                rollouts_in_flight=evaluator.running,
                slot_utilization=(
                    evaluator.busy_seconds / slot_seconds if slot_seconds > 0 else None
                ),
            )
        )
