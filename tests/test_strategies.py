"""The search strategies (gepa_graph/strategies/) on their own, and the search features of
issue 12 end to end: failure-aware minibatches, joint proposals, no early
stalls, search mode, strategies given as objects."""

import random

import pytest

import gepa_graph as gg
from gepa_graph.candidate import Candidate
from gepa_graph.events import IterationStarted, MinibatchEvaluated, ReflectionCalled
from gepa_graph.metric import Score
from gepa_graph.strategies import (
    Adaptive,
    FailureAwareSampler,
    ProposalOutcome,
    RoundRobin,
    build,
)
from gepa_graph.testing.reflection import ScriptedReflectionLM
from gepa_graph.testing.rules import RuleTask
from tests.fake_search import FakeSearch

# ---------------------------------------------------------------- failure-aware minibatches


def test_failure_aware_sampler_draws_known_failures_and_skips_known_successes():
    train = [f"t{i}" for i in range(10)]
    parent = Candidate(prompts={"a": "p", "b": "q"})
    known = {"t0": 0.0, "t1": 0.0, "t2": 1.0, "t3": 1.0, "t4": 1.0}
    search = FakeSearch(train, cache={parent.id: known}, minibatch_size=6)
    sampler = FailureAwareSampler()
    fresh = []
    for _ in range(5):
        batch = [ex.key for ex in sampler.sample(search, parent)]
        assert len(batch) == len(set(batch)) == 6
        # A third of the minibatch goes to known failures, the rest to examples the parent
        # has not run: never to one it is known to get right.
        assert set(batch[:2]) == {"t0", "t1"} and not set(batch[2:]) & set(known)
        fresh += batch[2:]
    # Epoch coverage: the examples the parent has not run come round evenly.
    assert sorted(fresh) == sorted([f"t{i}" for i in range(5, 10)] * 4)


def test_failure_aware_sampler_rotates_through_known_failures():
    train = [f"t{i}" for i in range(10)]
    parent = Candidate(prompts={"a": "p"})
    known = {"t0": 0.0, "t1": 0.0, "t2": 0.5}
    search = FakeSearch(train, cache={parent.id: known}, minibatch_size=3)
    sampler = FailureAwareSampler()
    firsts = [sampler.sample(search, parent)[0].key for _ in range(6)]
    # One slot for a known failure, the least used one first: each failure in turn.
    assert sorted(firsts) == ["t0", "t0", "t1", "t1", "t2", "t2"]
    assert set(firsts[:3]) == {"t0", "t1", "t2"}


def test_failure_aware_sampler_covers_every_example_for_a_new_parent():
    train = [f"t{i}" for i in range(7)]
    search = FakeSearch(train, minibatch_size=3)
    sampler, parent = FailureAwareSampler(), Candidate(prompts={"a": "p"})
    keys = [ex.key for _ in range(7) for ex in sampler.sample(search, parent)]
    # 21 draws of 7 examples: three full epochs, each example exactly three times.
    assert sorted(keys) == sorted(train * 3)


# ---------------------------------------------------------------- module selection


def test_round_robin_keeps_the_turn_of_a_skipped_iteration():
    search = FakeSearch()
    parent = Candidate(prompts={"a": "p", "b": "q"})
    selector = RoundRobin()
    assert selector.select(search, parent) == ("a",)
    selector.update(search, parent, ("a",), ProposalOutcome("skipped"))
    assert selector.select(search, parent) == ("a",)
    selector.update(search, parent, ("a",), ProposalOutcome("tied"))
    assert selector.select(search, parent) == ("b",)


def test_adaptive_escalates_to_a_joint_proposal_after_ties_implicating_several_modules():
    search = FakeSearch()
    parent = Candidate(prompts={"a": "p", "b": "q"})
    selector = Adaptive(ties=2)
    for _ in range(2):
        modules = selector.select(search, parent)
        assert len(modules) == 1
        selector.update(search, parent, modules, ProposalOutcome("tied", implicated=("a", "b")))
    assert selector.select(search, parent) == ("a", "b")
    # Ties that implicate a single module never escalate.
    other = Candidate(prompts={"a": "x", "b": "y"})
    for _ in range(3):
        modules = selector.select(search, other)
        selector.update(search, other, modules, ProposalOutcome("tied", implicated=("a",)))
    assert len(selector.select(search, other)) == 1


# ---------------------------------------------------------------- end to end


