"""MLflowTracker fed hand-built events: what lands in MLflow, batching, failures, resume."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from mlflow import MlflowClient

from gepa_graph.events import (
    BudgetUpdated,
    CandidateAccepted,
    Ledger,
    OptimizationFinished,
    OptimizationStarted,
    ProposalRejected,
    ReflectionCalled,
)
from gepa_graph.redact import MASK as REDACTED
from gepa_graph.redact import redact
from gepa_graph.result import CandidateRecord, Result
from gepa_graph.store import RunStore
from gepa_graph.tracking import MLflowTracker
from gepa_graph.tracking import schema as S

SEED = {"m": "Say {x} hi"}
CHILD = {"m": "Say {x} hi!"}
SECRET = "sk-proj-abcdefghijklmnop1234567890"


def _started(run_dir: Path, resumed: bool = False) -> OptimizationStarted:
    return OptimizationStarted(
        run_dir=str(run_dir),
        resumed=resumed,
        seed_prompts=SEED,
        n_train=3,
        n_val=2,
        reflection_lm="openai/gpt-4o-mini",
        config={"max_rollouts": 50, "reflection_max_tokens": 4096, "llm": {"api_key": SECRET}},
    )


def _accepted(prompts, parents, iteration, rollouts, scores) -> CandidateAccepted:
    record = _record(prompts, parents, iteration, rollouts, scores)
    return CandidateAccepted(candidate=record, is_best=True)


def _record(prompts, parents, iteration, rollouts, scores) -> CandidateRecord:
    return CandidateRecord(
        id="seed00000000" if not parents else "child0000000",
        prompts=prompts,
        parent_ids=parents,
        origin="mutation" if parents else "seed",
        changed_modules=("m",) if parents else (),
        val_scores=scores,
        mean_score=sum(scores.values()) / len(scores),
        iteration=iteration,
        rollouts_at_discovery=rollouts,
    )


SEED_SCORES = {"e1": 0.0, "e2": 0.5}
CHILD_SCORES = {"e1": 1.0, "e2": 0.5}


def _budget(iteration: int, rollouts: int, best: float) -> BudgetUpdated:
    return BudgetUpdated(
        iteration=iteration,
        ledger=Ledger(rollouts_used=rollouts, cost_usd=0.01),
        best_score=best,
        best_id="x",
        pool_size=1,
        pareto_score=best,
    )


def _finished() -> OptimizationFinished:
    seed = _record(SEED, (), 0, 2, SEED_SCORES)
    child = _record(CHILD, ("seed00000000",), 1, 7, CHILD_SCORES)
    ledger = Ledger(rollouts_used=7, cost_usd=0.02)
    result = Result(
        best_id=child.id,
        best_candidate=CHILD,
        best_score=0.75,
        seed_candidate=SEED,
        seed_score=0.25,
        candidates=[seed, child],
        rejected=[],
        rollouts_used=7,
        ledger=ledger,
        iterations=2,
        stop_reason="max_rollouts",
        val_keys=["e1", "e2"],
    )
    return OptimizationFinished(
        stop_reason="max_rollouts",
        best_id=child.id,
        best_score=0.75,
        seed_score=0.25,
        ledger=ledger,
        iterations=2,
        result=result,
    )


def _first_session(tracker: MLflowTracker, run_dir: Path) -> None:
    tracker(_started(run_dir))
    tracker(_accepted(SEED, (), 0, 2, SEED_SCORES))
    tracker(_budget(0, 2, 0.25))
    tracker(
        ReflectionCalled(
            iteration=1,
            module="m",
            parent_id="seed00000000",
            prompt=f"Improve this. Authorization: Bearer {SECRET}",
            reply="```\nSay {x} hi!\n```",
        )
    )
    tracker(
        ProposalRejected(
            iteration=1,
            kind="mutation",
            reason="not_better",
            detail="child 0.5 <= parent 0.5",
            module="m",
            parent_ids=("seed00000000",),
            proposed_text="Say {x} hey",
        )
    )


def _second_half(tracker: MLflowTracker) -> None:
    tracker(_accepted(CHILD, ("seed00000000",), 1, 7, CHILD_SCORES))
    tracker(_budget(1, 7, 0.75))
    tracker(_finished())


def _table(client: MlflowClient, run_id: str, name: str, tmp_path: Path) -> list[dict]:
    local = client.download_artifacts(run_id, f"tables/{name}.json", str(tmp_path))
    payload = json.loads(Path(local).read_text())
    return [dict(zip(payload["columns"], row)) for row in payload["data"]]


def test_one_run_with_a_nested_run_per_candidate(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = MLflowTracker(experiment="listener", tracking_uri=uri, run_name="opt")
    _first_session(tracker, tmp_path / "run")
    _second_half(tracker)
    tracker.close()
    assert not tracker.failed

    client = MlflowClient(tracking_uri=uri)
    assert RunStore(tmp_path / "run").attribute(S.ATTR_RUN_ID) == tracker.run_id
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "opt"
    params = run.data.params
    assert params["max_rollouts"] == "50" and params["n_train"] == "3" and params["n_val"] == "2"
    assert params["reflection_max_tokens"] == "4096"
    assert params["llm.api_key"] == REDACTED
    assert params["reflection_lm"] == "openai/gpt-4o-mini"
    assert run.data.tags["gepa_graph.best_candidate_id"] == "child0000000"
    assert run.data.tags["gepa_graph.stop_reason"] == "max_rollouts"
    assert run.data.tags[S.TAG_SUMMARY["rollouts_used"]] == "7"
    assert run.data.tags[S.MLFLOW_NOTE].startswith(
        "validation score 0.250 (seed) -> 0.750 (best), +0.500; 7 rollouts"
    )
    # Charts over rollouts: the seed at step 0, one point per step, no single-dot chart.
    history = client.get_metric_history(tracker.run_id, S.BEST_SCORE)
    assert [(m.step, m.value) for m in history] == [(0, 0.25), (2, 0.25), (7, 0.75)]
    for name in run.data.metrics:
        steps = [m.step for m in client.get_metric_history(tracker.run_id, name)]
        assert len(steps) >= 2 and len(steps) == len(set(steps)), (name, steps)
    assert run.data.metrics == {
        S.VAL_SCORE: 0.75,
        S.BEST_SCORE: 0.75,
        S.SEED_SCORE: 0.25,
        S.IMPROVEMENT: 0.5,
        S.PARETO_SCORE: 0.75,
        S.POOL_SIZE: 1,
        S.COST_USD: 0.02,
        S.ROLLOUTS_IN_FLIGHT: 0,
    }

    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{tracker.run_id}'"
    )
    by_candidate = {c.data.tags["gepa_graph.candidate_id"]: c for c in children}
    assert set(by_candidate) == {"seed00000000", "child0000000"}
    child = by_candidate["child0000000"]
    assert child.data.params["parent_ids"] == "seed00000000"
    assert child.data.params["rollouts_at_discovery"] == "7"
    # One column ranks the parent and its candidates; per-example scores stay out of it.
    assert child.data.metrics == {S.VAL_SCORE: 0.75, S.EXAMPLE_SCORE: 0.5}
    examples = client.get_metric_history(child.info.run_id, S.EXAMPLE_SCORE)
    assert [(m.step, m.value) for m in examples] == [(0, 1.0), (1, 0.5)]
    assert _table(client, child.info.run_id, S.TABLE_VAL_SCORES, tmp_path) == [
        {"example_index": 0, "example": "e1", "score": 1.0},
        {"example_index": 1, "example": "e2", "score": 0.5},
    ]
    assert child.data.tags[S.TAG_BEST] == "true"
    assert S.TAG_BEST not in by_candidate["seed00000000"].data.tags  # moved to the winner
    assert child.data.tags[S.MLFLOW_NOTE].startswith("mutation of seed0000, changing m")
    local = client.download_artifacts(child.info.run_id, "candidate.json", str(tmp_path))
    record = json.loads(Path(local).read_text())
    assert record["val_scores"] == CHILD_SCORES and record["prompts"] == CHILD

    candidates = _table(client, tracker.run_id, "candidates", tmp_path)
    assert [r["candidate_id"] for r in candidates] == ["seed00000000", "child0000000"]
    rejected = _table(client, tracker.run_id, "rejected", tmp_path)
    assert rejected[0]["reason"] == "not_better" and rejected[0]["proposed_text"] == "Say {x} hey"
    reflections = _table(client, tracker.run_id, "reflections", tmp_path)
    assert SECRET not in reflections[0]["prompt"] and REDACTED in reflections[0]["prompt"]

    artifacts = {a.path for a in client.list_artifacts(tracker.run_id, "plots")}
    assert artifacts == {
        "plots/score_vs_rollouts.png",
        "plots/pareto_front.png",
        "plots/lineage.png",
    }
    report = Path(client.download_artifacts(tracker.run_id, "report.md", str(tmp_path)))
    assert "-Say {x} hi\n+Say {x} hi!" in report.read_text()
    assert "| what | value |" in report.read_text()  # a header row that says something


def test_default_run_name_and_experiment_opening_on_runs(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = MLflowTracker(experiment="named", tracking_uri=uri)
    tracker(_started(tmp_path / "run"))
    tracker(_budget(0, 2, 0.25))
    tracker(_budget(0, 2, 0.5))  # same step again: updates the point, never a second one
    tracker(_budget(1, 5, 0.5))
    tracker.close()
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(tracker.run_id)
    assert re.fullmatch(r"named-\d{8}-\d{6}", run.info.run_name)
    assert run.info.status == "FAILED"  # closed without finishing: shown as interrupted
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[S.EXPERIMENT_KIND] == S.EXPERIMENT_KIND_RUNS
    history = client.get_metric_history(tracker.run_id, S.BEST_SCORE)
    assert [(m.step, m.value) for m in history] == [(2, 0.5), (5, 0.5)]


def test_metrics_go_out_in_batches(tmp_path, monkeypatch):
    calls = []
    original = MlflowClient.log_batch

    def counting(self, run_id, metrics=(), params=(), tags=(), **kwargs):
        calls.append(len(metrics))
        return original(self, run_id, metrics=metrics, params=params, tags=tags, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("log_metric called: metrics must be batched")

    monkeypatch.setattr(MlflowClient, "log_batch", counting)
    monkeypatch.setattr(MlflowClient, "log_metric", forbidden)
    tracker = MLflowTracker(experiment="batch", tracking_uri=f"sqlite:///{tmp_path}/m.db")
    tracker(_started(tmp_path / "run"))
    for step in range(1, 201):
        tracker(_budget(step, step, 0.1))
    tracker.close()
    assert not tracker.failed
    metric_batches = [n for n in calls if n]
    assert sum(metric_batches) == 200 * 6  # best, pareto, pool, cost, improvement, in flight
    assert len(metric_batches) <= 3  # 1200 values in at most a few calls, not 1200


def test_unreachable_store_never_raises_and_reports_once(tmp_path, caplog):
    (tmp_path / "blocker").write_text("a file where the store's folder should be")
    tracker = MLflowTracker(tracking_uri=f"sqlite:///{tmp_path}/blocker/mlflow.db")
    with caplog.at_level(logging.WARNING, logger="gepa_graph.tracking"):
        _first_session(tracker, tmp_path / "run")
        _second_half(tracker)
        tracker.close()
    assert tracker.failed
    warnings = [r for r in caplog.records if "MLflow tracking failed" in r.getMessage()]
    assert len(warnings) == 1


def test_resume_continues_the_same_run(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    first = MLflowTracker(experiment="resume", tracking_uri=uri)
    _first_session(first, tmp_path / "run")
    first.close()  # killed before finishing
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(first.run_id).info.status == "FAILED"

    second = MLflowTracker(experiment="resume", tracking_uri=uri)
    second(_started(tmp_path / "run", resumed=True))
    second(_accepted(SEED, (), 0, 2, SEED_SCORES))  # already recorded: not duplicated
    _second_half(second)
    second.close()

    assert second.run_id == first.run_id
    assert client.get_run(first.run_id).info.status == "FINISHED"
    children = client.search_runs(
        [client.get_run(first.run_id).info.experiment_id],
        f"tags.mlflow.parentRunId = '{first.run_id}'",
    )
    assert sorted(c.data.tags["gepa_graph.candidate_id"] for c in children) == [
        "child0000000",
        "seed00000000",
    ]
    candidates = _table(client, first.run_id, "candidates", tmp_path)
    assert [r["candidate_id"] for r in candidates] == ["seed00000000", "child0000000"]
    history = client.get_metric_history(first.run_id, S.BEST_SCORE)
    assert [m.step for m in history] == [0, 2, 7]


@pytest.mark.parametrize(
    "text",
    [
        SECRET,
        "Bearer abcdefghijkl123456",
        "AKIAABCDEFGHIJKLMNOP",
        "api_key=abc123def456",
        "ghp_" + "a" * 36,
        "hf_" + "b" * 30,
    ],
)
def test_key_shaped_strings_are_redacted(text):
    assert redact({"note": f"before {text} after"}) == {"note": f"before {REDACTED} after"}


def test_redaction_by_key_spares_ordinary_settings():
    config = {
        "api_key": "x" * 3,
        "auth_token": "t",
        "max_tokens": 10,
        "token": "abc",
        "prompt": "Reply in JSON",
    }
    assert redact(config, by_key=True) == {
        "api_key": REDACTED,
        "auth_token": REDACTED,
        "max_tokens": 10,
        "token": REDACTED,
        "prompt": "Reply in JSON",
    }
