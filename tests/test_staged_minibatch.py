"""``staged_minibatch``: a child runs first the minibatch examples where its parent scored below
the top score, and stops there when even the top score on the rest could not make it pass."""

from __future__ import annotations

import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import gepa_graph as gg
from gepa_graph.candidate import Candidate
from gepa_graph.evaluation import EvalResult
from gepa_graph.events import Event, MinibatchEvaluated
from gepa_graph.strategies import ProposalOutcome
from gepa_graph.strategies.acceptance import ConfidentImprovement, StrictImprovement, best_case
from gepa_graph.strategies.base import Acceptance
from gepa_graph.testing.reflection import ScriptedReflectionLM
from tests.test_proposers_view import FakeView, mutation

PARENT = Candidate(prompts={"a": "seed a [t0]", "b": "seed b"})  # right on t0 only

# ------------------------------------------------------------------ the proposer, on a fake view


def _propose(rewrite: Any, **config: Any) -> tuple[FakeView, Any, list[str]]:
    """One mutation of PARENT on the minibatch t0, t1, t2: the view, the outcome, and the
    statuses the module selector was told."""
    view = FakeView(["t0", "t1", "t2"], ["v0"], minibatch_size=3, seed=0, **config)
    view.join(PARENT)
    statuses: list[str] = []
    selector = view.strategies.module_selector
    update = selector.update

    def spy(search: Any, parent: Candidate, modules: Any, outcome: ProposalOutcome) -> None:
        statuses.append(outcome.status)
        update(search, parent, modules, outcome)

    selector.update = spy  # type: ignore[method-assign]
    proposer, _ = mutation(rewrite)
    work = proposer.ask(view, None, True)
    outcome = asyncio.run(work.run())
    if outcome.rejection:
        proposer.tell(work, "rejected")
    return view, outcome, statuses


def _child_runs(view: FakeView, child: Candidate) -> list[tuple[str, ...]]:
    return [keys for cid, keys in view.ran if cid == child.id]


def _minibatch(view: FakeView) -> tuple[str, ...]:
    return next(keys for cid, keys in view.ran if cid == PARENT.id)


def test_a_child_that_fixes_nothing_where_its_parent_failed_stops_after_those_examples() -> None:
    view, outcome, statuses = _propose(lambda text: text + " worse", staged_minibatch=True)
    failed = tuple(k for k in _minibatch(view) if k != "t0")
    assert _child_runs(view, outcome.child) == [failed]  # t0 never ran
    reason, detail, text = outcome.rejection
    assert reason == "not_better_on_minibatch" and text == "seed a [t0] worse"
    assert detail == (
        "stopped after 2 of 3 examples: at best (the top score on the 1 not run) "
        "minibatch score 1 vs parent 1"
    )
    run = outcome.child_minibatch
    assert [ex.key for ex in run.examples] == list(failed) == [r.example_key for r in run.results]
    assert statuses == ["tied"]  # 0 + 0 where the parent also had 0 + 0: a tie, for adaptive


def test_a_child_that_could_still_pass_runs_the_rest_and_is_judged_as_before() -> None:
    # It gains t1 but loses t0: after the first wave it could still win, after all it ties.
    view, outcome, statuses = _propose(lambda text: "seed a [t1]", staged_minibatch=True)
    failed = tuple(k for k in _minibatch(view) if k != "t0")
    assert _child_runs(view, outcome.child) == [failed, ("t0",)]
    assert outcome.rejection[:2] == ("not_better_on_minibatch", "minibatch score 1 vs parent 1")
    run = outcome.child_minibatch
    assert [ex.key for ex in run.examples] == list(_minibatch(view))  # minibatch order
    assert [r.example_key for r in run.results] == list(_minibatch(view))
    assert statuses == ["tied"]


def test_a_child_that_gains_runs_everything_and_passes() -> None:
    view, outcome, _ = _propose(lambda text: text + " [t1]", staged_minibatch=True)
    assert outcome.rejection is None
    assert [len(keys) for keys in _child_runs(view, outcome.child)] == [2, 1]
    results = outcome.child_minibatch.results
    assert {r.example_key: r.score for r in results} == {"t0": 1.0, "t1": 1.0, "t2": 0.0}


@pytest.mark.parametrize(
    "config", [{"staged_minibatch": False}, {"score_range": None}], ids=["off", "no_top"]
)
def test_off_or_without_a_top_score_the_child_runs_its_minibatch_at_once(config: Any) -> None:
    view, outcome, statuses = _propose(lambda text: text + " worse", **config)
    assert _child_runs(view, outcome.child) == [_minibatch(view)]
    assert outcome.rejection[1] == "minibatch score 1 vs parent 1"
    assert statuses == ["tied"]


