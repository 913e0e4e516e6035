"""What the engine asks of a way of making children, and what a proposer sees of the search.

Ask and tell, as in Optuna: the engine asks a proposer for work (``ask``), from the search as it
is now; the proposer plans it (every random draw there, in the engine's main task, so a run stays
reproducible) and hands back data, a ``Work``: its kind, parents, modules, worst-case rollouts,
and the coroutine that runs it to an ``Outcome`` (a child with its evidence, or why there is
none). The engine alone numbers the work, holds and charges its rollouts, takes its journaled
turns, emits its events, rejects or validates its child, and tells the proposer what became of
it (``tell``). A proposer reads the search only through ``ProposerView`` and keeps its own memory.
Two exist: reflective mutation (mutation.py) and merge (merge.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from gepa_graph.candidate import Candidate
from gepa_graph.example import Example
from gepa_graph.strategies.base import Search

if TYPE_CHECKING:
    from gepa_graph.evaluation import EvalResult
    from gepa_graph.proposers.reflective import Reflection
    from gepa_graph.strategies import Strategies

# What the engine tells a proposer about its work: "unfinished" (the budget ran out first),
# "rejected" (its outcome's rejection was recorded), "parent_rejected" (its parent, still being
# validated when it started, did not join the pool), "validating" (its child's validation
# starts now), "joined" / "not_joined" (the validation's verdict).
Kind = Literal["mutation", "merge"]  # the kinds of work
Told = Literal["unfinished", "rejected", "parent_rejected", "validating", "joined", "not_joined"]


class ProposerView(Search, Protocol):
    """The search as a proposer sees it: the strategies' view, plus the strategies themselves
    and the few acts a proposal needs mid-way. Reads see the search as of the last turn taken."""

    strategies: Strategies

    def node_of(self, module: str) -> str | None:
        """The trace node a module's reflection reads, if the system says."""
        ...

    def is_duplicate(self, candidate_id: str) -> bool:
        """True if a candidate with the same prompts is in the pool or being validated."""
        ...

    async def turn(self) -> None:
        """Wait for this step's journaled turn: a proposal calls it after awaiting anything
        outside the view (a reflection), before acting on what came back."""
        ...


@dataclass(frozen=True)
class MinibatchRun:
    """A candidate's results on a minibatch: evidence the engine reports when work settles."""

    candidate: Candidate
    examples: Sequence[Example]
    results: Sequence[EvalResult]


@dataclass
class Outcome:
    """What a piece of work came to: a ``child`` to validate, or a ``rejection`` (reason,
    detail, the proposed text), with the evidence the engine reports for it.

    ``productive``: it ran rollouts not run before (the idle counter the stop conditions read
    counts work that did not). ``novel``: for a proposal from one parent, whether it brought
    anything new (fresh rollouts, a child never proposed before); parents whose proposals bring
    nothing new several times in a row count as exhausted. None: not counted (a merge).
    ``after``: a verdict the child's validation waits for (its parent's, still being validated).
    """

    child: Candidate | None = None
    rejection: tuple[str, str, str | None] | None = None
    parent_minibatch: MinibatchRun | None = None
    reflections: list[tuple[str, Reflection]] = field(default_factory=list)
    child_minibatch: MinibatchRun | None = None
    productive: bool = True
    novel: bool | None = None
    after: asyncio.Future[bool] | None = None


@dataclass(eq=False)
class Work:
    """One piece of work a proposer planned: what the engine needs to number it, hold its
    worst-case ``rollouts``, announce it and settle it; ``run`` starts it."""

    kind: Kind
    parent_ids: tuple[str, ...]
    modules: tuple[str, ...]  # the modules it rewrites (a merge: none named)
    rollouts: int
    run: Callable[[], Awaitable[Outcome]]


@runtime_checkable
class Proposer(Protocol):
    """One way of making children (a mutation, a merge)."""

    def ask(self, view: ProposerView, room: int | None, alone: bool) -> Work | None:
        """Plan one piece of work now, or None when nothing worth starting fits: ``room`` is
        the rollouts work may still plan on (None: no rollout budget), ``alone`` whether
        nothing else is in flight."""
        ...

    def tell(self, work: Work, told: Told) -> None:
        """Learn what became of ``work`` (see ``Told``)."""
        ...


def shown(texts: dict[str, str]) -> str | None:
    """A proposal's text as a rejection records it: the module's text, or for a joint
    proposal each module's text under its name."""
    if not texts:
        return None
    if len(texts) == 1:
        return next(iter(texts.values()))
    return "\n\n".join(f"[{module}]\n{text}" for module, text in texts.items())
