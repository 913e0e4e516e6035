"""End-to-end behaviour of the GEPA loop on the simulated rule task (scripted LMs)."""

import threading
from collections import Counter

import pytest

import gepa_graph as gg
import gepa_graph.testing.reflection
from gepa_graph.events import CandidateAccepted, ProposalRejected
from gepa_graph.testing.rules import RuleTask


class CountingSystem(gg.FunctionSystem):
    """The rule task's system, counting every rollout it really runs."""

    def __init__(self, task: RuleTask, fail_on: set[str] = frozenset()):
        self.runs: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self.fail_on = fail_on
        super().__init__(modules=task.seed_prompts(), fn=self._answer)
        self.task = task

    def _answer(self, prompts, example, trace):
        with self._lock:
            self.runs[(gg.Candidate(prompts=prompts).id, example.key)] += 1
        if example["id"] in self.fail_on:
            raise RuntimeError(f"node exploded on {example['id']}")
        return self.task.answer(prompts, example, trace)


def run(task, system=None, *, seed=0, max_rollouts=240, run_dir, **kwargs):
    system = system or CountingSystem(task)
    result = gg.optimize(
        system,
        task.examples(18, seed=1, prefix="t"),
        task.examples(12, seed=2, prefix="v"),
        metric=task.metric,
        reflection_lm=kwargs.pop("reflection_lm", None) or task.reflection_lm(),
        max_rollouts=max_rollouts,
        config=gg.OptimizeConfig(seed=seed, **kwargs.pop("config", {})),
        run_dir=run_dir,
        progress=False,
        **kwargs,
    )
    return system, result


def test_optimization_improves_on_the_seed_and_reports_exact_rollouts(tmp_path):
    task = RuleTask(n_types=6, modules=("a", "b"))
    system, result = run(task, run_dir=tmp_path / "r")
    assert result.best_score > result.seed_score
    assert result.best_score == max(c.mean_score for c in result.candidates)
    # Every rollout reported was really run, once: the cache never runs a pair twice.
    assert result.rollouts_used == sum(system.runs.values())
    assert max(system.runs.values()) == 1
    assert result.rollouts_used <= 240
    seed = result.candidates[0]
    assert seed.origin == "seed" and seed.parent_ids == () and len(seed.val_scores) == 12
    ids = {c.id for c in result.candidates}
    for cand in result.candidates[1:]:
        assert set(cand.parent_ids) <= ids and len(cand.val_scores) == 12
    # The best prompts contain the rules the scripted reflection added, per owning module.
    assert "rule-" in result.best_candidate["a"] + result.best_candidate["b"]


def test_same_seed_same_result_and_another_seed_another_path(tmp_path):
    # One proposal at a time: the same seed gives the same run whatever the threads' timing
    # (several in flight are reproducible on a deterministic clock: test_steady_state.py).
    task = RuleTask(n_types=8, modules=("a", "b"))
    one = {"config": {"parallel_proposals": 1}}
    _, first = run(task, run_dir=tmp_path / "1", max_rollouts=150, **one)
    _, second = run(task, run_dir=tmp_path / "2", max_rollouts=150, **one)
    _, other = run(task, run_dir=tmp_path / "3", max_rollouts=150, seed=5, **one)
    strip = lambda r: r.model_dump(exclude={"run_dir", "ledger"})  # noqa: E731
    assert strip(first) == strip(second)
    assert [c.id for c in other.candidates] != [c.id for c in first.candidates]


def test_budget_is_never_exceeded(tmp_path):
    task = RuleTask(n_types=10, modules=("a",))
    for budget in (12, 13, 20, 37):
        system, result = run(task, max_rollouts=budget, run_dir=tmp_path / str(budget))
        assert result.rollouts_used == sum(system.runs.values()) <= budget
        assert result.stop_reason in {"max_rollouts", "perfect_score"}


def test_rollout_that_raises_is_a_scored_failure_not_a_crash(tmp_path):
    task = RuleTask(n_types=4, modules=("a",))
    system = CountingSystem(task, fail_on={"v0", "v3", "t1"})
    _, result = run(task, system, run_dir=tmp_path / "r", max_rollouts=100)
    seed = result.candidates[0]
    assert seed.val_scores["v0"] == 0.0 and seed.val_scores["v3"] == 0.0
    assert result.ledger.failed_rollouts >= 2


def test_rejected_proposals_spend_no_rollouts(tmp_path):
    task = RuleTask(n_types=4, modules=("a",))
    seen = []

    def drops_everything(prompt):
        seen.append(prompt)
        return "no fence at all"

    system, result = run(
        task, run_dir=tmp_path / "r", reflection_lm=drops_everything, config={"max_iterations": 5}
    )
    assert result.iterations == 5 and len(seen) >= 1
    assert {r.reason for r in result.rejected} <= {"no_fenced_block", "parent_perfect_on_minibatch"}
    # Only the seed's validation and its minibatches were run; no child rollout.
    assert all(cid == result.candidates[0].id for cid, _ in system.runs)
    assert len(result.candidates) == 1


def test_events_describe_the_run(tmp_path):
    task = RuleTask(n_types=6, modules=("a", "b"))
    events = []
    _, result = run(task, run_dir=tmp_path / "r", listeners=[events.append])
    accepted = [e for e in events if isinstance(e, CandidateAccepted)]
    assert [e.candidate.id for e in accepted] == [c.id for c in result.candidates]
    rejected = [e for e in events if isinstance(e, ProposalRejected)]
    assert len(rejected) == len(result.rejected)
    assert type(events[0]).__name__ == "OptimizationStarted"
    assert type(events[-1]).__name__ == "OptimizationFinished"
    assert events[-1].result.best_id == result.best_id


