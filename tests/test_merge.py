import random

from gepa_graph.candidate import Candidate
from gepa_graph.lineage import (
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
    assert ancestors(grandchild.id, {c.id: c.parent_ids for c in pool.values()}) == {
        left.id,
        seed.id,
    }
    # left is grandchild's ancestor: never merged with it.
    assert find_merge([left.id, grandchild.id], pool, means, set(), random.Random(0)) is None
    plan = find_merge([grandchild.id, right.id], pool, means, set(), random.Random(0))
    assert plan is not None and plan.ancestor == seed.id
    assert plan.child.prompts == {"plan": "p2", "answer": "a1"}
    assert set(plan.child.parent_ids) == {grandchild.id, right.id}
    # Once tried, the same merge is not proposed again.
    assert (
        find_merge([grandchild.id, right.id], pool, means, {plan.child.id}, random.Random(0))
        is None
    )


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


def test_balanced_subsample_with_partial_vectors_uses_only_examples_both_parents_ran():
    keys = [f"k{i}" for i in range(9)]
    full = {k: (1.0 if i < 3 else 0.0) for i, k in enumerate(keys)}
    partial = {k: 1.0 for k in keys[2:6]}  # a raced-out candidate: four examples only
    chosen = balanced_subsample(keys, full, partial, 6, random.Random(1))
    assert sorted(chosen) == keys[2:6]
    assert sorted(balanced_subsample(keys, partial, full, 3, random.Random(2))) != []
    assert set(balanced_subsample(keys, partial, full, 3, random.Random(2))) <= set(keys[2:6])


def test_partial_vectors_in_the_pool_end_to_end(tmp_path):
    """A validation policy that runs mutation children on half the validation set only: the
    pool then holds partial vectors, and selection, fronts, merge and best must cope."""
    import asyncio

    import gepa_graph as gg
    from gepa_graph import pareto
    from gepa_graph.events import IterationStarted
    from gepa_graph.strategies import Verdict
    from gepa_graph.testing.rules import RuleTask

    class HalfValidation:
        async def validate(self, search, candidates):
            async def one(candidate):
                examples = search.valset
                if candidate.origin == "mutation":
                    examples = examples[: len(examples) // 2]
                results = await search.evaluate(candidate, examples)
                return Verdict({r.example_key: r.score for r in results})

            return list(await asyncio.gather(*(one(c) for c in candidates)))

    task = RuleTask(n_types=6, modules=("a", "b"))
    events = []
    result = gg.optimize(
        task.system(),
        task.examples(18, seed=1, prefix="t"),
        task.examples(12, seed=2, prefix="v"),
        metric=task.metric,
        reflection_lm=task.reflection_lm(),
        max_rollouts=300,
        # One proposal at a time: what the pool holds when a merge is due does not depend
        # on how fast a loaded machine runs the proposals in flight.
        config=gg.OptimizeConfig(seed=1, parallel_proposals=1),
        strategies={"validation": HalfValidation()},
        run_dir=tmp_path / "r",
        progress=False,
        listeners=[events.append],
    )
    partial = [
        c for c in result.candidates if not pareto.is_complete(c.val_scores, result.val_keys)
    ]
    assert partial and all(len(c.val_scores) == 6 for c in partial)
    assert all(c.origin == "mutation" for c in partial)
    # Only complete vectors can be best (here: the seed and the merges).
    best = result.candidate(result.best_id)
    assert pareto.is_complete(best.val_scores, result.val_keys)
    # Partial candidates were selected as parents (they win fronts on the half they ran).
    parents = {p for e in events if isinstance(e, IterationStarted) for p in e.parent_ids}
    assert parents & {c.id for c in partial}
    # Merges of partial parents are tested on the examples both ran, and validated in full.
    merged = [c for c in result.candidates if c.origin == "merge"]
    assert merged and all(pareto.is_complete(c.val_scores, result.val_keys) for c in merged)
