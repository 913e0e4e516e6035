"""System-aware merge: combine two frontier candidates that evolved different modules from a
common ancestor, taking each module from the side that changed it."""

from __future__ import annotations

import math
import random
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gepa_graph.budget import BudgetExhausted, Hold
from gepa_graph.candidate import Candidate
from gepa_graph.events import IterationStarted
from gepa_graph.example import Example

if TYPE_CHECKING:
    from gepa_graph.engine import Engine


@dataclass(frozen=True)
class MergePlan:
    """A merge to try: ``child`` takes each module from whichever of ``left`` and ``right`` changed
    it since their common ``ancestor``."""

    left: str
    right: str
    ancestor: str
    child: Candidate


def ancestors(candidate_id: str, parents: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Every candidate ``candidate_id`` descends from: a merge needs a common ancestor to
    tell which parent changed which module."""
    found: set[str] = set()
    stack = list(parents.get(candidate_id, ()))
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(parents.get(current, ()))
    return found


def merged_prompts(
    left: Candidate, right: Candidate, ancestor: Candidate, left_is_stronger: bool
) -> tuple[dict[str, str], tuple[str, ...]] | None:
    """Per module, the side that changed it from the ancestor; where both did, the stronger
    side's. None when neither side brings a module the other lacks (nothing to combine)."""
    prompts: dict[str, str] = {}
    complementary = False
    for module, base in ancestor.prompts.items():
        mine, theirs = left.prompts[module], right.prompts[module]
        if mine == base and theirs != base:
            prompts[module], complementary = theirs, True
        elif theirs == base and mine != base:
            prompts[module], complementary = mine, True
        else:
            prompts[module] = mine if left_is_stronger else theirs
    if not complementary:
        return None
    changed = tuple(m for m in prompts if prompts[m] != ancestor.prompts[m])
    return prompts, changed


def find_merge(
    frontier: Sequence[str],
    candidates: Mapping[str, Candidate],
    means: Mapping[str, float],
    tried: set[str],
    rng: random.Random,
) -> MergePlan | None:
    """A not-yet-tried merge of two frontier candidates, or None.

    Eligible: neither descends from the other, they share an ancestor that scores no better
    than either, and each brings a module the other left as the ancestor had it.
    """
    parents = {cid: c.parent_ids for cid, c in candidates.items()}
    pairs = [(a, b) for i, a in enumerate(frontier) for b in frontier[i + 1 :]]
    rng.shuffle(pairs)
    for left, right in pairs:
        left_up, right_up = ancestors(left, parents), ancestors(right, parents)
        if left in right_up or right in left_up:
            continue
        shared = sorted(
            (a for a in left_up & right_up if means[a] <= min(means[left], means[right])),
            key=lambda a: (-means[a], a),
        )
        for ancestor in shared:
            merged = merged_prompts(
                candidates[left],
                candidates[right],
                candidates[ancestor],
                left_is_stronger=means[left] >= means[right],
            )
            if merged is None:
                continue
            prompts, changed = merged
            child = Candidate(
                prompts=prompts, parent_ids=(left, right), origin="merge", changed_modules=changed
            )
            if child.id in tried or child.id in candidates:
                continue
            return MergePlan(left=left, right=right, ancestor=ancestor, child=child)
    return None


def balanced_subsample(
    keys: Sequence[str],
    left: Mapping[str, float],
    right: Mapping[str, float],
    size: int,
    rng: random.Random,
) -> list[str]:
    """Up to ``size`` validation keys drawn evenly from where the left wins, the right wins and
    they tie, so the merge is tested where each parent was strong. Only examples both parents
    have run count (score vectors may be partial)."""
    keys = [k for k in keys if k in left and k in right]
    groups = (
        [k for k in keys if left[k] > right[k]],
        [k for k in keys if right[k] > left[k]],
        [k for k in keys if left[k] == right[k]],
    )
    share = max(1, math.ceil(size / 3))
    chosen: list[str] = []
    for group in groups:
        chosen.extend(rng.sample(group, min(share, len(group), size - len(chosen))))
    rest = [k for k in keys if k not in chosen]
    chosen.extend(rng.sample(rest, min(len(rest), size - len(chosen))))
    return chosen


class Merge:
    """GEPA's merge as a proposer: when the merge scheduler has one due, run the merged child
    on a balanced validation subsample and validate it if it does no worse there than its
    better parent."""

    def __init__(self) -> None:
        self.search: Engine
        self.tried_merges: set[str] = set()  # merge children already attempted

    def start(
        self, search: Engine, room: int | None, alone: bool
    ) -> Coroutine[Any, Any, None] | None:
        """The due merge's work, or None (merge off, none due, or it does not fit)."""
        self.search = search
        planned = self._plan_merge(room)
        return None if planned is None else self._merge(*planned)

    def _plan_merge(self, room: int | None) -> tuple[int, MergePlan, list[Example], Hold] | None:
        """A due merge that fits ``room``: (iteration, plan, subsample, rollouts held)."""
        search = self.search
        if not search.config.use_merge:
            return None
        if room is not None and room < search.config.merge_subsample_size + len(search.valset):
            return None
        plan = search.strategies.merge_scheduler.next_merge(search, self.tried_merges)
        if plan is None:
            return None
        search.state.iteration += 1
        self.tried_merges.add(plan.child.id)
        search.emit(
            IterationStarted(
                iteration=search.state.iteration, kind="merge", parent_ids=(plan.left, plan.right)
            )
        )
        keys = balanced_subsample(
            search.val_keys,
            search.scores[plan.left],
            search.scores[plan.right],
            search.config.merge_subsample_size,
            search.rng,
        )
        by_key = {ex.key: ex for ex in search.valset}
        subsample = [by_key[k] for k in keys]
        hold = search.budget.hold(search.unknown(plan.child, subsample) + len(search.valset))
        return search.state.iteration, plan, subsample, hold

    async def _merge(
        self, iteration: int, plan: MergePlan, subsample: list[Example], hold: Hold
    ) -> None:
        """Run a merge child on its subsample; if it does no worse than its better parent
        there, validate it."""
        search = self.search
        search.turns.own(str(iteration))
        search.budget.charge(hold)
        await search.turns.take()
        child, parents = plan.child, (plan.left, plan.right)
        try:
            results = await search.evaluate(child, subsample)
        except BudgetExhausted as exc:
            search.reject(
                "merge", "budget_exhausted", str(exc), parent_ids=parents, iteration=iteration
            )
            return
        finally:
            search.budget.release(hold)
        merged = sum(r.score for r in results)
        best_parent = max(sum(search.scores[p][ex.key] for ex in subsample) for p in parents)
        if merged < best_parent:
            search.reject(
                "merge",
                "worse_than_parents_on_subsample",
                f"subsample score {merged:g} vs best parent {best_parent:g}",
                parent_ids=parents,
                iteration=iteration,
            )
        elif child.id in search.candidates or child.id in search.validating:
            search.reject(
                "merge",
                "duplicate_candidate",
                f"same prompts as {child.id}",
                parent_ids=parents,
                iteration=iteration,
            )
        else:
            search.strategies.module_selector.inherit(child.id, plan.left)
            try:
                await search.admit(child, iteration)
            except BudgetExhausted:
                pass  # the run is at its cost or time limit: the merge ends unvalidated
        search.finished(spent=True)