class CoupledTask(RuleTask):
    """Every example needs a rule in module a AND one in module b; no partial credit. So a
    child that rewrites one module never beats its parent on a minibatch."""

    def __init__(self):
        super().__init__(n_types=4, modules=("a", "b"))

    def examples(self, count, seed=0, prefix="ex"):
        rng = random.Random(seed)
        return [
            {
                "id": f"{prefix}{i}",
                "pair": [rng.choice([0, 2]), rng.choice([1, 3])],
                "question": f"q{i}",
            }
            for i in range(count)
        ]

    def answer(self, prompts, example, trace):
        for kind in example["pair"]:
            module = self.owner(kind)
            trace.add(
                "llm",
                node=module,
                inputs={"question": example["question"]},
                outputs={"knows": f"rule-{kind}." in prompts[module]},
            )
        ok = all(f"rule-{k}." in prompts[self.owner(k)] for k in example["pair"])
        return "right" if ok else "wrong"

    def metric(self, example, prediction, trace=None):
        if prediction == "right":
            return Score(value=1.0, feedback="correct")
        missing = {self.owner(k): f"wrong: missing rule-{k}" for k in example["pair"]}
        return Score(value=0.0, feedback="wrong", module_feedback=missing)


def _coupled(tmp_path, name, **config):
    task = CoupledTask()
    lm = task.reflection_lm()
    result = gg.optimize(
        task.system(),
        task.examples(12, seed=1, prefix="t"),
        task.examples(8, seed=2, prefix="v"),
        metric=task.metric,
        reflection_lm=lm,
        max_rollouts=300,
        config=gg.OptimizeConfig(seed=0, **config),
        run_dir=tmp_path / name,
        progress=False,
    )
    return result, lm


def test_modules_that_must_change_together_are_solved_by_the_default_configuration(tmp_path):
    stuck, _ = _coupled(tmp_path, "rr", module_selection="round_robin")
    assert stuck.best_score == 0.0  # every single-module child ties its parent
    assert {r.reason for r in stuck.rejected} >= {"not_better_on_minibatch"}
    solved, _ = _coupled(tmp_path, "default")
    assert solved.best_score > 0.5
    joint = [c for c in solved.candidates if len(c.changed_modules) == 2 and c.origin == "mutation"]
    assert joint, "no joint proposal joined the pool"


def test_joint_proposals_reflect_once_per_module_on_the_same_traces(tmp_path):
    events = []
    task = CoupledTask()
    lm = task.reflection_lm()
    result = gg.optimize(
        task.system(),
        task.examples(12, seed=1, prefix="t"),
        task.examples(8, seed=2, prefix="v"),
        metric=task.metric,
        reflection_lm=lm,
        max_rollouts=120,
        config=gg.OptimizeConfig(module_selection="all"),
        run_dir=tmp_path / "r",
        progress=False,
        listeners=[events.append],
    )
    first = next(e.iteration for e in events if isinstance(e, ReflectionCalled))
    calls = [e for e in events if isinstance(e, ReflectionCalled) and e.iteration == first]
    assert sorted(e.module for e in calls) == ["a", "b"]
    assert result.ledger.reflection_calls == len(lm.calls)
    child = result.candidates[1]
    assert child.changed_modules == ("a", "b") and child.parent_ids == (result.candidates[0].id,)
    assert result.best_score > result.seed_score


@pytest.mark.parametrize("in_flight", [None, 1])
def test_never_reflects_twice_on_the_same_parent_module_and_minibatch(tmp_path, in_flight):
    data = [{"id": i} for i in range(5)]
    events = []
    lm = ScriptedReflectionLM(lambda current, prompt: "same")
    result = gg.optimize(
        # The prompt is read (a rewrite could matter), so every proposal is reflected on.
        gg.FunctionSystem(modules={"m": "p"}, fn=lambda prompts, example: prompts["m"]),
        data,
        metric=lambda example, prediction: 0.0,
        reflection_lm=lm,
        max_rollouts=10_000,
        config=gg.OptimizeConfig(rejected_attempts_shown=3, parallel_proposals=in_flight),
        run_dir=tmp_path / "r",
        progress=False,
        listeners=[events.append],
    )
    assert result.stop_reason == "stalled"
    parents = {
        e.iteration: (e.parent_ids, e.module) for e in events if isinstance(e, IterationStarted)
    }
    batches = {
        e.iteration: tuple(sorted(e.example_keys))
        for e in events
        if isinstance(e, MinibatchEvaluated) and e.role == "parent"
    }
    reflected = [
        (parents[e.iteration], batches[e.iteration])
        for e in events
        if isinstance(e, ReflectionCalled)
    ]
    assert len(reflected) == len(set(reflected)) == len(lm.calls)
    if in_flight != 1:
        return  # proposals in flight together cannot see each other's rejections
    # From the second reflection on, the LM sees the rewrite it already had rejected.
    assert "Rewrites already tried and rejected" not in lm.calls[0]
    assert "Rewrites already tried and rejected" in lm.calls[1] and "same" in lm.calls[1]


@pytest.mark.parametrize("budget", [60, 75, 90, 111])
def test_a_proposal_starts_only_if_its_child_validation_fits(tmp_path, budget):
    task = RuleTask(n_types=6, modules=("a", "b"))
    result = gg.optimize(
        task.system(),
        task.examples(18, seed=1, prefix="t"),
        task.examples(12, seed=2, prefix="v"),
        metric=task.metric,
        reflection_lm=task.reflection_lm(),
        max_rollouts=budget,
        run_dir=tmp_path / "r",
        progress=False,
    )
    assert result.rollouts_used <= budget
    assert "budget_exhausted" not in {r.reason for r in result.rejected}


