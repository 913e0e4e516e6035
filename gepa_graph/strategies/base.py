"""What every strategy sees of the search, and the protocol each kind of strategy follows.

Strategies decide; the engine acts. A strategy reads the search through ``Search`` (never
writes it) and keeps its own state, so a run stays reproducible as long as each strategy draws
its randomness from ``search.rng`` and depends only on results, never on timing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from gepa_graph.candidate import Candidate
from gepa_graph.config import OptimizeConfig
from gepa_graph.example import Example

if TYPE_CHECKING:
    from gepa_graph.evaluation import EvalResult
    from gepa_graph.lineage import MergePlan


class Search(Protocol):
    """The search as the strategies see it (``gepa_graph.view.SearchView`` in a run)."""

    config: OptimizeConfig
    rng: random.Random
    trainset: list[Example]
    valset: list[Example]
    val_keys: list[str]
    modules: list[str]
    candidates: dict[str, Candidate]  # the pool, in order of joining
    scores: dict[str, dict[str, float]]  # candidate id -> validation example key -> score

    @property
    def best_id(self) -> str:
        """The pool candidate with the best mean over the whole validation set."""
        ...

    def mean(self, candidate_id: str) -> float:
        """A candidate's mean validation score (over the examples it ran)."""
        ...

    @property
    def exhausted(self) -> set[str]:
        """Candidates whose recent proposals as a parent produced nothing new."""
        ...

    def known(self, candidate_id: str, examples: Sequence[Example]) -> dict[str, float]:
        """Scores already paid for (cached) of a candidate on some examples, by key."""
        ...

    @property
    def iteration(self) -> int:
        """Proposals and merges started so far."""
        ...

    @property
    def stale_iterations(self) -> int:
        """Iterations in a row without a new best."""
        ...

    @property
    def idle_iterations(self) -> int:
        """Iterations in a row that produced nothing new."""
        ...

    def budget_stop_reason(self) -> str | None:
        """Which budget (rollouts, cost, time) is used up, if any."""
        ...

    async def evaluate(self, candidate: Candidate, examples: Sequence[Example]) -> list[EvalResult]:
        """Run a candidate on examples, paying only for those not already cached."""
        ...


@dataclass(frozen=True)
class ProposalOutcome:
    """How a mutation proposal ended, told to the module selector.

    status: "skipped" (parent perfect on the minibatch: nothing was learnt), "invalid"
    (rejected before running: unusable reply, duplicate), "tied" / "worse" (lost to its parent on
    the minibatch), "rejected" (lost on validation), "accepted" (joined the pool).
    ``implicated``: modules whose feedback names a failure on the parent's minibatch.
    """

    status: str
    child_id: str | None = None
    gain: float = 0.0  # child's validation mean minus the parent's, when validated
    implicated: tuple[str, ...] = ()


@runtime_checkable
class MinibatchSampler(Protocol):
    """Chooses the minibatch: what a proposal learns from and the test its child must pass."""

    def sample(self, search: Search, parent: Candidate) -> list[Example]:
        """The training examples the parent runs on and the reflection reads."""


@runtime_checkable
class ParentSelector(Protocol):
    """Chooses the candidate a proposal mutates: how the search balances exploiting the best
    against exploring the rest of the pool."""

    def select(self, search: Search) -> Candidate:
        """The parent of the next proposal."""
        ...


@runtime_checkable
class Selectable(Protocol):
    """A parent selector that can say which candidates it could pick now: what lets a proposal
    in flight notice that its parent has been superseded (``OptimizeConfig.cancel_stale``).
    Optional: a selector without it never makes a proposal stale."""

    def selectable(self, search: Search) -> set[str]:
        """The ids ``select`` could return on the search as it is now."""
        ...


@runtime_checkable
class ModuleSelector(Protocol):
    """Chooses which module(s) a proposal rewrites, learning from how earlier proposals ended."""

    def select(self, search: Search, parent: Candidate) -> tuple[str, ...]:
        """Modules to rewrite: one, or several for a joint proposal (one child)."""

    def update(
        self, search: Search, parent: Candidate, modules: tuple[str, ...], outcome: ProposalOutcome
    ) -> None:
        """Learn how the proposal that rewrote ``modules`` of ``parent`` ended."""
        ...

    def inherit(self, child_id: str, parent_id: str) -> None:
        """A merge child continues its first parent's schedule."""


@runtime_checkable
class Acceptance(Protocol):
    """Decides whether a child earns a validation run, from its and its parent's minibatch
    results: the gate that keeps validation rollouts for promising children."""

    def reject_reason(
        self, parent: Sequence[EvalResult], child: Sequence[EvalResult]
    ) -> str | None:
        """None when the child earns validation, else why not (one line)."""


@dataclass
class Verdict:
    """A validation policy's answer for one candidate: its (possibly partial) scores, and the
    reason it is rejected instead of joining the pool, if it is."""

    scores: dict[str, float]
    rejection: tuple[str, str] | None = None  # reason, detail


@runtime_checkable
class ValidationPolicy(Protocol):
    """Decides how much of the validation set a candidate runs on: the search's largest
    rollout cost."""

    async def validate(self, search: Search, candidates: Sequence[Candidate]) -> list[Verdict]:
        """Run the candidates on (part of) the validation set, concurrently."""


@runtime_checkable
class MergeScheduler(Protocol):
    """Decides when to try combining two frontier lineages."""

    def on_accepted(self, search: Search, count: int) -> None:
        """``count`` mutation children joined the pool this round."""

    def next_merge(self, search: Search, tried: set[str]) -> MergePlan | None:
        """A merge to attempt now, or None."""


@runtime_checkable
class StopCondition(Protocol):
    """Decides when the run ends, checked between steps (never mid-batch)."""

    def stop_reason(self, search: Search) -> str | None:
        """Why the run stops now (a short code such as "max_rollouts"), or None."""
        ...


def scores_of(results: Sequence[EvalResult]) -> dict[str, float]:
    """Evaluation results as the score vector the pool keeps: example key -> score."""
    return {r.example_key: r.score for r in results}