def test_a_stopped_child_that_lost_where_it_ran_is_worse() -> None:
    view = FakeView(["t0", "t1", "t2"], ["v0"], minibatch_size=3, seed=0, staged_minibatch=True)
    parent = Candidate(prompts={"a": "seed a [t0] [t1]", "b": "seed b"})
    view.join(parent)
    proposer, _ = mutation(lambda text: "seed a [t0]")  # loses t1, gains nothing on t2
    work = proposer.ask(view, None, True)
    outcome = asyncio.run(work.run())
    assert outcome.rejection[1].startswith("stopped after 1 of 3 examples")
    assert [keys for cid, keys in view.ran if cid == outcome.child.id] == [("t2",)]


# ------------------------------------------------------------- the bound is exact for both rules


def _result(rng: random.Random, repeats: int, fail: bool = False) -> EvalResult:
    if fail:
        return EvalResult(example_key="x", score=0.0, error="boom")
    values = [rng.choice([0.0, 0.5, 1.0]) for _ in range(repeats)]
    samples = values if repeats > 1 else []
    return EvalResult(example_key="x", score=statistics.fmean(values), samples=samples)


@pytest.mark.parametrize(
    ("rule", "repeats"),
    [(StrictImprovement(), 1), (ConfidentImprovement(), 1), (ConfidentImprovement(), 3)],
)
def test_what_the_best_case_rejects_every_completion_rejects(
    rule: Acceptance, repeats: int
) -> None:
    rng = random.Random(5)
    stops = 0
    for _ in range(400):
        n = rng.randint(2, 5)
        base = [_result(rng, repeats, fail=rng.random() < 0.1) for _ in range(n)]
        ran = [_result(rng, repeats) if rng.random() < 0.6 else None for _ in range(n)]
        if rule.reject_reason(base, best_case(ran, base, 1.0, repeats)) is None:
            continue
        stops += 1
        for _ in range(20):
            rest = [r or _result(rng, repeats, fail=rng.random() < 0.2) for r in ran]
            assert rule.reject_reason(base, rest) is not None
    assert stops > 50


def test_the_best_case_has_no_spread_and_keeps_the_order() -> None:
    base = [EvalResult(example_key=k, score=0.5, samples=[0.0, 1.0]) for k in ("p", "q")]
    known = EvalResult(example_key="q", score=0.5, samples=[0.0, 1.0])
    hoped = best_case([None, known], base, 1.0, 2)
    assert [r.example_key for r in hoped] == ["p", "q"] and hoped[1] is known
    assert hoped[0].score == 1.0 and hoped[0].samples == [1.0, 1.0] and hoped[0].score_sd == 0


# ------------------------------------------------------------------------ real engine runs


def _examples(prefix: str, kinds: str) -> list[dict[str, str]]:
    return [{"id": f"{prefix}{i}", "kind": kind} for i, kind in enumerate(kinds)]


def _engine_run(tmp_path: Path, gains: bool, **config: Any) -> tuple[Any, list[Event], Any]:
    """A one-module system that is right on an example when its prompt names the example's
    kind; the reflection adds the kind its feedback names (``gains``), or only a remark."""
    calls: dict[str, list[str]] = {}

    def answer(prompts: dict[str, str], example: Any) -> str:
        calls.setdefault(Candidate(prompts=prompts).id, []).append(example.key)
        return "yes" if f"<{example['kind']}>" in prompts["m"] else "no"

    def metric(example: Any, prediction: str) -> gg.Score:
        right = prediction == "yes"
        return gg.Score(value=float(right), feedback="" if right else f"learn <{example['kind']}>")

    remarks = iter(range(1000))

    def rewrite(current: str, prompt: str) -> str:
        wanted = [k for k in re.findall(r"learn (<\w>)", prompt) if k not in current]
        if gains and wanted:
            return f"{current} {wanted[0]}"
        return f"{current} Be careful ({next(remarks)})."

    events: list[Event] = []
    result = gg.optimize(
        gg.FunctionSystem({"m": "Answer. <a>"}, answer),
        _examples("t", "abacabcaab"),
        _examples("v", "abcab"),
        metric=metric,
        reflection_lm=ScriptedReflectionLM(rewrite),
        max_rollouts=60,
        config=gg.OptimizeConfig(
            seed=2, concurrency=2, parallel_proposals=1, use_merge=False, **config
        ),
        run_dir=tmp_path / f"run-{gains}",
        listeners=[events.append],
        progress=False,
    )
    return result, events, calls


def _minibatches(events: list[Event]) -> dict[int, dict[str, MinibatchEvaluated]]:
    by_iteration: dict[int, dict[str, MinibatchEvaluated]] = {}
    for event in events:
        if isinstance(event, MinibatchEvaluated):
            by_iteration.setdefault(event.iteration, {})[event.role] = event
    return by_iteration


