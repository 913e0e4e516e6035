"""Prompt Registry: exact template round trip, module aliases as the one source of truth,
promote and rollback of every module together, no duplicate versions, run/experiment/trace links."""

from __future__ import annotations

import json
import os

import mlflow
import pytest
from mlflow import MlflowClient

from gepa_graph.events import Ledger
from gepa_graph.result import CandidateRecord, Result
from gepa_graph.tracking import registry
from gepa_graph.tracking import schema as S
from gepa_graph.tracking.braces import decode_template, encode_template


@pytest.mark.parametrize(
    ("template", "stored", "brace_format"),
    [
        ("Answer {question} for {user}.", "Answer {{question}} for {{user}}.", "double"),
        ('JSON like {{"a": 1}} about {topic}', 'JSON like {"a": 1} about {{topic}}', "double"),
        ("literal {{{x}}} around a variable", "literal {{{x}}} around a variable", "double"),
        ("no variables at all", "no variables at all", "double"),
        # Not expressible in MLflow's {{var}} form: stored verbatim.
        (
            "literal {{{{x}}}} reads as a variable",
            "literal {{{{x}}}} reads as a variable",
            "verbatim",
        ),
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
    text = decode_template('Hi {{ name }}, data: {"k": 1}', None)
    assert text == 'Hi {name}, data: {{"k": 1}}'


def test_a_dotted_mustache_name_is_one_variable_everywhere():
    """The core's template parser and the registry read ``{{user.name}}`` with one pattern:
    a variable to the core (and to MLflow), so literal text that MLflow would read as one is
    stored verbatim, and a hand-written one, which has no f-string equivalent, stays text."""
    from gepa_graph import templates

    assert templates.variables("Hi {{user.name}} and {{ x }}", "mustache") == ("user.name", "x")
    literal = "literal {{{{user.name}}}} beside {x}"  # f-string text: {{user.name}} printed
    assert encode_template(literal) == (literal, "verbatim")
    assert decode_template(*encode_template(literal)) == literal
    assert decode_template("Hi {{user.name}}, {{x}}", None) == "Hi {{{{user.name}}}}, {x}"


def _result(prompts: dict[str, str], run_dir=None, score=0.75) -> Result:
    seed = {module: "seed " + module for module in prompts}
    records = [
        CandidateRecord(
            id="seed",
            prompts=seed,
            val_scores={"a": 0.5},
            mean_score=0.5,
            iteration=0,
            rollouts_at_discovery=1,
        ),
        CandidateRecord(
            id="best",
            prompts=prompts,
            parent_ids=("seed",),
            origin="mutation",
            val_scores={"a": score},
            mean_score=score,
            iteration=1,
            rollouts_at_discovery=4,
        ),
    ]
    return Result(
        best_id="best",
        best_candidate=prompts,
        best_score=score,
        seed_candidate=seed,
        seed_score=0.5,
        candidates=records,
        rejected=[],
        rollouts_used=4,
        ledger=Ledger(rollouts_used=4),
        iterations=1,
        stop_reason="max_rollouts",
        run_dir=run_dir,
        val_keys=["a"],
    )


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('registry')}/mlflow.db"


PROMPTS = {
    "planner": 'Plan for {goal}. Output {{"steps": [...]}}.',
    "agent/system prompt": "You help {user}; cite {{{source}}}.",
}


def _client(uri):
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_register_promote_load(uri):
    done = registry.register(_result(PROMPTS), "shop", tracking_uri=uri, run_id=None)
    assert done.created == {"planner": True, "agent/system prompt": True}
    assert registry.load_prompts("shop@candidate", uri) == PROMPTS

    client = _client(uri)
    # Module names MLflow rejects are sanitized, with a hash so they stay unique.
    agent_name = registry.module_prompt_name("shop", "agent/system prompt")
    assert agent_name.startswith("shop.agent_system_prompt-")
    version = client.get_prompt_version_by_alias(agent_name, "candidate")
    assert version.template == "You help {{user}}; cite {{{source}}}."  # MLflow's own convention
    assert version.tags[S.VERSION_CANDIDATE] == "best"
    assert float(version.tags[S.VERSION_SCORE]) == 0.75
    prompt = client.get_prompt(agent_name)
    assert prompt.tags[S.PROMPT_MODULE] == "agent/system prompt"
    assert prompt.tags[S.PROMPT_GROUP] == "shop"
    # No bundle: the registry holds exactly one prompt per module.
    names = {p.name for p in client.search_prompts(filter_string="name LIKE 'shop%'")}
    assert names == {"shop.planner", agent_name}

    with pytest.raises(LookupError, match="shop@production"):
        registry.load_prompts("shop@production", uri)
    moved = registry.promote("shop", tracking_uri=uri)
    assert moved == done.versions
    assert registry.load_prompts("prompts:/shop@production", uri) == PROMPTS
    assert int(client.get_prompt_version_by_alias("shop.planner", "production").version) == 1


def test_no_duplicate_version_for_any_earlier_text(uri):
    first = registry.register(_result(PROMPTS), "dedupe", tracking_uri=uri)
    again = registry.register(_result(PROMPTS, score=0.8), "dedupe", "rerun", uri)
    assert again.created == {"planner": False, "agent/system prompt": False}
    assert again.versions == first.versions
    client = _client(uri)
    assert [int(v.version) for v in client.search_prompt_versions("dedupe.planner")] == [1]
    assert int(client.get_prompt_version_by_alias("dedupe.planner", "rerun").version) == 1

    changed = {**PROMPTS, "planner": PROMPTS["planner"] + " Be brief."}
    third = registry.register(_result(changed), "dedupe", tracking_uri=uri)
    assert third.created == {"planner": True, "agent/system prompt": False}
    assert third.versions["planner"] == 2
    assert registry.load_prompts("dedupe@candidate", uri) == changed
    # The older text again: version 1 is reused, not a version 3.
    back = registry.register(_result(PROMPTS), "dedupe", tracking_uri=uri)
    assert back.versions == first.versions and not any(back.created.values())
    assert len(client.search_prompt_versions("dedupe.planner")) == 2
    assert registry.load_prompts("dedupe", uri) == changed  # each module's latest version


def test_module_aliases_are_the_one_source_of_truth(uri):
    old = {"a": "old a {x}", "b": "old b"}
    new = {"a": "new a {x}", "b": "new b"}
    registry.register(_result(old), "truth", tracking_uri=uri)
    registry.promote("truth", tracking_uri=uri)
    registry.register(_result(new), "truth", tracking_uri=uri)
    # What the MLflow UI invites: move one module's production alias by hand.
    _client(uri).set_prompt_alias("truth.a", "production", 2)
    assert registry.load_prompts("truth@production", uri) == {"a": "new a {x}", "b": "old b"}
    assert _client(uri).load_prompt("prompts:/truth.a@production").template == "new a {{x}}"


def test_promote_and_rollback_move_every_module_and_keep_the_history(uri):
    sets = [{"a": f"a{i} {{x}}", "b": f"b{i}"} for i in range(3)]
    for prompts in sets:
        registry.register(_result(prompts), "fleet", tracking_uri=uri)
        registry.promote("fleet", tracking_uri=uri)
    assert registry.load_prompts("fleet@production", uri) == sets[2]

    move = registry.rollback("fleet", tracking_uri=uri)
    assert move.changes == {"a": (3, 2), "b": (3, 2)}
    assert registry.load_prompts("fleet@production", uri) == sets[1]
    registry.rollback("fleet", tracking_uri=uri)  # a second rollback goes one further back
    assert registry.load_prompts("fleet@production", uri) == sets[0]
    with pytest.raises(LookupError, match="no earlier version set"):
        registry.rollback("fleet", tracking_uri=uri)
    assert registry.load_prompts("fleet@candidate", uri) == sets[2]  # other aliases untouched

    history = registry.alias_history("fleet", "production", uri)
    assert [m["event"] for m in history] == ["promote"] * 3 + ["rollback"] * 2
    assert history[-1]["undoes"] == history[1]["id"]
    assert history[1]["changes"] == {"a": (1, 2), "b": (1, 2)}
    # Promoting again after a rollback: the rollback is undone by the next rollback.
    registry.promote("fleet", tracking_uri=uri)
    assert registry.load_prompts("fleet@production", uri) == sets[2]
    registry.rollback("fleet", tracking_uri=uri)
    assert registry.load_prompts("fleet@production", uri) == sets[0]


def test_a_failing_promote_puts_back_the_aliases_it_moved(uri, monkeypatch):
    registry.register(_result({"a": "one", "b": "one"}), "atomic", tracking_uri=uri)
    registry.promote("atomic", tracking_uri=uri)
    registry.register(_result({"a": "two", "b": "two"}), "atomic", tracking_uri=uri)
    real = MlflowClient.set_prompt_alias

    def flaky(self, name, alias, version):
        if name == "atomic.b" and version == 2:
            raise ConnectionError("server went away")
        return real(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_prompt_alias", flaky)
    with pytest.raises(ConnectionError):
        registry.promote("atomic", tracking_uri=uri)
    monkeypatch.setattr(MlflowClient, "set_prompt_alias", real)
    assert registry.load_prompts("atomic@production", uri) == {"a": "one", "b": "one"}


def test_a_module_gone_from_the_new_set_loses_the_alias(uri):
    registry.register(_result({"a": "a1", "old": "o1"}), "shrink", tracking_uri=uri)
    registry.register(_result({"a": "a2"}), "shrink", tracking_uri=uri)
    assert registry.load_prompts("shrink@candidate", uri) == {"a": "a2"}


def test_registering_links_the_run_and_its_experiment(uri, tmp_path):
    from mlflow.prompt.constants import PROMPT_EXPERIMENT_IDS_TAG_KEY

    client = _client(uri)
    experiment_id = client.create_experiment("linked")
    run_id = client.create_run(experiment_id).info.run_id
    (tmp_path / S.RUN_FILE).write_text(json.dumps({"run_id": run_id}))
    registry.register(_result({"m": "text"}, run_dir=str(tmp_path)), "withrun", tracking_uri=uri)
    version = client.get_prompt_version_by_alias("withrun.m", "candidate")
    assert version.tags[S.VERSION_RUN_ID] == run_id  # read from the run_dir
    assert run_id in version.commit_message
    # The run page's "Registered prompts" and the experiment's Prompts tab.
    linked = json.loads(client.get_run(run_id).data.tags["mlflow.linkedPrompts"])
    assert linked == [{"name": "withrun.m", "version": "1"}]
    prompt = client.get_prompt("withrun.m")
    assert prompt.tags[PROMPT_EXPERIMENT_IDS_TAG_KEY] == f",{experiment_id},"
    in_experiment = client.search_prompts(filter_string=f"experiment_id = '{experiment_id}'")
    assert [p.name for p in in_experiment] == ["withrun.m"]


def test_names_that_are_not_gepa_graph_prompts_are_refused(uri):
    client = _client(uri)
    client.register_prompt("handmade", "Hello {{name}}")
    client.register_prompt("mine.m", "Hello {{name}}")
    with pytest.raises(LookupError, match="not registered by gepa_graph"):
        registry.load_prompts("handmade", uri)
    with pytest.raises(ValueError, match="not registered by gepa_graph"):
        registry.register(_result({"m": "x"}), "mine", tracking_uri=uri)
    with pytest.raises(ValueError, match="invalid"):
        registry.register(_result({"m": "x"}), "bad name!", tracking_uri=uri)
    with pytest.raises(ValueError, match="NAME@alias"):
        registry.load_prompts("mine/3", uri)
    registry.register(_result({"m": "x"}), "grp", tracking_uri=uri)
    with pytest.raises(LookupError, match="'grp.m' is one module of 'grp'; load 'grp'@candidate"):
        registry.load_prompts("grp.m@candidate", uri)


def test_secrets_never_reach_the_registry(uri, monkeypatch):
    secret = "sk-proj-abcdefghijklmnop1234567890"
    registry.register(_result({"m": f"Use key {secret} for {{x}}"}), "leaky", tracking_uri=uri)
    version = _client(uri).get_prompt_version_by_alias("leaky.m", "candidate")
    assert secret not in version.template and "[REDACTED]" in version.template


def _graph():
    from typing import TypedDict

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
    return builder.compile()


def test_a_production_graph_gets_its_promoted_prompts_and_links_its_traces(uri):
    from gepa_graph.integrations.langgraph import discover

    graph = _graph()
    optimized = {"answer": "Answer {question} in one word; quote {{literally}}."}
    registry.register(_result(optimized), "prod", tracking_uri=uri)
    registry.promote("prod", tracking_uri=uri)
    production = registry.with_registry_prompts(graph, "prod@production", uri)
    assert discover(production)["answer"].text == optimized["answer"]
    assert discover(graph)["answer"].text == "Answer {question}."  # the original is untouched

    assert production.invoke({"question": "q"})["answer"] == "ok"  # tracing off: just runs
    # What was set, not the resolved default (None keeps later tests on their cwd).
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_span("request"):
            production.invoke({"question": "q"})
        trace_id = mlflow.get_last_active_trace_id()
        mlflow.flush_trace_async_logging()
    finally:
        mlflow.set_tracking_uri(previous)
    trace = _client(uri).get_trace(trace_id)
    linked = json.loads(trace.info.tags["mlflow.linkedPrompts"])
    assert linked == [{"name": "prod.answer", "version": "1"}]
