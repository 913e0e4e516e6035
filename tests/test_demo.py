"""`gepa-graph demo` wiring, offline: a scripted LiteLLM provider plays both the agent's model
(through ChatLiteLLM) and the reflection LM. The agent answers in ISO format only once its
prompt asks for YYYY-MM-DD, and the scripted reflection adds that only when the metric's
feedback it reads asks for it, so the held-out score rises only if the whole loop works."""

import re

import pytest
from typer.testing import CliRunner

from gepa_graph import cli
from gepa_graph.cli import demo
from gepa_graph.testing.reflection import ScriptedLiteLLM, current_prompt

pytest.importorskip("langchain_litellm")

ANSWERS = {text: iso for text, iso in demo.DATA}


def scripted_reply(prompt):
    if "You are improving one instruction" in prompt:
        current = current_prompt(prompt)
        if "YYYY-MM-DD" in prompt:  # the feedback names the format
            new = current + " Reply with only the date, formatted YYYY-MM-DD."
        else:
            new = current + " Be careful."
        return f"Improved:\n```\n{new}\n```"
    text = next(t for t in ANSWERS if t in prompt)
    if "YYYY-MM-DD" in prompt:
        return ANSWERS[text]
    return f"The date in the text is mentioned in: {text}"


@pytest.fixture
def scripted():
    provider = ScriptedLiteLLM(scripted_reply, provider="scripteddemo")
    return provider.register()


def test_metric_scores_and_explains():
    example = {"answer": "2024-04-03"}
    assert demo.metric(example, {"date": "2024-04-03"}).value == 1.0
    partial = demo.metric(example, {"date": "The date is 2024-04-03."})
    assert partial.value == 0.5 and "exactly '2024-04-03'" in partial.feedback
    wrong = demo.metric(example, {"date": "2024-03-04"})
    assert wrong.value == 0.0
    assert "3 April 2024" in wrong.feedback and "day/month/year" in wrong.feedback
    assert demo.metric(example, None).value == 0.0


def test_splits_are_disjoint_and_labelled():
    train, val, test = demo.splits()
    keys = [e["id"] for e in train + val + test]
    assert len(keys) == len(set(keys)) == 24
    for example in train + val + test:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", example["answer"])


def test_run_demo_improves_registers_and_tracks(scripted, tmp_path):
    from mlflow import MlflowClient

    from gepa_graph.tracking import registry

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    report = demo.run_demo(
        task_lm=scripted,
        reflection_lm=scripted,
        max_rollouts=40,
        max_seconds=None,
        tracking_uri=uri,
        run_dir=tmp_path / "run",
        progress=False,
        say=lambda text: None,
    )
    assert report.seed_test == 0.0
    assert report.best_test == 1.0
    assert report.result.best_score == 1.0
    assert "+extract" not in report.diff and "YYYY-MM-DD" in report.diff
    assert report.registered == {"extract": 1}
    prompts = registry.load_prompts("date-extractor@candidate", uri)
    assert prompts == report.result.best_candidate
    run = MlflowClient(tracking_uri=uri).get_run(report.run_id)
    assert run.info.status == "FINISHED"
    text = demo.summary(report)
    assert "seed 0.000 -> best 1.000" in text and "gepa-graph ui" in text
    assert "gepa-graph promote date-extractor" in text


def test_cli_demo_with_remote_style_models(scripted, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = CliRunner().invoke(
        cli.app,
        [
            "demo",
            "--task-lm",
            scripted,
            "--reflection-lm",
            scripted,
            "--max-rollouts",
            "40",
            "--tracking-uri",
            uri,
            "--run-dir",
            str(tmp_path / "run"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "held-out test (10 examples" in result.output
    assert "seed 0.000 -> best 1.000" in result.output
    assert "registered date-extractor@candidate" in result.output
    assert "+Find the date in the text. Reply with only the date" in result.output


def test_cli_demo_without_the_local_model_fails_in_one_line(tmp_path, monkeypatch):
    from gepa_graph import local

    monkeypatch.setenv(local.ENV_MODEL, str(tmp_path / "missing.gguf"))
    result = CliRunner().invoke(cli.app, ["demo", "--no-progress"])
    assert result.exit_code == 2
    assert "error:" in result.output and "missing.gguf is not a file" in result.output


@pytest.mark.local_model
def test_real_demo_smoke(tmp_path):
    """The demo on the real local model, cut to one reflection and a few rollouts."""
    from gepa_graph import local

    if local.runtime_problem():
        pytest.skip(local.runtime_problem())
    report = demo.run_demo(
        max_rollouts=13,  # the probe's 3 seed runs, the seed's validation, one proposal
        max_seconds=None,
        n_train=3,
        n_val=2,
        n_test=2,
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        run_dir=tmp_path / "run",
        progress=False,
        say=lambda text: None,
    )
    result = report.result
    assert result.rollouts_used <= 13
    assert result.iterations >= 1 or result.stop_reason == "perfect_score"
    assert 0.0 <= report.seed_test <= 1.0 and 0.0 <= report.best_test <= 1.0
    assert report.registered
