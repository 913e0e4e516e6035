import random

from gepa_graph.candidate import Candidate
from gepa_graph.proposers.merge import (
    ancestors,
    balanced_subsample,
    find_merge,
    merged_prompts,
)


def _lineage():
    seed = Candidate(prompts={"plan": "p0", "answer": "a0"})
    left = seed.mutate("plan", "p1")
    right = seed.mutate("answer", "a1")
    grandchild = left.mutate("plan", "p2")
    return seed, left, right, grandchild


def test_merge_takes_each_module_from_the_side_that_changed_it():
    seed, left, right, _ = _lineage()
    prompts, changed = merged_prompts(left, right, seed, left_is_stronger=True)
    assert prompts == {"plan": "p1", "answer": "a1"}
    assert set(changed) == {"plan", "answer"}


def test_merge_of_candidates_that_changed_the_same_module_only_is_refused():
    seed = Candidate(prompts={"plan": "p0", "answer": "a0"})
    one, two = seed.mutate("plan", "x"), seed.mutate("plan", "y")
    assert merged_prompts(one, two, seed, left_is_stronger=True) is None


def test_find_merge_needs_a_shared_ancestor_and_no_direct_descent():
    seed, left, right, grandchild = _lineage()
    pool = {c.id: c for c in (seed, left, right, grandchild)}
    means = {seed.id: 0.1, left.id: 0.5, right.id: 0.5, grandchild.id: 0.6}
    assert ancestors(grandchild.id, {c.id: c.parent_ids for c in pool.values()}) == {left.id, seed.id}
    # left is grandchild's ancestor: never merged with it.
    assert find_merge([left.id, grandchild.id], pool, means, set(), random.Random(0)) is None
    plan = find_merge([grandchild.id, right.id], pool, means, set(), random.Random(0))
    assert plan is not None and plan.ancestor == seed.id
    assert plan.child.prompts == {"plan": "p2", "answer": "a1"}
    assert set(plan.child.parent_ids) == {grandchild.id, right.id}
    # Once tried, the same merge is not proposed again.
    assert find_merge([grandchild.id, right.id], pool, means, {plan.child.id}, random.Random(0)) is None


def test_ancestor_scoring_above_a_parent_is_not_used():
    seed, left, right, _ = _lineage()
    pool = {c.id: c for c in (seed, left, right)}
    means = {seed.id: 0.9, left.id: 0.5, right.id: 0.6}
    assert find_merge([left.id, right.id], pool, means, set(), random.Random(0)) is None


def test_balanced_subsample_draws_from_wins_losses_and_ties():
    keys = [f"k{i}" for i in range(9)]
    left = {k: (1.0 if i < 3 else 0.0) for i, k in enumerate(keys)}
    right = {k: (1.0 if 3 <= i < 6 else 0.0) for i, k in enumerate(keys)}
    chosen = balanced_subsample(keys, left, right, 6, random.Random(1))
    assert len(chosen) == len(set(chosen)) == 6
    groups = [sum(1 for k in chosen if keys.index(k) // 3 == g) for g in range(3)]
    assert groups == [2, 2, 2]
