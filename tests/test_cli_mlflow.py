"""The `gepa-graph` command with MLflow: optimize --register, show (a run folder and an MLflow
run, both read through gg.load_result), promote (gated by the paired test) and rollback."""

from __future__ import annotations

import json

import pytest

from gepa_graph.store import RunStore
from gepa_graph.tracking import registry
from gepa_graph.tracking import schema as S
from tests.cli_app import invoke, make_app_dir


@pytest.fixture
def app_dir(tmp_path, monkeypatch):
    return make_app_dir(tmp_path, monkeypatch)


def test_optimize_register_show_promote(app_dir):
    uri = f"sqlite:///{app_dir}/mlflow.db"
    result = invoke(
        "optimize",
        "cliapp:system",
        "cliapp:metric",
        "--train",
        "train.jsonl",
        "--reflection-lm",
        "cliapp:reflect",
        "--max-rollouts",
        "30",
        "--run-dir",
        "run",
        "--experiment",
        "cli",
        "--tracking-uri",
        uri,
        "--register",
        "cliagent",
        "--test",
        "train.jsonl",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert "Say hi to {name}!!" in result.output
    assert "registered cliagent@candidate: m=v1" in result.output
    assert registry.load_prompts("cliagent@candidate", uri) == {"m": "Say hi to {name}!!"}
    run_id = RunStore(app_dir / "run").attribute(S.ATTR_RUN_ID)

    from_disk = invoke("show", "run")
    assert from_disk.exit_code == 0, from_disk.output
    assert "stop: perfect_score" in from_disk.output and "Say hi to {name}!!" in from_disk.output

    from_mlflow = invoke("show", "--run-id", run_id, "--tracking-uri", uri)
    assert from_mlflow.exit_code == 0, from_mlflow.output
    assert "FINISHED" in from_mlflow.output and "Say hi to {name}!!" in from_mlflow.output
    # One reader: both show the saved held-out scores (the folder's checkpoint, the run's result).
    held_out = "held-out 0.0000 (seed) -> 1.0000 (best)"
    assert held_out in from_disk.output and held_out in from_mlflow.output

    promoted = invoke("promote", "cliagent", "--tracking-uri", uri)
    assert promoted.exit_code == 0, promoted.output
    assert "cliagent.m: production -> v1" in promoted.output
    assert registry.load_prompts("cliagent@production", uri) == {"m": "Say hi to {name}!!"}


def _optimize_and_register(app_dir, uri, *extra):
    result = invoke(
        "optimize",
        "cliapp:system",
        "cliapp:metric",
        "--train",
        "train.jsonl",
        "--reflection-lm",
        "cliapp:reflect",
        "--max-rollouts",
        "30",
        "--experiment",
        "cli",
        "--tracking-uri",
        uri,
        "--register",
        "gated",
        "--no-progress",
        *extra,
    )
    assert result.exit_code == 0, result.output
    return result


def test_promotion_gate_and_rollback(app_dir):
    uri = f"sqlite:///{app_dir}/mlflow.db"
    _optimize_and_register(app_dir, uri, "--run-dir", "run1")
    # Eight held-out examples: the gate's tests cannot tell three apart from noise.
    lines = [json.dumps({"id": f"h{i}", "name": f"held{i}"}) for i in range(8)]
    (app_dir / "holdout.jsonl").write_text("\n".join(lines) + "\n")
    gate = (
        "promote",
        "gated",
        "--gate",
        "holdout.jsonl",
        "--graph",
        "cliapp:system",
        "--metric",
        "cliapp:metric",
        "--tracking-uri",
        uri,
    )
    won = invoke(*gate)
    # No production yet: the graph's own prompt (score 0) is the baseline.
    assert won.exit_code == 0, won.output
    assert "gated: candidate 1.0000 vs graph 0.0000 (margin 0.02): promoted" in won.output
    assert registry.load_prompts("gated@production", uri) == {"m": "Say hi to {name}!!"}

    tie = invoke(*gate)  # candidate == production: not better by the margin
    assert tie.exit_code == 1 and "vs production 1.0000 (margin 0.02): kept" in tie.output

    from mlflow import MlflowClient

    from gepa_graph.tracking import schema as S

    client = MlflowClient(uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("cli").experiment_id],
        f"tags.`{S.TAG_KIND}` = 'promotion'",
        order_by=["start_time"],
    )
    assert [r.data.tags[S.TAG_PROMOTION_DECISION] for r in runs] == ["promoted", "kept"]
    metrics = runs[0].data.metrics
    assert (metrics[S.GATE_CANDIDATE_SCORE], metrics[S.GATE_PRODUCTION_SCORE]) == (1.0, 0.0)

    client.set_prompt_alias("gated.m", "production", 1)  # as if moved earlier by hand
    registry.register(registry_result({"m": "Say hi to {name}!"}), "gated", tracking_uri=uri)
    moved = invoke("promote", "gated", "--tracking-uri", uri)
    assert moved.exit_code == 0 and "gated.m: production -> v2" in moved.output
    back = invoke("rollback", "gated", "--tracking-uri", uri)
    assert back.exit_code == 0, back.output
    assert "gated.m: production v2 -> v1" in back.output
    assert registry.load_prompts("gated@production", uri) == {"m": "Say hi to {name}!!"}


def registry_result(prompts):
    from gepa_graph.events import Ledger
    from gepa_graph.result import CandidateRecord, Result

    record = CandidateRecord(
        id="x",
        prompts=prompts,
        val_scores={"a": 1.0},
        mean_score=1.0,
        iteration=0,
        rollouts_at_discovery=1,
    )
    return Result(
        best_id="x",
        best_candidate=prompts,
        best_score=1.0,
        seed_candidate=prompts,
        seed_score=1.0,
        candidates=[record],
        rejected=[],
        rollouts_used=1,
        ledger=Ledger(),
        iterations=0,
        stop_reason="x",
        val_keys=["a"],
    )


def test_show_run_id_never_creates_a_store_and_names_wrong_ids(
    app_dir, tmp_path_factory, monkeypatch
):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    missing = invoke("show", "--run-id", "0123456789abcdef")
    assert missing.exit_code == 2
    assert f"error: no MLflow store at {elsewhere / 'mlflow.db'}" in missing.stderr
    assert not (elsewhere / "mlflow.db").exists()
    monkeypatch.chdir(app_dir)

    uri = f"sqlite:///{app_dir}/mlflow.db"
    _optimize_and_register(app_dir, uri, "--run-dir", "run")
    unknown = invoke("show", "--run-id", "0123456789abcdef", "--tracking-uri", uri)
    assert unknown.exit_code == 2
    assert "error: no MLflow run '0123456789abcdef' at sqlite:///" in unknown.stderr

    from mlflow import MlflowClient

    parent = RunStore(app_dir / "run").attribute(S.ATTR_RUN_ID)
    child = (
        MlflowClient(uri)
        .search_runs(
            [MlflowClient(uri).get_run(parent).info.experiment_id],
            f"tags.mlflow.parentRunId = '{parent}'",
        )[0]
        .info.run_id
    )
    candidate = invoke("show", "--run-id", child, "--tracking-uri", uri)
    assert candidate.exit_code == 2
    assert f"of an optimization; show the optimization with --run-id {parent}" in candidate.stderr
    shown = invoke("show", "--run-id", parent, "--tracking-uri", uri)
    assert shown.exit_code == 0 and "validation score 0.000 (seed) -> 1.000 (best)" in shown.output
    assert "Downloading artifacts" not in shown.output + shown.stderr
