"""A whole optimization with scripted LMs, tracked in MLflow and registered, against a SQLite store
and against a real `mlflow server` on 127.0.0.1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mlflow import MlflowClient

import gepa_graph as gg
from gepa_graph.tracking import MLflowTracker, registry
from gepa_graph.tracking import schema as S
from gepa_graph.tracking.server import local_server

SEEDS = {"greet": "Say hi to {name}", "sign": "Sign as {{the team}} for {name}"}


def _run(prompts, example):
    return prompts


def _metric(example, prediction):
    marks = sum(text.count("!") for text in prediction.values())
    return gg.Score(value=min(marks / 4, 1.0), feedback="add more enthusiasm")


class Reflector:
    """Appends '!' to the prompt under revision (the first fenced block of the reflection
    prompt); its second reply repeats the prompt unchanged, which the engine must reject."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, prompt: str) -> str:
        self.calls += 1
        current = re.search(r"(`{3,})\n(.*?)\n\1", prompt, re.DOTALL).group(2)
        new = current if self.calls == 2 else current + "!"
        return f"Adding enthusiasm.\n```\n{new}\n```"


TRAIN = [{"id": f"ex{i}", "name": f"user{i}"} for i in range(3)]


TEST = [{"id": f"held{i}", "name": f"other{i}"} for i in range(2)]


