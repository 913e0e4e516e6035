"""What strategies and proposers see of a run: ``SearchView`` is the strategies' ``Search`` and
the proposers' ``ProposerView``, over the pool and the run's inputs.

It reads, and offers only the two acts a step needs: run rollouts (``evaluate``, which then
takes a journaled turn) and wait for a turn. Every other act on the search (numbering work,
holding the budget, events, admission) is the engine's, so a strategy or a proposer can be
understood, and tested against a fake view, without the engine.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from gepa_graph.budget import Budget, BudgetExhausted
from gepa_graph.candidate import Candidate
from gepa_graph.config import OptimizeConfig
from gepa_graph.evaluation import EvalResult, Evaluator
from gepa_graph.example import Example
from gepa_graph.pool import Pool
from gepa_graph.state import OptimizerState
from gepa_graph.strategies import Strategies
from gepa_graph.system import System, node_of
from gepa_graph.turns import Turns


class SearchView:
    """The search as of the last turn taken, never mid-step (see the module docstring)."""

    def __init__(
        self,
        *,
        config: OptimizeConfig,
        trainset: list[Example],
        valset: list[Example],
        modules: list[str],
        system: System,
        strategies: Strategies,
        pool: Pool,
        state: OptimizerState,
        budget: Budget,
        evaluator: Evaluator,
        turns: Turns,
    ) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.trainset = trainset
        self.valset = valset
        self.val_keys = [ex.key for ex in valset]
        self.modules = modules
        self.strategies = strategies
        self.candidates = pool.candidates  # the pool, in order of joining
        self.scores = pool.scores  # candidate id -> validation example key -> score
        self._system = system
        self._pool = pool
        self._state = state
        self._budget = budget
        self._evaluator = evaluator
        self._turns = turns

    @property
    def iteration(self) -> int:
        """Proposals and merges started so far (each takes the next number; the seed is 0).
        With several in flight, the highest started, not the last finished."""
        return self._state.iteration

    @property
    def stale_iterations(self) -> int:
        """Work settled in a row without a new best."""
        return self._pool.stale_iterations

    @property
    def idle_iterations(self) -> int:
        """Work settled in a row that ran nothing new."""
        return self._pool.idle_iterations

    @property
    def best_id(self) -> str:
        """The pool's best candidate (see ``Pool.best_id``)."""
        return self._pool.best_id

    def mean(self, candidate_id: str) -> float:
        """A pooled candidate's mean validation score (see ``Pool.mean``)."""
        return self._pool.mean(candidate_id)

    @property
    def exhausted(self) -> set[str]:
        """Candidates whose last proposals yielded nothing new (see ``Pool.exhausted``)."""
        return self._pool.exhausted

    def known(self, candidate_id: str, examples: Sequence[Example]) -> dict[str, float]:
        """Scores the search has seen, by example key (see ``Pool.known``)."""
        return self._pool.known(candidate_id, examples)

    def is_duplicate(self, candidate_id: str) -> bool:
        """True if the candidate is in the pool or being validated."""
        return self._pool.is_duplicate(candidate_id)

    def node_of(self, module: str) -> str | None:
        """The trace node a module's reflection reads, if the system says."""
        return node_of(self._system, module)

    def budget_stop_reason(self) -> str | None:
        """The budget limit reached (``max_rollouts``, ``max_cost_usd``, ``max_seconds``), or
        None while every limit leaves room: for the stop strategy."""
        return self._budget.stop_reason()

    async def evaluate(self, candidate: Candidate, examples: Sequence[Example]) -> list[EvalResult]:
        """Scores of a candidate on examples; the step after it waits for its turn. Raises
        BudgetExhausted, spending nothing, once the cost or time budget is used up, so work
        in flight stops at its next batch."""
        reason = self._budget.stop_reason()
        if reason in ("max_cost_usd", "max_seconds") and not self._turns.replaying:
            raise BudgetExhausted(reason)
        results = await self._evaluator.evaluate(candidate, examples)
        await self._turns.take()
        self._pool.remember(candidate, examples, results)
        return results

    async def turn(self) -> None:
        """Wait for this step's journaled turn (replay) or record it (live)."""
        await self._turns.take()
