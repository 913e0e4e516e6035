"""Repeated scoring of a noisy metric (``score_repeats``) and the acceptance rule that compares
minibatch means with their uncertainty (``confident_improvement``)."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import gepa_graph as gg
from gepa_graph.budget import Budget
from gepa_graph.candidate import Candidate
from gepa_graph.config import ConfigError
from gepa_graph.evaluation import EvalResult, Evaluator
from gepa_graph.example import Example
from gepa_graph.store import RunStore
from gepa_graph.strategies import build
from gepa_graph.strategies.acceptance import (
    ConfidentImprovement,
    StrictImprovement,
    noise_variance,
)

SCRIPTED = {"a": [0.2, 0.6, 1.0], "b": [0.5, 0.5, 0.5]}  # the judge's values, call by call


def scripted_judge(calls: dict[str, int]) -> Any:
    async def judge(example: Any, prediction: Any) -> gg.Score:
        key = example["id"]
        value = SCRIPTED[key][calls.get(key, 0) % 3]
        calls[key] = calls.get(key, 0) + 1
        return gg.Score(value=value, feedback=f"call {calls[key]}")

    return judge


def evaluate(metric: Any, store: RunStore, journaled: Any = None, **config: Any) -> Any:
    settings = gg.OptimizeConfig(max_rollouts=10, **config)
    system = gg.FunctionSystem({"agent": "Answer."}, lambda prompts, example: "out")
    budget = Budget(settings)
    evaluator = Evaluator(system, metric, settings, budget, store.journal, journaled)
    examples = [Example({"id": "a"}), Example({"id": "b"})]
    results = asyncio.run(evaluator.evaluate(Candidate(prompts={"agent": "Answer."}), examples))
    return results, budget.ledger


def test_repeats_give_the_mean_and_the_spread_and_count_metric_calls_apart() -> None:
    calls: dict[str, int] = {}
    (a, b), ledger = evaluate(scripted_judge(calls), RunStore(None), score_repeats=3)
    assert a.samples == [0.2, 0.6, 1.0] and a.score == pytest.approx(0.6)
    assert a.score_sd == pytest.approx(statistics.stdev([0.2, 0.6, 1.0])) and a.score_count == 3
    assert b.score == 0.5 and b.score_sd == 0.0
    assert a.feedback == "call 1"  # the first call's feedback
    assert calls == {"a": 3, "b": 3}  # the metric ran three times on one output ...
    assert ledger.rollouts_used == 2 and ledger.metric_calls == 6  # ... the system once


def test_scored_once_keeps_no_samples() -> None:
    (a, _), ledger = evaluate(scripted_judge({}), RunStore(None))
    assert a.score == 0.2 and a.samples == [] and a.score_sd == 0.0 and a.score_count == 1
    assert ledger.metric_calls == 2


def test_one_failing_repeat_fails_the_result_and_every_call_is_counted() -> None:
    calls: list[int] = []

    def judge(example: Any, prediction: Any) -> float:
        calls.append(1)
        if example["id"] == "a" and len(calls) % 2:
            raise RuntimeError("judge unavailable")
        return 1.0

    (a, b), ledger = evaluate(judge, RunStore(None), score_repeats=2, failure_score=0.0)
    assert a.error is not None and "judge unavailable" in a.error and a.score == 0.0
    assert b.error is None and b.score == 1.0
    assert a.metric_calls == b.metric_calls == 2 and ledger.metric_calls == 4
    assert ledger.failed_rollouts == 1


def test_journaled_repeats_are_replayed_not_scored_again(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    first, ledger = evaluate(scripted_judge({}), store, score_repeats=3)
    store.journal.sync()
    examples = [Example({"id": "a"}), Example({"id": "b"})]
    journaled, _ = RunStore(tmp_path / "run").load_journal(
        EvalResult.model_validate, None, examples
    )

    def never(example: Any, prediction: Any) -> float:
        raise AssertionError("a journaled result was scored again")

    again, replayed = evaluate(never, RunStore(None), journaled, score_repeats=3)
    assert again == first
    assert replayed.metric_calls == ledger.metric_calls == 6
    assert replayed.rollouts_used == ledger.rollouts_used == 2


def judged(truth: list[int], repeats: int, rng: random.Random, flip: float) -> list[EvalResult]:
    """A pass/fail judge that flips its verdict with probability ``flip``, ``repeats`` times."""
    results = []
    for value in truth:
        votes = [float(value if rng.random() >= flip else 1 - value) for _ in range(repeats)]
        samples = votes if repeats > 1 else []
        results.append(EvalResult(example_key="x", score=statistics.fmean(votes), samples=samples))
    return results


def wrong_calls(rule: Any, repeats: int, trials: int = 2000, flip: float = 0.2) -> tuple[int, int]:
    """Over seeded trials on a minibatch of 3, half with a child truly one example better and
    half with one no better: (children accepted that are no better, better ones rejected)."""
    rng = random.Random(7)
    false_accepts = false_rejects = 0
    for trial in range(trials):
        parent = [int(rng.random() < 0.4) for _ in range(2)] + [0]
        better = trial % 2 == 0
        child = [*parent[:2], 1] if better else list(parent)
        accepted = (
            rule.reject_reason(
                judged(parent, repeats, rng, flip), judged(child, repeats, rng, flip)
            )
            is None
        )
        false_accepts += accepted and not better
        false_rejects += better and not accepted
    return false_accepts, false_rejects


def test_confident_acceptance_on_repeats_makes_fewer_wrong_calls() -> None:
    strict_once = wrong_calls(StrictImprovement(), 1)
    strict_thrice = wrong_calls(StrictImprovement(), 3)
    confident = wrong_calls(ConfidentImprovement(), 3)
    assert sum(confident) < sum(strict_once)
    # It is the false accepts (each one a wasted validation run) that it cuts.
    assert confident[0] < 0.7 * strict_once[0] and confident[0] < 0.7 * strict_thrice[0]


def test_confident_acceptance_is_strict_when_scored_once() -> None:
    rng = random.Random(3)
    for _ in range(200):
        parent = [EvalResult(example_key="x", score=rng.random()) for _ in range(3)]
        child = [EvalResult(example_key="x", score=rng.random()) for _ in range(3)]
        confident = ConfidentImprovement().reject_reason(parent, child) is None
        assert confident == (StrictImprovement().reject_reason(parent, child) is None)


def test_the_standard_error_is_the_pooled_noise_of_both_minibatches() -> None:
    parent = [EvalResult(example_key="x", score=0.5, samples=[0.0, 1.0]) for _ in range(2)]
    child = [EvalResult(example_key="x", score=1.0, samples=[1.0, 1.0]) for _ in range(2)]
    assert noise_variance([*parent, *child]) == pytest.approx(0.25)  # (0.5 + 0.5 + 0 + 0) / 4
    # Gain 1.0; standard error sqrt(4 x 0.25 / 2) = 0.707: accepted at z=1, not at z=1.5.
    assert ConfidentImprovement(1.0).reject_reason(parent, child) is None
    reason = ConfidentImprovement(1.5).reject_reason(parent, child)
    assert reason == "minibatch score 2 vs parent 1, needs a gain over 1.5 x 0.707 (standard error)"


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="score_repeats: Input should be greater than or"):
        gg.OptimizeConfig(score_repeats=0)
    with pytest.raises(ConfigError, match="acceptance: Input should be"):
        gg.OptimizeConfig(acceptance="confident")
    with pytest.raises(gg.GepaGraphError, match="z=-1"):
        ConfidentImprovement(-1)
    named = build(gg.OptimizeConfig(acceptance="confident_improvement")).acceptance
    assert isinstance(named, ConfidentImprovement)


SCRIPT = textwrap.dedent("""
    import json, os, random, signal, sys
    import gepa_graph as gg
    from gepa_graph.testing.rules import RuleTask

    run_dir, resume, kill_at = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
    task = RuleTask(n_types=6, modules=("a", "b"))
    runs, judged, seen = [], [], {}

    def answer(prompts, example, trace):
        runs.append([gg.Candidate(prompts=prompts).id, example.key])
        return {"answer": task.answer(prompts, example, trace), "who": gg.Candidate(prompts=prompts).id}

    async def judge(example, prediction, trace):  # noisy, but a function of what it judges
        judged.append(1)
        if len(judged) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        key = (prediction["who"], example.key)
        seen[key] = seen.get(key, 0) + 1
        score = task.metric(example, prediction["answer"], trace)
        rng = random.Random(f"{key}/{seen[key]}")
        value = score.value if rng.random() > 0.25 else 1 - score.value
        return gg.Score(value=value, feedback=score.feedback, module_feedback=score.module_feedback)

    result = gg.optimize(
        gg.FunctionSystem(modules=task.seed_prompts(), fn=answer),
        task.examples(12, seed=1, prefix="t"), task.examples(8, seed=2, prefix="v"),
        metric=judge, reflection_lm=task.reflection_lm(), max_rollouts=90,
        config=gg.OptimizeConfig(seed=1, concurrency=2, parallel_proposals=1, score_repeats=3,
                                 acceptance="confident_improvement"),
        run_dir=run_dir, resume=resume, progress=False,
    )
    print(json.dumps({"best": result.best_id, "scores": [c.val_scores for c in result.candidates],
                      "ledger": [result.rollouts_used, result.ledger.metric_calls],
                      "failed": result.ledger.failed_rollouts, "runs": runs,
                      "judged": len(judged)}))