def _optimize(tracking, run_dir: Path, testset=None) -> gg.Result:
    return gg.optimize(
        gg.FunctionSystem(modules=SEEDS, fn=_run),
        TRAIN,
        TRAIN,
        metric=_metric,
        reflection_lm=Reflector(),
        max_rollouts=60,
        run_dir=run_dir,
        tracking=tracking,
        progress=False,
        config=gg.OptimizeConfig(use_merge=False),
        testset=testset,
    )


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` process on 127.0.0.1 (one worker, offline-safe), for the session."""
    with local_server(tmp_path_factory.mktemp("mlflow_server")) as uri:
        yield uri


@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('store')}/mlflow.db"


@pytest.fixture(params=["sqlite", "server"])
def tracking_uri(request):
    return request.getfixturevalue("mlflow_server" if request.param == "server" else "sqlite_uri")


def test_optimization_is_recorded_and_registered(tracking_uri, tmp_path, capfd):
    experiment = f"e2e-{tmp_path.name}"
    tracker = MLflowTracker(experiment=experiment, tracking_uri=tracking_uri)
    result = _optimize(tracker, tmp_path / "run", testset=TEST)
    assert result.rollouts_used <= 60  # held-out rollouts are outside the search budget
    assert result.test_seed_score == pytest.approx(result.seed_score)  # the metric ignores names
    assert result.test_best_score == pytest.approx(result.best_score)
    assert "View run" not in capfd.readouterr().out  # MLflow's own lines are off by default
    assert not tracker.failed
    assert result.best_score > result.seed_score and result.changed_modules()
    assert any(r.reason == "unchanged" for r in result.rejected)

    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["max_rollouts"] == "60" and run.data.params["n_val"] == "3"
    assert run.data.tags["gepa_graph.best_candidate_id"] == result.best_id
    assert run.info.run_name.startswith(f"{experiment}-")
    history = client.get_metric_history(tracker.run_id, S.BEST_SCORE)
    steps = [m.step for m in history]
    assert steps[0] == 0 and history[0].value == result.seed_score
    assert steps == sorted(set(steps)) and steps[-1] == result.rollouts_used
    assert run.data.metrics[S.VAL_SCORE] == pytest.approx(result.best_score)
    # How busy the rollout slots were, over the run (busy slot-seconds / available).
    slots = client.get_metric_history(tracker.run_id, S.SLOT_UTILIZATION)
    assert slots and all(0 < m.value <= 1 for m in slots)
    assert run.data.metrics[S.IMPROVEMENT] == pytest.approx(result.best_score - result.seed_score)
    held_out = client.get_metric_history(tracker.run_id, S.TEST_SCORE)
    assert [(m.step, m.value) for m in held_out] == [
        (0, pytest.approx(result.test_seed_score)),
        (result.rollouts_used, pytest.approx(result.test_best_score)),
    ]
    assert "Held-out score" in client.get_run(tracker.run_id).data.tags[S.MLFLOW_NOTE]

    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{tracker.run_id}'"
    )
    assert len(children) == len(result.candidates)
    by_id = {c.data.tags["gepa_graph.candidate_id"]: c for c in children}
    for record in result.candidates:
        child = by_id[record.id]
        assert child.data.params["parent_ids"] == ",".join(record.parent_ids)
        assert child.data.params["iteration"] == str(record.iteration)
        assert child.data.metrics[S.VAL_SCORE] == pytest.approx(record.mean_score)
        assert (child.data.tags.get(S.TAG_BEST) == "true") == (record.id == result.best_id)
        local = client.download_artifacts(child.info.run_id, "candidate.json", str(tmp_path))
        logged = json.loads(Path(local).read_text())
        assert logged["val_scores"] == record.val_scores and logged["prompts"] == record.prompts

    rejected = client.download_artifacts(tracker.run_id, "tables/rejected.json", str(tmp_path))
    assert "unchanged" in Path(rejected).read_text()
    plots = {a.path for a in client.list_artifacts(tracker.run_id, "plots")}
    assert len(plots) == 3

    name = f"agent-{tmp_path.name}".replace("_", "-")
    done = registry.register(result, name, tracking_uri=tracking_uri)
    assert "Waiting up to" not in capfd.readouterr().err
    version = client.get_prompt_version_by_alias(f"{name}.sign", "candidate")
    assert version.tags[S.VERSION_RUN_ID] == tracker.run_id  # read from run_dir
    assert registry.load_prompts(f"{name}@candidate", tracking_uri) == result.best_candidate
    again = registry.register(result, name, tracking_uri=tracking_uri)
    assert again.versions == done.versions and not any(again.created.values())
    registry.promote(name, tracking_uri=tracking_uri)
    assert registry.load_prompts(f"{name}@production", tracking_uri) == result.best_candidate
    # The run lists the versions it produced; the experiment lists the prompts.
    linked = json.loads(client.get_run(tracker.run_id).data.tags["mlflow.linkedPrompts"])
    assert sorted(p["name"] for p in linked) == [f"{name}.greet", f"{name}.sign"]
    winner = by_id[result.best_id].info.run_id
    assert json.loads(client.get_run(winner).data.tags["mlflow.linkedPrompts"]) == linked
    # The experiment holds the saved runs view with the score columns.
    view = json.loads(client.get_experiment(run.info.experiment_id).tags[S.RUNS_VIEW_TAG])
    assert view["orderByKey"] == "metrics.`val_score`" and view["orderByAsc"] is False
    assert "metrics.`improvement`" in view["selectedColumns"]
    assert view["runsExpanded"] == {tracker.run_id: True}
    listed = client.search_prompts(filter_string=f"experiment_id = '{run.info.experiment_id}'")
    assert sorted(p.name for p in listed) == [f"{name}.greet", f"{name}.sign"]

    # A new optimization seeded from production records where its seed came from.
    seeds = registry.seed_from_registry(f"{name}@production", tracking_uri)
    second = MLflowTracker(experiment=experiment, tracking_uri=tracking_uri)
    gg.optimize(
        gg.FunctionSystem(modules=SEEDS, fn=_run),
        TRAIN,
        metric=_metric,
        reflection_lm=Reflector(),
        max_rollouts=6,
        run_dir=tmp_path / "second",
        progress=False,
        seed_prompts=seeds,
        tracking=second,
    )
    tags = client.get_run(second.run_id).data.tags
    assert tags[S.TAG_SEED_FROM] == f"{name}@production"
    assert json.loads(tags[S.TAG_SEED_VERSIONS]) == done.versions


def test_registry_prompts_seed_a_new_optimization(sqlite_uri, tmp_path):
    uri = sqlite_uri
    first = _optimize(None, tmp_path / "first")
    registry.register(first, "warm", tracking_uri=uri)
    seeds = registry.seed_from_registry("warm@candidate", uri)
    second = gg.optimize(
        gg.FunctionSystem(modules=SEEDS, fn=_run),
        TRAIN,
        metric=_metric,
        reflection_lm=Reflector(),
        max_rollouts=10,
        run_dir=tmp_path / "second",
        progress=False,
        seed_prompts=seeds,
    )
    assert second.seed_candidate == first.best_candidate
    assert second.seed_score == pytest.approx(first.best_score)


def test_mlflow_console_lines_only_when_verbose(mlflow_server, tmp_path, capfd, monkeypatch):
    for verbose in (True, False):
        monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
        tracker = MLflowTracker(experiment="console", tracking_uri=mlflow_server, verbose=verbose)
        gg.optimize(
            gg.FunctionSystem(modules=SEEDS, fn=_run),
            TRAIN,
            metric=_metric,
            reflection_lm=Reflector(),
            max_rollouts=6,
            run_dir=tmp_path / str(verbose),
            progress=False,
            tracking=tracker,
        )
        assert ("View run" in capfd.readouterr().out) == verbose
