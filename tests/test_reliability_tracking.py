"""MLflow failing mid-run never costs the optimization; a resume re-syncs what was missed.
Planted secrets never reach MLflow, the run directory or the logs."""

import logging

from mlflow import MlflowClient

import gepa_graph as gg
from gepa_graph.testing.rules import RuleTask
from gepa_graph.tracking import MLflowTracker

SECRET = "sk-planted-secret-0123456789abcdef"


def _optimize(task, run_dir, tracker, resume=False, system=None):
    return gg.optimize(
        system or task.system(),
        task.examples(10, seed=1, prefix="t"),
        task.examples(6, seed=2, prefix="v"),
        metric=task.metric,
        reflection_lm=task.reflection_lm(),
        max_rollouts=120,
        run_dir=run_dir,
        tracking=tracker,
        resume=resume,
        progress=False,
    )


def _candidate_runs(uri, experiment):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    return {
        r.data.tags["gepa_graph.candidate_id"]
        for r in runs
        if "gepa_graph.candidate_id" in r.data.tags
    }


def test_mlflow_failing_mid_run_is_reported_once_and_resume_resyncs(tmp_path, monkeypatch, caplog):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    task = RuleTask(n_types=6)
    real_create_run = MlflowClient.create_run
    calls = {"n": 0}

    def flaky_create_run(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:  # the parent run and the seed's record get through, then it breaks
            raise ConnectionError("tracking server unreachable")
        return real_create_run(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "create_run", flaky_create_run)
    with caplog.at_level(logging.WARNING):
        result = _optimize(task, tmp_path / "run", MLflowTracker("exp", tracking_uri=uri))
    assert len(result.candidates) >= 3 and result.best_score > result.seed_score
    warnings = [r for r in caplog.records if "MLflow tracking failed" in r.getMessage()]
    assert len(warnings) == 1
    # The local checkpoint is complete although tracking broke.
    assert [c.id for c in gg.load_result(tmp_path / "run").candidates] == [
        c.id for c in result.candidates
    ]
    assert len(_candidate_runs(uri, "exp")) == 1

    monkeypatch.setattr(MlflowClient, "create_run", real_create_run)
    resumed = _optimize(task, tmp_path / "run", MLflowTracker("exp", tracking_uri=uri), resume=True)
    assert resumed.best_id == result.best_id
    assert _candidate_runs(uri, "exp") == {c.id for c in result.candidates}


def test_planted_secrets_reach_no_mlflow_record_file_or_log(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    task = RuleTask(n_types=4)

    def leaky(prompts, example, trace):
        trace.add(
            "llm",
            node=None,
            inputs={"headers": {"Authorization": f"Bearer {SECRET}"}},
            outputs=f"key={SECRET}",
        )
        return task.answer(prompts, example, trace)

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with caplog.at_level(logging.DEBUG, logger="gepa_graph"):
        _optimize(
            task,
            tmp_path / "run",
            MLflowTracker("secrets", tracking_uri=uri),
            system=gg.FunctionSystem(modules=task.seed_prompts(), fn=leaky),
        )
    assert SECRET not in caplog.text
    leaked = [
        str(path)
        for path in tmp_path.rglob("*")
        if path.is_file() and SECRET.encode() in path.read_bytes()
    ]
    assert leaked == []
    client = MlflowClient(uri)
    for run in client.search_runs([client.get_experiment_by_name("secrets").experiment_id]):
        assert SECRET not in str(run.data.params) + str(run.data.tags)


def test_an_mlflow_server_that_does_not_answer_turns_tracking_off_at_once(
    tmp_path, monkeypatch, caplog
):
    """Issue 11: a down server held the run for minutes in MLflow's own connection retries."""
    import socket

    import gepa_graph.tracking.mlflow as tracking_mlflow

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clients = []
    monkeypatch.setattr(
        tracking_mlflow, "MlflowClient", lambda *a, **k: clients.append(1) or MlflowClient(*a, **k)
    )
    tracker = MLflowTracker("down", tracking_uri=f"http://127.0.0.1:{port}")
    with caplog.at_level(logging.WARNING, logger="gepa_graph"):
        result = _optimize(RuleTask(n_types=3), tmp_path / "run", tracker)
    assert result.best_score >= result.seed_score and tracker.failed and clients == []
    warnings = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(warnings) == 1 and "tracking is off" in warnings[0]
