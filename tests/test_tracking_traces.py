"""Datasets from production traces: a real LangGraph agent traced by MLflow autolog, feedback
and expectations logged with MLflow's own API, read back as examples (against a SQLite store and
a real `mlflow server`); splits by trace id; the dataset on a run; the feedback metrics."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from gepa_graph.errors import InvalidInput, UnknownName
from gepa_graph.tracking import dataset_from_traces, expectation_metric, judge_metric, split
from gepa_graph.tracking.server import local_server
from gepa_graph.tracking.traces import TRACE_FIELD, log_dataset

sys.path.insert(0, str(Path(__file__).parent))
import production_agent as agent

ASKED = agent.questions(6)


@pytest.fixture(scope="module", params=["sqlite", "server"])
def traffic(request, tmp_path_factory):
    """Six production requests of `shop@production` traced in experiment `prod-traffic`, the
    last two tagged `env=canary`: (tracking URI, trace ids in order)."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "server":
        server = local_server(root)
        uri = server.__enter__()
        request.addfinalizer(lambda: server.__exit__(None, None, None))
    else:
        uri = f"sqlite:///{root}/mlflow.db"
    agent.register_production("shop", {"answer": agent.SEED}, uri)
    trace_ids = agent.serve_traffic("shop", "prod-traffic", uri, ASKED)
    client = MlflowClient(uri)
    for trace_id in trace_ids[-2:]:
        client.set_trace_tag(trace_id, "env", "canary")
    return uri, trace_ids


def test_examples_hold_the_traces_inputs_output_and_assessments(traffic):
    uri, trace_ids = traffic
    examples = dataset_from_traces("prod-traffic", tracking_uri=uri)
    assert [e["id"] for e in examples] == trace_ids  # keyed by trace id, oldest first
    for example, question in zip(examples, ASKED):
        assert example["question"] == question  # the root span's inputs are the example
        trace = example[TRACE_FIELD]
        assert trace["output"] == {
            "question": question,
            "answer": f"The answer is {agent.expected(question)}.",
        }
        assert trace["expectations"] == {"expected_answer": agent.expected(question)}
        assert trace["feedback"] == [
            {
                "name": "thumbs_up",
                "value": False,
                "rationale": "Give the bare number; no sentence around it.",
                "source": "CODE",
            }
        ]
        assert trace["state"] == "OK"


def test_filter_since_and_max_traces_choose_the_traces(traffic):
    uri, trace_ids = traffic
    canary = dataset_from_traces(
        "prod-traffic", filter_string="tags.env = 'canary'", tracking_uri=uri
    )
    assert [e["id"] for e in canary] == trace_ids[-2:]
    newest = dataset_from_traces("prod-traffic", max_traces=3, tracking_uri=uri)
    assert [e["id"] for e in newest] == trace_ids[-3:]
    fourth = dataset_from_traces("prod-traffic", tracking_uri=uri)[3][TRACE_FIELD]["request_time"]
    later = dataset_from_traces("prod-traffic", since=fourth, tracking_uri=uri)
    assert [e["id"] for e in later] == trace_ids[3:]
    with pytest.raises(UnknownName, match="no MLflow experiment 'nope'"):
        dataset_from_traces("nope", tracking_uri=uri)
    with pytest.raises(InvalidInput, match="holds no traces matching"):
        dataset_from_traces("prod-traffic", filter_string="tags.env = 'none'", tracking_uri=uri)
    with pytest.raises(InvalidInput, match="trace filter .* is not valid"):
        dataset_from_traces("prod-traffic", filter_string="tags.env ~ 'x'", tracking_uri=uri)
    with pytest.raises(InvalidInput, match="ISO 8601"):
        dataset_from_traces("prod-traffic", since="last tuesday", tracking_uri=uri)


def test_the_dataset_is_an_input_of_the_run(traffic):
    uri, _ = traffic
    examples = dataset_from_traces("prod-traffic", tracking_uri=uri)
    client = MlflowClient(uri)
    run_id = client.create_run(
        client.get_experiment_by_name("prod-traffic").experiment_id
    ).info.run_id
    log_dataset(run_id, examples[:4], "train", uri)
    log_dataset(run_id, examples[4:], "test", uri)
    inputs = client.get_run(run_id).inputs.dataset_inputs
    by_context = {i.tags[0].value: i.dataset for i in inputs}
    assert set(by_context) == {"train", "test"}
    assert by_context["train"].name == "traces-train"
    assert '"num_rows": 4' in by_context["train"].profile
    assert "mlflow_traces" in by_context["test"].source


def test_split_by_trace_id_is_reproducible_and_stable_as_traces_arrive():
    first = [{"id": f"tr-{i:04d}"} for i in range(300)]
    parts = split(first, test=0.2, val=0.3, seed=0)
    assert split(list(reversed(first)), test=0.2, val=0.3, seed=0) == parts  # order-free
    assert 40 <= len(parts.test) <= 80 and 70 <= len(parts.val) <= 110
    where = {e["id"]: name for name, part in zip(parts._fields, parts) for e in part}
    more = split(first + [{"id": f"tr-{i:04d}"} for i in range(300, 500)], 0.2, 0.3, seed=0)
    again = {e["id"]: name for name, part in zip(more._fields, more) for e in part}
    assert all(again[key] == name for key, name in where.items())  # no earlier trace moved
    assert split(first, 0.2, 0.3, seed=1) != parts
    tiny = split([{"id": "a"}, {"id": "b"}, {"id": "c"}], test=0.2, val=0.3)
    assert all(len(part) == 1 for part in tiny)  # every split asked for gets one
    with pytest.raises(InvalidInput, match="unique 'id'"):
        split([{"id": "a"}, {"id": "a"}])


def test_expectation_metric_scores_against_the_traces_expectation(traffic):
    uri, _ = traffic
    example = dataset_from_traces("prod-traffic", max_traces=1, tracking_uri=uri)[0]
    right = agent.expected(example["question"])
    metric = expectation_metric("expected_answer")
    assert metric(example, {"answer": f"  {right} "}).value == 1.0
    wrong = metric(example, {"answer": f"The answer is {right}."})
    assert wrong.value == 0.0
    assert f'Expected expected_answer: "{right}"' in wrong.feedback
    assert "Give the bare number" in wrong.feedback  # the production feedback, for reflection
    assert expectation_metric()(example, {"answer": right}).value == 1.0  # the only one
    with pytest.raises(ValueError, match="no expectation 'other'"):
        expectation_metric("other")(example, {"answer": right})


def test_judge_metric_uses_the_feedback_rationale_as_rubric(traffic):
    uri, _ = traffic
    example = dataset_from_traces("prod-traffic", max_traces=1, tracking_uri=uri)[0]
    asked = []

    def judge(prompt: str) -> str:
        asked.append(prompt)
        return "SCORE: 0.25\nFEEDBACK: Drop the sentence; give the number."

    score = judge_metric(judge, rubric="Be exact.")(example, {"answer": "The answer is 3."})
    assert score.value == 0.25 and score.feedback == "Drop the sentence; give the number."
    assert "Give the bare number; no sentence around it." in asked[0]
    assert "Be exact." in asked[0] and example["question"] in asked[0]
    assert judge_metric(lambda p: "SCORE: 7")(example, {"answer": "x"}).value == 1.0  # clamped
    with pytest.raises(ValueError, match="no 'SCORE:' line"):
        judge_metric(lambda p: "looks fine")(example, {"answer": "x"})
    with pytest.raises(ValueError, match="unknown LiteLLM model"):
        judge_metric("no-such-provider-model")
