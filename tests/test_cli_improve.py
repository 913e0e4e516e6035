"""`gepa-graph improve` end to end against a real `mlflow server` on 127.0.0.1: a LangGraph agent
in production (scripted model) traced by MLflow autolog, people's expectations and feedback
logged with MLflow's API, then dataset -> optimization seeded from @production -> gate ->
promotion; a candidate better only within noise, and one equal to production, are not promoted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from gepa_graph import cli
from gepa_graph.tracking import dataset_from_traces, expectation_metric, registry, split
from gepa_graph.tracking import schema as S
from gepa_graph.tracking.gate import promote_if_better
from gepa_graph.tracking.server import local_server

sys.path.insert(0, str(Path(__file__).parent))
import production_agent as agent

TEST, VAL = 0.4, 0.3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with local_server(tmp_path_factory.mktemp("improve_server")) as uri:
        agent.register_production("calc", {"answer": agent.SEED}, uri)
        agent.serve_traffic("calc", "calc-prod", uri, agent.questions(40))
        yield uri


def _improve(uri: str, run_dir: str, *extra: str):
    args = [
        "improve",
        "calc",
        "--graph",
        "production_agent:graph",
        "--from-traces",
        "calc-prod",
        "--metric",
        "expectation:expected_answer",
        "--reflection-lm",
        "production_agent:reflect",
        "--max-rollouts",
        # The split follows random trace ids (up to ~20 validation examples), and the probe's
        # 3 seed runs come first: room for the seed's validation and a few proposals.
        "80",
        "--test",
        str(TEST),
        "--val",
        str(VAL),
        "--tracking-uri",
        uri,
        "--run-dir",
        run_dir,
        "--no-progress",
        *extra,
    ]
    result = CliRunner().invoke(cli.app, args)
    print(result.output)
    return result


def _runs(client: MlflowClient, kind: str):
    experiment = client.get_experiment_by_name("calc-improve")
    return client.search_runs(
        [experiment.experiment_id], f"tags.`{S.TAG_KIND}` = '{kind}'", order_by=["start_time"]
    )


def test_traces_to_a_promoted_prompt_and_no_promotion_without_evidence(server):
    uri = server
    client = MlflowClient(uri)
    metric = expectation_metric("expected_answer")
    held_out = split(dataset_from_traces("calc-prod", tracking_uri=uri), TEST, VAL).test
    assert len(held_out) >= 5

    # A candidate better on one held-out trace only: its mean beats production by more than
    # the margin, which the old mean-vs-margin gate promoted; the statistical gate does not.
    lucky = agent.SEED + f" Reply with the number only for '{held_out[0]['question']}'."
    agent.register_production("calc", {"answer": lucky}, uri, alias="candidate")
    noise = promote_if_better(
        "calc", agent.graph, held_out, metric, tracking_uri=uri, experiment="calc-noise"
    )
    assert noise.candidate_score - noise.production_score > noise.margin
    assert not noise.promoted and noise.stats.wins == 1 and noise.stats.p_wilcoxon == 0.5
    gate_run = client.get_run(noise.run_id)
    assert gate_run.data.tags[S.TAG_PROMOTION_DECISION] == "kept"
    assert "Wilcoxon p=0.5 is not below 0.05" in gate_run.data.tags[S.TAG_PROMOTION_REASON]
    assert registry.load_prompts("calc@production", uri) == {"answer": agent.SEED}

    # The loop: dataset from the traces, optimization from @production, gate, promotion.
    first = _improve(uri, "imp1", "--promote")
    assert first.exit_code == 0, first.output
    out = first.output
    assert "1/4 dataset: read 40 traces of experiment 'calc-prod'" in out
    assert "2/4 optimize: seeded from calc@production" in out
    assert "validation 0.0000 -> 1.0000" in out
    assert "3/4 gate: calc: candidate 1.0000 vs production 0.0000 (margin 0.02): passed" in out
    assert "4/4 promote: calc@production -> answer=v3" in out
    assert registry.load_prompts("calc@production", uri) == {"answer": agent.SEED + agent.RULE}
    production = registry.with_registry_prompts(agent.graph, "calc@production", uri)
    assert production.invoke({"question": "What is 2 + 3?"})["answer"] == "5"

    state = json.loads(Path("imp1/improve.json").read_text())
    (optimization,) = _runs(client, "optimization")
    assert optimization.info.run_id == state["optimization"]["run_id"]
    assert optimization.data.tags[S.TAG_SEED_FROM] == "calc@production"
    assert optimization.data.tags[S.TAG_TRACES_EXPERIMENT] == "calc-prod"
    datasets = {i.tags[0].value: i.dataset for i in optimization.inputs.dataset_inputs}
    assert set(datasets) == {"train", "val", "test"}
    trained_on = [
        json.loads(line)["id"] for line in Path("imp1/train.jsonl").read_text().splitlines()
    ]
    assert f'"num_rows": {len(trained_on)}' in datasets["train"].profile
    (gate,) = _runs(client, "promotion")
    assert gate.data.tags[S.TAG_PROMOTION_DECISION] == "promoted"
    assert gate.data.tags[S.TAG_IMPROVE_OPTIMIZATION_RUN] == optimization.info.run_id
    assert gate.data.metrics["p_wilcoxon"] < 0.05 and gate.data.metrics["ci_low"] > 0.02
    scores = client.get_metric_history(gate.info.run_id, S.GATE_CANDIDATE_EXAMPLE)
    assert [m.value for m in scores] == [1.0] * len(held_out)
    assert [i.tags[0].value for i in gate.inputs.dataset_inputs] == ["test"]

    # Rerunning the same improvement skips every finished step.
    again = _improve(uri, "imp1", "--promote")
    assert again.exit_code == 0, again.output
    assert again.output.count("skipped") == 3 and len(_runs(client, "optimization")) == 1

    # A new improvement from the now perfect production finds nothing better: kept.
    equal = _improve(uri, "imp2", "--promote")
    assert equal.exit_code == 1, equal.output
    assert "(margin 0.02): kept production: no difference on any example" in equal.output
    assert "4/4 promote: no, calc@production is kept" in equal.output
    kept = _runs(client, "promotion")[-1]
    assert kept.data.tags[S.TAG_PROMOTION_DECISION] == "kept"
    assert kept.data.tags[S.TAG_PROMOTION_REASON] == "no difference on any example"
    assert registry.load_prompts("calc@production", uri) == {"answer": agent.SEED + agent.RULE}


def test_improve_refuses_bad_input_in_one_line(server, tmp_path):
    result = _improve(server, "bad", "--filter", "tags.env ~ 'x'")
    assert result.exit_code == 2 and "error: trace filter" in result.output
    missing = CliRunner().invoke(
        cli.app,
        ["improve", "calc", "--graph", "production_agent:graph", "--from-traces", "nope"]
        + ["--metric", "expectation", "--reflection-lm", "x:y", "--max-rollouts", "5"]
        + ["--tracking-uri", server, "--run-dir", str(tmp_path / "r")],
    )
    assert missing.exit_code == 2 and "no MLflow experiment 'nope'" in missing.output
