"""System-aware merge as a proposer: combine two frontier candidates that evolved different
modules from a common ancestor, taking each module from the side that changed it (lineage.py
finds such pairs; the merge scheduler says when one is due)."""

from __future__ import annotations

from gepa_graph.example import Example
from gepa_graph.lineage import MergePlan, balanced_subsample
from gepa_graph.proposers.base import Outcome, ProposerView, Told, Work


class Merge:
    """GEPA's merge as a proposer: when the merge scheduler has one due, run the merged child
    on a balanced validation subsample and validate it if it does no worse there than its
    better parent."""

    def __init__(self) -> None:
        self.tried_merges: set[str] = set()  # merge children already attempted

    def ask(self, view: ProposerView, room: int | None, alone: bool) -> Work | None:
        """The due merge's work, or None (merge off, none due, or it does not fit): the merge
        and its balanced subsample are drawn now."""
        config = view.config
        if not config.use_merge:
            return None
        if room is not None and room < config.merge_subsample_size + len(view.valset):
            return None
        plan = view.strategies.merge_scheduler.next_merge(view, self.tried_merges)
        if plan is None:
            return None
        self.tried_merges.add(plan.child.id)
        keys = balanced_subsample(
            view.val_keys,
            view.scores[plan.left],
            view.scores[plan.right],
            config.merge_subsample_size,
            view.rng,
        )
        by_key = {ex.key: ex for ex in view.valset}
        subsample = [by_key[k] for k in keys]
        unknown = len(subsample) - len(view.known(plan.child.id, subsample))
        return Work(
            "merge",
            (plan.left, plan.right),
            (),
            unknown + len(view.valset),
            lambda: self._run(view, plan, subsample),
        )

    def tell(self, work: Work, told: Told) -> None:
        """Nothing to learn: a merge is tried once whatever becomes of it."""

    @staticmethod
    async def _run(view: ProposerView, plan: MergePlan, subsample: list[Example]) -> Outcome:
        """The merge child on its subsample: a child to validate if it does no worse there
        than its better parent."""
        child = plan.child
        results = await view.evaluate(child, subsample)
        merged = sum(r.score for r in results)
        parents = (plan.left, plan.right)
        best_parent = max(sum(view.scores[p][ex.key] for ex in subsample) for p in parents)
        if merged < best_parent:
            detail = f"subsample score {merged:g} vs best parent {best_parent:g}"
            return Outcome(child, ("worse_than_parents_on_subsample", detail, None))
        if view.is_duplicate(child.id):
            return Outcome(child, ("duplicate_candidate", f"same prompts as {child.id}", None))
        return Outcome(child)
