"""Lineage: what candidates descend from, and the merges their lineages allow.

Core data and pure functions shared by the merge scheduler (strategies/merging.py, which decides
when a merge is due) and the merge proposer (proposers/merge.py, which runs one): neither imports
the other.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gepa_graph.candidate import Candidate


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
