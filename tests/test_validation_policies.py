"""Validation policies (gepa_graph/strategies/validation.py, sequential.py, bounds.py): racing,
the validation economy's sequential policies and their error rates on synthetic score matrices
where the truth is known, partial vectors, and final selection completing the contenders."""

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

import gepa_graph as gg
from gepa_graph import pareto
from gepa_graph.candidate import Candidate
from gepa_graph.strategies import (
    BestBound,
    Lazy,
    ParentTest,
    Predicted,
    Racing,
    Search,
    Sequential,
    ValidationPolicy,
    Verdict,
    contenders,
)
from gepa_graph.strategies.base import scores_of
from gepa_graph.strategies.bounds import upper_total
from gepa_graph.testing.rules import RuleTask
from tests.fake_search import FakeSearch

# ---------------------------------------------------------------- racing validation


def _racing_search(
    child_scores: list[float], best_scores: list[float]
) -> tuple[FakeSearch, Candidate]:
    val = [f"v{i}" for i in range(16)]
    seed = Candidate(prompts={"a": "seed"})
    child = seed.mutate("a", "child")
    search = FakeSearch(val=val, outcomes={child.id: dict(zip(val, child_scores))})
    search.candidates[seed.id] = seed
    search.scores[seed.id] = dict(zip(val, best_scores))
    return search, child


def test_racing_stops_a_child_that_can_neither_lead_nor_set_a_per_example_best() -> None:
    # The pool already scores 1 everywhere but one example; the child scores 0 everywhere.
    search, child = _racing_search([0.0] * 16, [1.0] * 15 + [0.0])
    verdict = asyncio.run(Racing().validate(search, [child]))[0]
    assert verdict.rejection is None and len(verdict.scores) < 16
    # The quarter stage (4 examples) leaves 12: the best it could still reach is 12/16 < 15/16,
    # but the unsolved example may be among them; it stops once it has run that one or the
    # half stage leaves it unable to lead.
    assert sum(len(keys) for _, keys in search.ran) == len(verdict.scores)


def test_racing_runs_a_promising_child_on_everything() -> None:
    search, child = _racing_search([1.0] * 16, [0.5] * 16)
    verdict = asyncio.run(Racing().validate(search, [child]))[0]
    assert len(verdict.scores) == 16
    # Stages are nested (each a prefix of the next; the evaluator's cache runs each example once).
    stages = [keys for _, keys in search.ran]
    assert [len(k) for k in stages] == [4, 8, 16]
    assert all(later[: len(earlier)] == earlier for earlier, later in zip(stages, stages[1:]))


def test_racing_keeps_going_while_a_new_per_example_best_is_possible() -> None:
    # The child cannot beat the best mean, but no candidate has solved v15 yet.
    search, child = _racing_search([0.0] * 15 + [1.0], [1.0] * 15 + [0.0])
    verdict = asyncio.run(Racing().validate(search, [child]))[0]
    assert verdict.scores.get("v15", 1.0) == 1.0  # it ran until it found the example (or all)


# ---------------------------------------------------------------- partial vectors


def test_partial_vectors_on_fronts_but_never_best() -> None:
    keys = ["x", "y", "z"]
    scores = {"full": {"x": 0.5, "y": 0.5, "z": 0.5}, "part": {"x": 1.0}}
    assert pareto.fronts(scores, keys) == {"x": {"part"}, "y": {"full"}, "z": {"full"}}
    assert pareto.mean_score(scores["part"], keys) == 1.0  # mean of what it ran
    assert pareto.best_candidate(scores, keys, ["full", "part"]) == "full"
    assert pareto.front_weights(scores, keys, ["full", "part"]) == {"full": 2, "part": 1}
    assert pareto.pareto_aggregate(scores, keys) == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert not pareto.is_complete(scores["part"], keys) and pareto.is_complete(scores["full"], keys)


# ---------------------------------------------------------------- the bound


def test_upper_total_is_exact_when_complete_and_never_above_the_top_score() -> None:
    keys = ["a", "b", "c", "d"]
    anchor = dict.fromkeys(keys, 1.0)
    assert upper_total({k: 0.5 for k in keys}, anchor, keys) == 2.0
    # Two examples left, the anchor scores 1 on them: never above 1 + 2 x the top score.
    assert upper_total({"a": 1.0, "b": 0.0}, anchor, keys, high=1.0) == 3.0
    # A child that trails its anchor by 1 per example run is predicted to go on trailing.
    low = upper_total({"a": 0.0, "b": 0.0}, anchor, keys, z=0.0)
    assert low == pytest.approx(0.0)


# ---------------------------------------------------------------- sequential policies