def test_search_mode_returns_the_best_candidate_per_task(tmp_path):
    task = RuleTask(n_types=4, modules=("a",))
    tasks = task.examples(10, seed=3, prefix="task")
    result = gg.optimize(
        task.system(),
        tasks,
        metric=task.metric,
        reflection_lm=task.reflection_lm(),
        max_rollouts=150,
        mode="search",
        run_dir=tmp_path / "r",
        progress=False,
    )
    per_task = result.best_by_example()
    assert set(per_task) == {t["id"] for t in tasks}
    for key, record in per_task.items():
        assert record.val_scores[key] == max(c.val_scores.get(key, 0.0) for c in result.candidates)
    assert result.best_score > result.seed_score
    with pytest.raises(ValueError, match='mode="search"'):
        gg.optimize(
            task.system(),
            tasks,
            tasks,
            metric=task.metric,
            reflection_lm=task.reflection_lm(),
            max_rollouts=150,
            mode="search",
            run_dir=tmp_path / "r2",
            progress=False,
        )


def test_strategies_given_as_objects_replace_the_named_ones(tmp_path):
    class SeedOnly:
        def __init__(self):
            self.calls = 0

        def select(self, search):
            self.calls += 1
            return next(iter(search.candidates.values()))

    chooser = SeedOnly()
    events = []
    task = RuleTask(n_types=6, modules=("a", "b"))
    result = gg.optimize(
        task.system(),
        task.examples(18, seed=1, prefix="t"),
        task.examples(12, seed=2, prefix="v"),
        metric=task.metric,
        reflection_lm=task.reflection_lm(),
        max_rollouts=150,
        strategies={"parent_selector": chooser},
        # One proposal at a time: a child being validated is continued without the selector
        # when proposals overlap, which a loaded machine makes happen.
        config=gg.OptimizeConfig(parallel_proposals=1),
        run_dir=tmp_path / "r",
        progress=False,
        listeners=[events.append],
    )
    seed_id = result.candidates[0].id
    mutations = [e for e in events if isinstance(e, IterationStarted) and e.kind == "mutation"]
    assert chooser.calls >= len(mutations) > 0  # (the last plan may not fit the budget)
    assert all(e.parent_ids == (seed_id,) for e in mutations)


def test_unknown_or_malformed_strategies_are_one_line_errors():
    config = gg.OptimizeConfig()
    with pytest.raises(ValueError, match="unknown kind 'sampler2'"):
        build(config, {"sampler2": object()})
    with pytest.raises(TypeError, match="lacks the MinibatchSampler methods"):
        build(config, {"sampler": object()})
    with pytest.raises(gg.ConfigError if hasattr(gg, "ConfigError") else ValueError):
        gg.OptimizeConfig(module_selection="everything")


def test_bandit_gives_more_turns_to_the_module_still_improving():
    from gepa_graph.strategies import Bandit

    search = FakeSearch()
    parent = Candidate(prompts={"a": "p", "b": "q"})
    bandit, picks = Bandit(), []
    for _ in range(20):
        modules = bandit.select(search, parent)
        picks.append(modules[0])
        gain = 0.1 if modules == ("b",) else 0.0  # only b's rewrites raise the score
        bandit.update(search, parent, modules, ProposalOutcome("rejected", gain=gain))
    assert picks[:2] == ["a", "b"]  # each module tried once first
    assert picks.count("b") > picks.count("a") + 4


def test_diversity_merge_skips_pairs_that_changed_the_same_module():
    from gepa_graph.strategies import OnDiversity

    seed = Candidate(prompts={"plan": "p0", "answer": "a0"})
    left = seed.mutate_many({"plan": "p1", "answer": "a1"})
    right = seed.mutate("answer", "a2")  # left and right both changed `answer`: a conflict
    other = seed.mutate("plan", "p3")
    keys = ["w", "x", "y", "z"]
    search = FakeSearch(val=keys)
    search.candidates = {c.id: c for c in (seed, left, right)}
    search.scores = {
        seed.id: dict.fromkeys(keys, 0.0),
        left.id: {"w": 0.0, "x": 1.0, "y": 0.0, "z": 0.0},
        right.id: {"w": 0.0, "x": 0.0, "y": 1.0, "z": 1.0},
    }
    tried: set[str] = set()
    assert OnDiversity().next_merge(search, tried) is None
    assert len(tried) == 1  # the conflicting merge is marked tried, never attempted
    search.candidates[other.id] = other
    search.scores[other.id] = {"w": 1.0, "x": 0.0, "y": 0.0, "z": 0.0}
    plan = OnDiversity().next_merge(search, tried)
    # other changed only `plan`, right only `answer`: disjoint, so this merge is attempted.
    assert plan is not None and {plan.left, plan.right} == {other.id, right.id}
    assert plan.child.prompts == {"plan": "p3", "answer": "a2"}
