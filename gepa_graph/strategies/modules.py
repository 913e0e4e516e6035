"""Module selectors: which module(s) a proposal rewrites."""

from __future__ import annotations

import math

from gepa_graph.candidate import Candidate
from gepa_graph.strategies.base import ModuleSelector, ProposalOutcome, Search


class RoundRobin:
    """Each lineage cycles through the modules. A child starts after the module that made it;
    an iteration skipped because the parent was perfect on its minibatch keeps the turn."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def select(self, search: Search, parent: Candidate) -> tuple[str, ...]:
        """The lineage's next module in turn."""
        index = self._next.get(parent.id, 0) % len(search.modules)
        self._next[parent.id] = index + 1
        return (search.modules[index],)

    def update(
        self, search: Search, parent: Candidate, modules: tuple[str, ...], outcome: ProposalOutcome
    ) -> None:
        """Give a skipped turn back; an accepted child starts after the module that made it."""
        index = search.modules.index(modules[-1])
        if outcome.status == "skipped" and self._next.get(parent.id) == index + 1:
            self._next[parent.id] = index
        if outcome.status == "accepted" and outcome.child_id is not None:
            self._next[outcome.child_id] = index + 1

    def inherit(self, child_id: str, parent_id: str) -> None:
        """A merge child continues its first parent's turn."""
        self._next[child_id] = self._next.get(parent_id, 0)


class AllModules(RoundRobin):
    """Every proposal is joint: one reflection per module on the same traces, one child."""

    def select(self, search: Search, parent: Candidate) -> tuple[str, ...]:
        """Every module, as one joint proposal."""
        return tuple(search.modules)


class Adaptive(RoundRobin):
    """Round robin that escalates to a joint proposal of the implicated modules when a
    parent's single-module children keep tying it on the minibatch (``ties`` in a row) while the
    feedback names failures in several modules: the signature of modules that must change
    together, where no single rewrite can win a minibatch on its own."""

    def __init__(self, ties: int = 2) -> None:
        super().__init__()
        self.ties = ties
        self._ties: dict[str, int] = {}
        self._implicated: dict[str, tuple[str, ...]] = {}

    def select(self, search: Search, parent: Candidate) -> tuple[str, ...]:
        """The implicated modules together once single-module children kept tying the parent,
        else the next module in turn."""
        implicated = self._implicated.get(parent.id, ())
        if self._ties.get(parent.id, 0) >= self.ties and len(implicated) > 1:
            self._ties[parent.id] = 0
            return implicated
        return super().select(search, parent)

    def update(
        self, search: Search, parent: Candidate, modules: tuple[str, ...], outcome: ProposalOutcome
    ) -> None:
        """Count ties of single-module children and remember which modules the feedback
        implicated; any other outcome resets the count."""
        if len(modules) == 1:
            super().update(search, parent, modules, outcome)
        if outcome.status == "tied" and len(modules) == 1:
            self._ties[parent.id] = self._ties.get(parent.id, 0) + 1
            self._implicated[parent.id] = outcome.implicated
        elif outcome.status not in ("skipped", "invalid"):
            self._ties[parent.id] = 0
        if outcome.status == "accepted" and outcome.child_id is not None and len(modules) > 1:
            self._next[outcome.child_id] = self._next.get(parent.id, 0)


class Bandit(RoundRobin):
    """Budget shifted toward modules still improving: UCB1 over modules, rewarded 1 when a
    module's rewrite produced a child that raised its parent's validation mean (0 otherwise),
    with old pulls and rewards decaying so a module that stopped improving loses its share."""

    def __init__(self, decay: float = 0.9) -> None:
        super().__init__()
        self.decay = decay
        self._pulls: dict[str, float] = {}
        self._reward: dict[str, float] = {}

    def select(self, search: Search, parent: Candidate) -> tuple[str, ...]:
        """Each module once in turn, then the module with the highest UCB1 score."""
        untried = [m for m in search.modules if self._pulls.get(m, 0.0) == 0.0]
        if untried:
            return super().select(search, parent)
        total = sum(self._pulls.values())

        def ucb(module: str) -> float:
            pulls = self._pulls[module]
            return self._reward[module] / pulls + math.sqrt(2 * math.log(total) / pulls)

        return (max(search.modules, key=lambda m: (ucb(m), -search.modules.index(m))),)

    def update(
        self, search: Search, parent: Candidate, modules: tuple[str, ...], outcome: ProposalOutcome
    ) -> None:
        """Decay every module's pulls and rewards, then reward the rewritten modules when the
        child raised its parent's validation mean."""
        super().update(search, parent, modules, outcome)
        if outcome.status in ("skipped", "invalid"):
            return
        for module in search.modules:
            self._pulls[module] = self._pulls.get(module, 0.0) * self.decay
            self._reward[module] = self._reward.get(module, 0.0) * self.decay
        for module in modules:
            self._pulls[module] += 1.0
            self._reward[module] += float(outcome.gain > 0)


MODULE_SELECTORS: dict[str, type[ModuleSelector]] = {
    "round_robin": RoundRobin,
    "all": AllModules,
    "adaptive": Adaptive,
    "bandit": Bandit,
}