def test_a_failing_listener_never_stops_the_run(tmp_path):
    task = RuleTask(n_types=4, modules=("a",))

    def broken(event):
        raise RuntimeError("tracking server down")

    _, result = run(task, run_dir=tmp_path / "r", listeners=[broken], max_rollouts=60)
    assert result.rollouts_used > 12


def test_current_best_selection_only_mutates_the_best(tmp_path):
    # One proposal at a time: with several in flight, a child still being validated is
    # continued before it can become the best (on a loaded machine, whether that happens
    # depends on timing).
    task = RuleTask(n_types=6, modules=("a", "b"))
    events = []
    _, result = run(
        task,
        run_dir=tmp_path / "r",
        listeners=[events.append],
        config={"candidate_selection": "current_best", "parallel_proposals": 1},
    )
    best_so_far = result.candidates[0].id
    means = {c.id: c.mean_score for c in result.candidates}
    for event in events:
        if type(event).__name__ == "IterationStarted" and event.kind == "mutation":
            assert event.parent_ids == (best_so_far,)
        if isinstance(event, CandidateAccepted) and event.is_best:
            best_so_far = event.candidate.id
    assert max(means.values()) > means[result.candidates[0].id]


class ConflictTask(RuleTask):
    """rule-0 in module a fixes type 0 but breaks type 2, which the seed gets right; rule-1 in
    module b fixes type 1. So the seed stays on the front (type 2), both modules improve in
    separate lineages, and only a merge of the two holds rule-0 and rule-1 together."""

    def __init__(self):
        super().__init__(n_types=3, modules=("a", "b"))

    def answer(self, prompts, example, trace):
        kind = example["type"]
        right = {
            0: "rule-0." in prompts["a"],
            1: "rule-1." in prompts["b"],
            2: "rule-0." not in prompts["a"],
        }[kind]
        return f"answer-{kind}" if right else "unsure"

    def reflection_lm(self):
        def rewrite(current, reflection_prompt):
            rule = "rule-0." if "module a" in current else "rule-1."
            return current + " Be careful." if rule in current else f"{current} {rule}"

        return gg.testing.reflection.ScriptedReflectionLM(rewrite)


def _merge_run(tmp_path, **config):
    # One proposal at a time: with several in flight a joint mutation may find the merge's
    # combination first (the merge is then rejected as a duplicate).
    task = ConflictTask()
    events = []
    _, result = run(
        task,
        run_dir=tmp_path / "r",
        listeners=[events.append],
        max_rollouts=300,
        config={"skip_perfect_score": False, "parallel_proposals": 1, **config},
    )
    merges = [e for e in events if type(e).__name__ == "IterationStarted" and e.kind == "merge"]
    return result, merges


def test_merge_combines_lineages_that_improved_different_modules(tmp_path):
    result, merges = _merge_run(tmp_path)
    assert merges, "no merge was attempted"
    by_id = {c.id: c for c in result.candidates}
    for event in merges:
        left, right = (by_id[p] for p in event.parent_ids)
        assert {left.changed_modules, right.changed_modules} == {("a",), ("b",)}
    merged = [c for c in result.candidates if c.origin == "merge"]
    assert merged, "the complementary merge was not accepted"
    assert "rule-0." in merged[0].prompts["a"] and "rule-1." in merged[0].prompts["b"]


def test_no_merge_when_disabled(tmp_path):
    result, merges = _merge_run(tmp_path, use_merge=False)
    assert not merges and all(c.origin != "merge" for c in result.candidates)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_rollouts": 5}, "cannot even evaluate the seed"),
        ({"seed_prompts": {"nope": "x"}}, "unknown module 'nope'"),
    ],
)
def test_bad_requests_fail_before_any_rollout(tmp_path, kwargs, message):
    task = RuleTask(n_types=4, modules=("a",))
    system = CountingSystem(task)
    with pytest.raises(ValueError, match=message):
        run(task, system, run_dir=tmp_path / "r", **kwargs)
    assert not system.runs


def test_proposals_in_flight_are_exact_and_within_budget(tmp_path):
    task = RuleTask(n_types=10, modules=("a", "b"))
    for budget in (60, 200):
        first_system, first = run(
            task,
            run_dir=tmp_path / str(budget),
            max_rollouts=budget,
            config={"parallel_proposals": 4, "concurrency": 12},
        )
        assert first.best_score > first.seed_score
        # Concurrent proposals sharing a parent never run a (candidate, example) twice.
        assert max(first_system.runs.values()) == 1
        assert first.rollouts_used == sum(first_system.runs.values()) <= budget


def test_adaptive_validation_drops_hopeless_children_before_full_validation(tmp_path):
    # The seed knows rules 0-2; the reflection LM rewrites the prompt to know only rule 3.
    # Such children can win a minibatch of type-3 examples but lose on validation.
    task = RuleTask(n_types=4)
    seed = {"instructions": "Base. rule-0. rule-1. rule-2."}
    calls = []

    def forgetful(prompt):
        calls.append(prompt)
        return f"```\nBase. rule-3. attempt {len(calls)}\n```"

    common = dict(seed_prompts=seed, reflection_lm=forgetful, max_rollouts=300)
    _, plain = run(task, run_dir=tmp_path / "plain", config={"max_iterations": 6}, **common)
    _, adaptive = run(
        task,
        run_dir=tmp_path / "adaptive",
        config={"max_iterations": 6, "adaptive_validation": True},
        **common,
    )
    screened = [
        r for r in adaptive.rejected if r.reason == "worse_than_parent_on_validation_sample"
    ]
    assert screened, "no child was screened out"
    assert adaptive.rollouts_used < plain.rollouts_used
    assert len(adaptive.candidates) < len(plain.candidates)