""")


def _optimize(tmp_path: Path, run_dir: Path, resume: bool = False, kill_at: int = 0) -> Any:
    script = tmp_path / "noisy.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(run_dir), str(int(resume)), str(kill_at)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, json.loads(proc.stdout) if proc.returncode == 0 else proc.stderr


def test_a_killed_noisy_run_resumes_exactly(tmp_path: Path) -> None:
    code, whole = _optimize(tmp_path, tmp_path / "whole")
    assert code == 0, whole
    rollouts, metric_calls = whole["ledger"]
    assert metric_calls == 3 * rollouts  # no system failures: every rollout judged 3 times
    code, _ = _optimize(tmp_path, tmp_path / "killed", kill_at=100)
    assert code == -9
    code, resumed = _optimize(tmp_path, tmp_path / "killed", resume=True)
    assert code == 0, resumed
    assert resumed["best"] == whole["best"] and resumed["scores"] == whole["scores"]
    assert resumed["ledger"] == whole["ledger"]
    # Rollouts finished before the kill were journaled: the resumed run judged only the rest.
    assert resumed["judged"] < whole["judged"] - 90


def test_a_failed_rollout_adds_no_noise() -> None:
    noisy = EvalResult(example_key="x", score=0.5, samples=[0.0, 1.0])
    failed = EvalResult(example_key="x", score=0.0, error="boom")
    judged_zero = EvalResult(example_key="x", score=0.0)
    sure = EvalResult(example_key="x", score=1.0, samples=[1.0, 1.0])
    # Gain 1.5; pooled variance (0.5 + 0 + 0) / 3. Three judged scores: SE 0.5 (gain 3 SE);
    # with a judged 0 in place of the failure, four: SE 0.577 (gain 2.6 SE).
    rule = ConfidentImprovement(2.8)
    assert rule.reject_reason([noisy, failed], [sure, sure]) is None
    assert rule.reject_reason([noisy, judged_zero], [sure, sure]) is not None