CONFIDENT = {"acceptance": "confident_improvement", "score_repeats": 3}


@pytest.mark.parametrize("config", [{}, CONFIDENT], ids=["strict", "confident"])
def test_in_a_run_children_that_fix_nothing_run_only_their_parents_failures(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    result, events, calls = _engine_run(tmp_path, gains=False, staged_minibatch=True, **config)
    stopped = 0
    for runs in _minibatches(events).values():
        if "child" not in runs:
            continue
        parent, child = runs["parent"], runs["child"]
        failed = [k for k, s in zip(parent.example_keys, parent.scores, strict=True) if s < 1]
        assert list(child.example_keys) == failed  # in minibatch order
        assert sorted(calls[child.candidate_id]) == sorted(failed)  # and nothing else
        stopped += len(failed) < len(parent.example_keys)
    assert stopped >= 3
    details = [r.detail for r in result.rejected if r.reason == "not_better_on_minibatch"]
    stops = [d for d in details if re.match(r"stopped after [12] of 3 examples: at best", d)]
    assert len(stops) == stopped
    assert len(result.candidates) == 1  # nobody passed


@pytest.mark.parametrize("config", [{}, CONFIDENT], ids=["strict", "confident"])
def test_in_a_run_children_that_gain_run_their_whole_minibatch_failures_first(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    result, events, calls = _engine_run(tmp_path, gains=True, staged_minibatch=True, **config)
    two_waves = 0
    for runs in _minibatches(events).values():
        if "child" not in runs:
            continue
        parent, child = runs["parent"], runs["child"]
        assert child.example_keys == parent.example_keys
        failed = {k for k, s in zip(parent.example_keys, parent.scores, strict=True) if s < 1}
        first = calls[child.candidate_id][: len(failed)]
        assert set(first) == failed  # the wave where it can gain ran first
        two_waves += 0 < len(failed) < len(parent.example_keys)
    assert two_waves >= 1
    assert not any(r.detail.startswith("stopped after") for r in result.rejected)
    assert result.best_score == 1.0


# ------------------------------------------------------------------------------ resume is exact

SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    import gepa_graph as gg
    from gepa_graph.testing.rules import RuleTask

    run_dir, resume, kill_at = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
    task = RuleTask(n_types=6, modules=("a", "b"))
    runs = []

    def answer(prompts, example, trace):
        runs.append([gg.Candidate(prompts=prompts).id, example.key])
        if len(runs) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return task.answer(prompts, example, trace)

    result = gg.optimize(
        gg.FunctionSystem(modules=task.seed_prompts(), fn=answer),
        task.examples(12, seed=1, prefix="t"), task.examples(8, seed=2, prefix="v"),
        metric=task.metric, reflection_lm=task.reflection_lm(), max_rollouts=120,
        config=gg.OptimizeConfig(seed=3, concurrency=2, minibatch_size=4, staged_minibatch=True),
        run_dir=run_dir, resume=resume, progress=False,
    )
    print(json.dumps({"best": result.best_id, "scores": [c.val_scores for c in result.candidates],
                      "rollouts": result.rollouts_used, "runs": runs,
                      "rejected": [[r.reason, r.detail] for r in result.rejected]}))
""")


def _script(tmp_path: Path, run_dir: Path, resume: bool = False, kill_at: int = 0) -> Any:
    script = tmp_path / "staged.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(run_dir), str(int(resume)), str(kill_at)],
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard
    )
    return proc.returncode, json.loads(proc.stdout) if proc.returncode == 0 else proc.stderr


@pytest.mark.parametrize("kill_at", [40, 85])
def test_a_killed_staged_run_resumes_exactly(tmp_path: Path, kill_at: int) -> None:
    code, whole = _script(tmp_path, tmp_path / "whole")
    assert code == 0, whole
    assert any(detail.startswith("stopped after") for _, detail in whole["rejected"])
    code, _ = _script(tmp_path, tmp_path / "killed", kill_at=kill_at)
    assert code == -9
    journal = (tmp_path / "killed" / "journal.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in journal]
    done = {(r["candidate_id"], r["example_key"]) for r in records if r["type"] == "rollout"}
    code, resumed = _script(tmp_path, tmp_path / "killed", resume=True)
    assert code == 0, resumed
    for field in ("best", "scores", "rollouts", "rejected"):
        assert resumed[field] == whole[field], field
    # The rollouts journaled before the kill were not run again, and nothing else was skipped.
    assert done and not done & {tuple(run) for run in resumed["runs"]}
    assert len(done) + len(resumed["runs"]) == len(whole["runs"])
