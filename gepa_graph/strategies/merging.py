"""Merge schedulers: when to try combining two frontier lineages (lineage.py finds one,
proposers/merge.py runs it)."""

from __future__ import annotations

from gepa_graph import pareto
from gepa_graph.lineage import MergePlan, find_merge
from gepa_graph.strategies.base import MergeScheduler, Search


def _find(search: Search, tried: set[str]) -> MergePlan | None:
    frontier = pareto.nondominated(search.scores, search.val_keys, list(search.scores))
    means = {cid: search.mean(cid) for cid in search.scores}
    return find_merge(frontier, search.candidates, means, tried, search.rng)


class AfterAccept:
    """GEPA's schedule: one merge attempt due per accepted mutation child, up to
    ``max_merge_attempts`` in the run."""

    def __init__(self) -> None:
        self.due = 0
        self.done = 0

    def on_accepted(self, search: Search, count: int) -> None:
        """One more merge is due per accepted child, within ``max_merge_attempts``."""
        room = search.config.max_merge_attempts - self.done - self.due
        self.due += max(0, min(count, room))

    def next_merge(self, search: Search, tried: set[str]) -> MergePlan | None:
        """A merge of two frontier lineages while one is due."""
        if self.due <= 0:
            return None
        plan = _find(search, tried)
        if plan is not None:
            self.due -= 1
            self.done += 1
        return plan


class OnDiversity:
    """Merge triggered by lineage diversity: attempt one as soon as the front holds two
    lineages that changed disjoint sets of modules since a shared ancestor (so the merge takes
    every change from one side and loses none), whether or not a mutation was just accepted;
    up to ``max_merge_attempts`` in the run."""

    def __init__(self) -> None:
        self.done = 0

    def on_accepted(self, search: Search, count: int) -> None:
        """Nothing: this schedule looks at the front, not at acceptances."""
        pass

    def next_merge(self, search: Search, tried: set[str]) -> MergePlan | None:
        """The first untried merge whose two sides changed disjoint modules; conflicting
        ones are marked tried."""
        if self.done >= search.config.max_merge_attempts:
            return None
        plan = _find(search, tried)
        while plan is not None and not _disjoint(search, plan):
            tried.add(plan.child.id)  # a conflicting merge is not tried later either
            plan = _find(search, tried)
        if plan is not None:
            self.done += 1
        return plan


def _disjoint(search: Search, plan: MergePlan) -> bool:
    base = search.candidates[plan.ancestor].prompts
    left, right = search.candidates[plan.left].prompts, search.candidates[plan.right].prompts
    return not any(left[m] != base[m] and right[m] != base[m] for m in base)


MERGE_SCHEDULERS: dict[str, type[MergeScheduler]] = {
    "after_accept": AfterAccept,
    "diversity": OnDiversity,
}
