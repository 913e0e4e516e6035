"""Prompt Registry: exact template round trip, manifest, aliases, promote, no duplicate versions."""

from __future__ import annotations

import json

import pytest
from gepa_graph.tracking import registry
from gepa_graph.tracking.registry import decode_template, encode_template
from mlflow import MlflowClient

from gepa_graph.events import Ledger
from gepa_graph.result import CandidateRecord, Result


@pytest.mark.parametrize(
    ("template", "stored", "brace_format"),
    [
        ("Answer {question} for {user}.", "Answer {{question}} for {{user}}.", "double"),
        ("JSON like {{\"a\": 1}} about {topic}", "JSON like {\"a\": 1} about {{topic}}", "double"),
        ("literal {{{x}}} around a variable", "literal {{{x}}} around a variable", "double"),
        ("no variables at all", "no variables at all", "double"),
        # Not expressible in MLflow's {{var}} form: stored verbatim.
        ("literal {{{{x}}}} reads as a variable", "literal {{{{x}}}} reads as a variable",
         "verbatim"),
        ("format spec {value:>10}", "format spec {value:>10}", "verbatim"),
        ("positional {0} field", "positional {0} field", "verbatim"),
        ("not an f-string { at all", "not an f-string { at all", "verbatim"),
        ("mustache {{name}} template", "mustache {name} template", "double"),
    ],
)
def test_templates_round_trip_exactly(template, stored, brace_format):
    assert encode_template(template) == (stored, brace_format)
    assert decode_template(stored, brace_format) == template


def test_untagged_registry_text_is_read_as_mlflow_template():
    # A prompt written by hand in the MLflow UI: {{var}} with spaces, literal single braces.
    text = decode_template("Hi {{ name }}, data: {\"k\": 1}", None)
    assert text == "Hi {name}, data: {{\"k\": 1}}"


def _result(prompts: dict[str, str], run_dir=None, score=0.75) -> Result:
    seed = {module: "seed " + module for module in prompts}
    records = [
        CandidateRecord(id="seed", prompts=seed, val_scores={"a": 0.5}, mean_score=0.5,
                        iteration=0, rollouts_at_discovery=1),
        CandidateRecord(id="best", prompts=prompts, parent_ids=("seed",), origin="mutation",
                        val_scores={"a": score}, mean_score=score, iteration=1,
                        rollouts_at_discovery=4),
    ]
    return Result(best_id="best", best_candidate=prompts, best_score=score,
                  seed_candidate=seed, seed_score=0.5, candidates=records, rejected=[],
                  rollouts_used=4, ledger=Ledger(rollouts_used=4), iterations=1,
                  stop_reason="max_rollouts", run_dir=run_dir, val_keys=["a"])


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('registry')}/mlflow.db"


PROMPTS = {
    "planner": "Plan for {goal}. Output {{\"steps\": [...]}}.",
    "agent/system prompt": "You help {user}; cite {{{source}}}.",
}


def test_register_promote_load(uri):
    done = registry.register(_result(PROMPTS), "shop", tracking_uri=uri, run_id="run-123")
    assert done.created == {"planner": True, "agent/system prompt": True}
    assert registry.load_prompts("shop@candidate", uri) == PROMPTS

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # Module names MLflow rejects are sanitized, with a hash so they stay unique.
    agent_name = registry.module_prompt_name("shop", "agent/system prompt")
    assert agent_name.startswith("shop.agent_system_prompt-")
    version = client.get_prompt_version_by_alias(agent_name, "candidate")
    assert version.template == "You help {{user}}; cite {{{source}}}."  # MLflow's own convention
    assert version.tags[registry.TAG_MODULE] == "agent/system prompt"
    assert version.tags[registry.TAG_RUN_ID] == "run-123"
    assert version.tags[registry.TAG_CANDIDATE] == "best"
    assert float(version.tags[registry.TAG_SCORE]) == 0.75

    with pytest.raises(LookupError, match="shop@production"):
        registry.load_prompts("shop@production", uri)
    moved = registry.promote("shop", tracking_uri=uri)
    assert moved == done.versions
    assert registry.load_prompts("prompts:/shop@production", uri) == PROMPTS
    assert int(client.get_prompt_version_by_alias("shop.planner", "production").version) == 1