def _pool(
    parent_scores: list[float],
    best_scores: list[float] | None = None,
    child_scores: list[float] | None = None,
) -> tuple[FakeSearch, Candidate]:
    """A pool of the seed (the best) and a parent, and a child with scripted outcomes."""
    val = [f"v{i}" for i in range(len(parent_scores))]
    seed = Candidate(prompts={"a": "seed"})
    parent = seed.mutate("a", "parent")
    child = parent.mutate("a", "child")
    search = FakeSearch(val=val, outcomes={child.id: dict(zip(val, child_scores or []))})
    search.candidates = {seed.id: seed, parent.id: parent}
    search.scores = {
        seed.id: dict(zip(val, best_scores or parent_scores)),
        parent.id: dict(zip(val, parent_scores)),
    }
    return search, child


def _verdict(policy: ValidationPolicy, search: FakeSearch, child: Candidate) -> Verdict:
    return asyncio.run(policy.validate(search, [child]))[0]


def test_best_bound_runs_the_parents_failures_first_and_stops_a_child_that_cannot_lead() -> None:
    # The parent fails v0..v3; the best (seed) scores 28/30; the child fixes one failure.
    parent = [0.0] * 4 + [1.0] * 26
    search, child = _pool(parent, [0.0, 0.0] + [1.0] * 28, [1.0] + [0.0] * 3 + [1.0] * 26)
    verdict = _verdict(BestBound(), search, child)
    # After the parent's 4 failures it can reach 1 + 26 = 27 < 28 at most: it stops there and
    # joins with those 4 scores (it may still be best on v0).
    assert verdict.rejection is None
    assert sorted(verdict.scores) == ["v0", "v1", "v2", "v3"] and search.rollouts == 4


def test_parent_test_rejects_a_child_that_fixes_none_of_its_parents_failures() -> None:
    parent = [0.0] * 4 + [1.0] * 26
    search, child = _pool(parent, child_scores=[0.0] * 4 + [1.0] * 26)
    verdict = _verdict(ParentTest(), search, child)
    assert verdict.rejection is not None and search.rollouts == 4
    assert verdict.rejection[0] == "cannot_beat_on_validation"


def test_a_child_that_can_lead_runs_on_everything_in_nested_stages() -> None:
    parent = [0.0] * 4 + [1.0] * 26
    search, child = _pool(parent, child_scores=[1.0] * 30)
    verdict = _verdict(BestBound(), search, child)
    assert len(verdict.scores) == 30 and search.rollouts == 30
    stages = [keys for _, keys in search.ran]
    assert all(later[: len(earlier)] == earlier for earlier, later in zip(stages, stages[1:]))
    assert set(stages[0]) == {"v0", "v1", "v2", "v3"}


def test_the_seed_and_small_validation_sets_run_on_everything() -> None:
    search, _ = _pool([1.0] * 4)
    seed = next(iter(search.candidates.values()))
    search.outcomes[seed.id] = dict.fromkeys(search.val_keys, 1.0)
    assert len(_verdict(BestBound(), search, seed).scores) == 4


# ---------------------------------------------------------------- error rates, known truth

N_VAL, CHILDREN = 30, 400


def _synthetic(
    seed: int,
) -> tuple[list[str], dict[str, float], dict[str, float], list[dict[str, float]]]:
    """A pool whose best and parent have known vectors, and children drawn around the parent:
    each fixes a parent failure with probability ``gain`` and breaks a success with
    probability ``loss`` (both drawn per child), so the truth (the child's full total against
    the best's) is known for every child."""
    rng = random.Random(seed)
    val = [f"v{i}" for i in range(N_VAL)]
    best = {k: float(rng.random() < 0.8) for k in val}
    parent = {k: float(rng.random() < rng.choice([0.6, 0.75, 0.8])) for k in val}
    children = []
    for _ in range(CHILDREN):
        gain, loss = rng.uniform(0, 0.5), rng.uniform(0, 0.15)
        children.append(
            {
                k: (float(rng.random() < gain) if s == 0.0 else float(rng.random() >= loss))
                for k, s in parent.items()
            }
        )
    return val, best, parent, children


