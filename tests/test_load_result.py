"""gg.load_result: a finished LangGraph optimization read back from its run folder or from its
MLflow run, with no system object, applied to a freshly built graph: a plain ``graph.invoke``
then sends the winner."""

from __future__ import annotations

import importlib
import re
import warnings

import pytest

import gepa_graph as gg
from gepa_graph.tracking import MLflowTracker

AGENT = "class_instance"  # prompt objects built inside build(): each build is a fresh graph


def build():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(f"tests.agents.{AGENT}").build()


def fixing_reflection(case):
    """Reflection LM: the current prompt plus its module's fix phrase."""

    def reflect(prompt):
        current = re.search(r"(`{3,})\n(.*?)\n\1", prompt, re.S).group(2)
        return f"```\n{current}\n{case.fixes['assistant']}\n```"

    return reflect


def optimize(tmp_path, **kwargs):
    case = build()
    result = gg.optimize(
        case.graph,
        case.examples,
        case.examples,
        metric=case.metric,
        reflection_lm=fixing_reflection(case),
        max_rollouts=40,
        run_dir=tmp_path / "run",
        progress=False,
        config=gg.OptimizeConfig(minibatch_size=2, seed=0),
        **kwargs,
    )
    assert result.best_score == 1.0 > result.seed_score
    return case, result


def sends_the_winner(loaded):
    """Apply ``loaded`` to a graph built afresh; a plain invoke carries the winning prompt."""
    fresh = build()
    fix = fresh.fixes["assistant"]
    example = fresh.examples[0]
    before = fresh.graph.invoke({"messages": [("user", example["question"])]})
    assert f"gate {example['answer']}" not in before["messages"][-1].text
    loaded.apply(fresh.graph)
    fresh.models["assistant"].reset()
    after = fresh.graph.invoke({"messages": [("user", example["question"])]})
    assert f"gate {example['answer']}" in after["messages"][-1].text
    sent = [m.text for call in fresh.models["assistant"].calls for m in call]
    assert any(fix in text for text in sent)


def test_a_run_folder_loads_and_applies_without_its_system(tmp_path):
    _, result = optimize(tmp_path)
    loaded = gg.load_result(tmp_path / "run")
    assert loaded.model_dump() == result.model_dump()
    assert not loaded.__pydantic_private__  # plain data: nothing live travels with it
    sends_the_winner(loaded)
    # The result optimize returned applies the same way.
    sends_the_winner(result)


def test_an_mlflow_run_id_loads_and_applies(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"  # a file in tmp_path (MLflow 3 refuses ./mlruns)
    tracker = MLflowTracker(experiment="load", tracking_uri=uri, plots=False)
    _, result = optimize(tmp_path, tracking=tracker)
    assert not tracker.failed and tracker.run_id
    for source in (tracker.run_id, f"runs:/{tracker.run_id}"):
        loaded = gg.load_result(source, tracking_uri=uri)
        assert loaded.best_candidate == result.best_candidate
        assert [c.id for c in loaded.candidates] == [c.id for c in result.candidates]
    # A candidate run stands for its optimization.
    from mlflow import MlflowClient

    from gepa_graph.tracking import schema as S

    client = MlflowClient(tracking_uri=uri)
    child = client.search_runs(
        [client.get_run(tracker.run_id).info.experiment_id],
        f"tags.`{S.MLFLOW_PARENT_RUN}` = '{tracker.run_id}'",
    )[0]
    assert gg.load_result(child.info.run_id, tracking_uri=uri).best_id == result.best_id
    sends_the_winner(gg.load_result(tracker.run_id, tracking_uri=uri))
    with pytest.raises(LookupError, match="no MLflow run"):
        gg.load_result("0" * 32, tracking_uri=uri)


def test_a_run_with_a_testset_saves_its_held_out_scores(tmp_path):
    """The testset is scored inside the run: saved with it (load_result equals the returned
    Result, field by field), told to listeners before the end, and a finished run resumed
    returns the saved scores without a rollout."""
    calls = []
    events = []

    def run(prompts, example):
        calls.append((prompts["m"], example["id"]))
        return prompts["m"]

    def metric(example, prediction):
        return gg.Score(value=min(prediction.count("!") / 2, 1.0), feedback="more !")

    def reflect(prompt):
        current = re.search(r"(`{3,})\n(.*?)\n\1", prompt, re.S).group(2)
        return f"```\n{current}!\n```"

    def optimize_run(**kwargs):
        return gg.optimize(
            gg.FunctionSystem(modules={"m": "Say hi to {name}"}, fn=run),
            [{"id": f"t{i}", "name": f"u{i}"} for i in range(3)],
            metric=metric,
            reflection_lm=reflect,
            max_rollouts=30,
            run_dir=tmp_path / "run",
            progress=False,
            testset=[{"id": f"held{i}", "name": f"v{i}"} for i in range(2)],
            listeners=[events.append],
            **kwargs,
        )

    result = optimize_run()
    assert result.test_seed_score == 0.0 and result.test_best_score == 1.0
    kinds = [type(event).__name__ for event in events]
    assert kinds[-2:] == ["TestsetEvaluated", "OptimizationFinished"]
    assert events[-1].result == result  # the end carries the held-out scores
    assert events[-2].best_scores == {"held0": 1.0, "held1": 1.0}

    loaded = gg.load_result(tmp_path / "run")
    for field in type(result).model_fields:
        assert getattr(loaded, field) == getattr(result, field), field

    paid, events[:] = len(calls), []
    again = optimize_run(resume=True)
    assert len(calls) == paid  # nothing scored again
    assert again == result
    assert [type(event).__name__ for event in events][-2:] == [
        "TestsetEvaluated",
        "OptimizationFinished",
    ]