def test_reregistering_unchanged_prompts_creates_no_version(uri):
    first = registry.register(_result(PROMPTS), "dedupe", tracking_uri=uri)
    again = registry.register(_result(PROMPTS, score=0.8), "dedupe", "rerun", uri)
    assert again.created == {"planner": False, "agent/system prompt": False}
    assert again.versions == first.versions
    assert again.manifest_version == first.manifest_version
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert [int(v.version) for v in client.search_prompt_versions("dedupe.planner")] == [1]
    assert int(client.get_prompt_version_by_alias("dedupe.planner", "rerun").version) == 1

    changed = {**PROMPTS, "planner": PROMPTS["planner"] + " Be brief."}
    third = registry.register(_result(changed), "dedupe", tracking_uri=uri)
    assert third.created == {"planner": True, "agent/system prompt": False}
    assert third.versions["planner"] == 2 and third.manifest_version == 2
    assert registry.load_prompts("dedupe@candidate", uri) == changed
    assert registry.load_prompts("dedupe/1", uri) == PROMPTS  # pinned by the first manifest


def test_promote_moves_every_module_to_the_same_set(uri):
    old = {"a": "old a {x}", "b": "old b"}
    new = {"a": "new a {x}", "b": "old b"}
    registry.register(_result(old), "fleet", tracking_uri=uri)
    registry.promote("fleet", tracking_uri=uri)
    registry.register(_result(new), "fleet", tracking_uri=uri)
    assert registry.load_prompts("fleet@production", uri) == old
    registry.promote("fleet", tracking_uri=uri)
    assert registry.load_prompts("fleet@production", uri) == new
    assert registry.seed_from_registry("fleet@production", uri) == new


def test_register_reads_the_mlflow_run_id_from_the_run_dir(uri, tmp_path):
    (tmp_path / "mlflow_run.json").write_text(json.dumps({"run_id": "from-run-dir"}))
    registry.register(_result({"m": "text"}, run_dir=str(tmp_path)), "withrun", tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    tags = client.get_prompt_version_by_alias("withrun.m", "candidate").tags
    assert tags[registry.TAG_RUN_ID] == "from-run-dir"


def test_names_that_are_not_manifests_are_refused(uri):
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.register_prompt("handmade", "Hello {{name}}")
    with pytest.raises(LookupError, match="not a gepa_graph manifest"):
        registry.load_prompts("handmade", uri)
    with pytest.raises(ValueError, match="not a gepa_graph manifest"):
        registry.register(_result({"m": "x"}), "handmade", tracking_uri=uri)
    with pytest.raises(ValueError, match="invalid"):
        registry.register(_result({"m": "x"}), "bad name!", tracking_uri=uri)


def test_a_production_graph_gets_its_promoted_prompts(uri):
    from typing import TypedDict

    from gepa_graph.integrations.langgraph import discover
    from langchain_core.prompts import ChatPromptTemplate
    from langgraph.graph import END, START, StateGraph

    from gepa_graph.testing.chat_model import ScriptedChatModel

    class State(TypedDict):
        question: str
        answer: str

    template = ChatPromptTemplate.from_messages([("system", "Answer {question}.")])
    chain = template | ScriptedChatModel(script=lambda messages: "ok")
    builder = StateGraph(State)
    builder.add_node("answer", lambda state: {"answer": chain.invoke(state).content})
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    graph = builder.compile()

    optimized = {"answer": "Answer {question} in one word; quote {{literally}}."}
    registry.register(_result(optimized), "prod", tracking_uri=uri)
    registry.promote("prod", tracking_uri=uri)
    production = registry.with_registry_prompts(graph, "prod@production", uri)
    assert discover(production)["answer"].text == optimized["answer"]
    assert discover(graph)["answer"].text == "Answer {question}."  # the original is untouched