def _rates(policy_class: type[Sequential], seed: int) -> dict[str, float]:
    val, best, parent, children = _synthetic(seed)
    seed_c = Candidate(prompts={"a": "best"})
    parent_c = seed_c.mutate("a", "parent")
    # What the policy tests against: the pool's best total, or the parent's.
    target = sum(parent.values())
    if policy_class.target == "best":
        target = max(sum(best.values()), target)
    better = worse = false_reject = false_admit = ran = 0
    for i, truth in enumerate(children):
        child = parent_c.mutate("a", f"child {i}")
        search = FakeSearch(val=val, outcomes={child.id: truth})
        search.candidates = {seed_c.id: seed_c, parent_c.id: parent_c}
        search.scores = {seed_c.id: best, parent_c.id: parent}
        verdict = _verdict(policy_class(), search, child)
        stopped = verdict.rejection is not None or len(verdict.scores) < N_VAL
        ran += search.rollouts
        if sum(truth.values()) > target:
            better += 1
            false_reject += stopped
        else:
            worse += 1
            false_admit += not stopped
    return {
        "false_rejection": false_reject / max(better, 1),
        "false_admission": false_admit / max(worse, 1),
        "saved": 1 - ran / (N_VAL * CHILDREN),
        "better": better,
    }


@pytest.mark.parametrize(
    ("policy", "false_admission", "saved"), [(BestBound, 0.15, 0.25), (ParentTest, 0.2, 0.15)]
)
def test_exact_policies_never_stop_a_truly_better_child_and_save_rollouts(
    policy: type[Sequential], false_admission: float, saved: float
) -> None:
    rates = [_rates(policy, seed) for seed in (0, 1, 2)]
    assert all(r["better"] >= 5 for r in rates)  # each matrix holds children of both kinds
    assert all(r["false_rejection"] == 0.0 for r in rates)  # the bound is exact
    assert max(r["false_admission"] for r in rates) <= false_admission
    assert min(r["saved"] for r in rates) >= saved


@pytest.mark.parametrize(
    ("policy", "false_rejection", "saved"), [(Predicted, 0.35, 0.2), (Lazy, 0.9, 0.5)]
)
def test_statistical_policies_trade_false_rejections_for_rollouts(
    policy: type[Sequential], false_rejection: float, saved: float
) -> None:
    rates = [_rates(policy, seed) for seed in (0, 1, 2)]
    assert 0.0 < max(r["false_rejection"] for r in rates) <= false_rejection
    assert min(r["saved"] for r in rates) >= saved


# ---------------------------------------------------------------- final selection


def test_contenders_are_partial_candidates_whose_bound_beats_the_best() -> None:
    val = [f"v{i}" for i in range(10)]
    seed = Candidate(prompts={"a": "s"})
    hopeful, hopeless = seed.mutate("a", "h"), seed.mutate("a", "x")
    search = FakeSearch(val=val)
    search.candidates = {c.id: c for c in (seed, hopeful, hopeless)}
    search.scores = {
        seed.id: dict.fromkeys(val, 0.5),
        hopeful.id: dict.fromkeys(val[:4], 1.0),
        hopeless.id: dict.fromkeys(val[:8], 0.0),
    }
    assert [c.id for c in contenders(search)] == [hopeful.id]
    assert search.best_id == seed.id  # a partial vector is never the best


class FirstThree:
    """A validation policy that runs mutation children on three examples only."""

    async def validate(self, search: Search, candidates: Sequence[Candidate]) -> list[Verdict]:
        """Seed: everything; any other candidate: the first three examples."""
        verdicts = []
        for c in candidates:
            examples = search.valset if c.origin == "seed" else search.valset[:3]
            verdicts.append(Verdict(scores_of(await search.evaluate(c, examples))))
        return verdicts


def test_final_selection_completes_the_contenders_so_the_best_is_on_the_full_set(
    tmp_path: Path,
) -> None:
    task = RuleTask(n_types=6, modules=("a", "b"))
    val = task.examples(12, seed=2, prefix="v")
    result = gg.optimize(
        task.system(),
        task.examples(18, seed=1, prefix="t"),
        val,
        metric=task.metric,
        reflection_lm=task.reflection_lm(),
        max_rollouts=2000,
        config=gg.OptimizeConfig(max_iterations=12, use_merge=False),
        strategies={"validation": FirstThree()},
        run_dir=tmp_path / "r",
        progress=False,
    )
    keys = [str(ex["id"]) for ex in val]
    complete = [c for c in result.candidates if len(c.val_scores) == len(keys)]
    # Some children were completed by final selection, not by the policy.
    assert any(c.origin == "mutation" for c in complete)
    assert result.best_score == max(c.mean_score for c in complete)
    assert len(result.candidate(result.best_id).val_scores) == len(keys)
    # No partial candidate is left that could still beat the best.
    search = FakeSearch(val=keys)
    search.candidates = {
        c.id: Candidate(prompts=c.prompts, parent_ids=c.parent_ids, origin=c.origin)
        for c in result.candidates
    }
    search.scores = {c.id: dict(c.val_scores) for c in result.candidates}
    assert contenders(search) == []
    assert pareto.is_complete(search.scores[search.best_id], keys)
