"""Discovery by observation: the probe runs the seed on a few examples, what reached a model
decides the modules, the code only names them and finds their home."""

import asyncio
import dataclasses
import warnings

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import START, StateGraph

import gepa_graph as gg
from gepa_graph import Example
from gepa_graph.errors import PromptNeverUsed
from gepa_graph.integrations.langgraph import LangGraphSystem, with_prompts
from gepa_graph.integrations.langgraph.observe import constant_template
from tests.probe_helpers import EXAMPLES, TOPICS, Topic, echo, probed, single_node

# -- what counts as an instruction


def test_constant_parts_are_literals_and_changing_parts_variables():
    assert constant_template(["Rate the essay.\nEssay: cats", "Rate the essay.\nEssay: a dog"]) == (
        "Rate the essay.\nEssay: {value_1}",
        "f-string",
    )
    assert constant_template(["Be kind {always}."] * 3) == ("Be kind {always}.", "plain")


def test_a_short_system_instruction_built_at_run_time_is_a_module():
    model = echo()

    def write(state):
        text = "Write a report section."  # short, and no name says "prompt"
        return {"report": model.invoke([SystemMessage(text), HumanMessage(state["topic"])]).text}

    system = probed(single_node(write))
    assert system.modules() == {"write": "Write a report section."}
    assert system.probe_report.reached == {"write": ["write"]}
    assert system.probe_report.rollouts == 3


def test_a_constant_human_instruction_is_a_module_and_example_text_is_not():
    model = echo()
    cleanup = "All above messages are about research. Please clean up these findings."

    def write(state):
        messages = [HumanMessage(state["topic"]), HumanMessage(" ".join(cleanup.split(". ")))]
        return {"report": model.invoke(messages).text}

    system = probed(single_node(write))
    [(name, text)] = system.modules().items()
    assert name == "write" and text == " ".join(cleanup.split(". "))
    assert system.slots[name].kind == "observed"


def test_changing_parts_of_an_instruction_are_variables_and_a_rewrite_keeps_them():
    model = echo()

    def write(state):  # no constant anywhere: the text exists only once the node runs
        text = " ".join(["You write a short encyclopedia entry about", state["topic"], "for kids."])
        return {"report": model.invoke([SystemMessage(text), HumanMessage("go")]).text}

    system = probed(single_node(write))
    assert system.modules() == {
        "write": "You write a short encyclopedia entry about {value_1} for kids."
    }
    new = "You write a long entry about {value_1} for experts."
    rollout = asyncio.run(system.arun({"write": new}, Example(topic="deserts")))
    assert rollout.error is None
    assert model.calls[-1][0].text == "You write a long entry about deserts for experts."


def test_text_filling_another_prompts_variable_is_not_a_module():
    model = echo()
    house_rules = "Answer in French and keep it under fifty words please."
    template = ChatPromptTemplate.from_messages(
        [("system", "You are a guide. Rules: {rules}"), ("human", "{topic}")]
    )

    def write(state):
        value = template.invoke({"rules": house_rules, "topic": state["topic"]})
        return {"report": model.invoke(value).text}

    system = probed(single_node(write))
    assert list(system.modules()) == ["write"]
    assert system.modules()["write"] == "You are a guide. Rules: {rules}"


def test_a_found_prompt_that_reaches_no_model_is_dropped_with_a_notice():
    model = echo()
    unused_prompt = "You are never called: this branch does not run."

    def write(state):
        if state["topic"] == "never":
            model.invoke(unused_prompt)
        return {"report": model.invoke([SystemMessage("Write tersely."), "go"]).text}

    system = LangGraphSystem(single_node(write))
    assert system.modules() == {"write": unused_prompt}  # what the code alone shows
    with pytest.warns(UserWarning, match=r"\['write'\] found in the code reached no model"):
        system.probe(EXAMPLES)
    assert system.modules() == {"write": "Write tersely."}  # named among what reached a model
    assert system.probe_report.unreached == ["write"]
    assert "dropped: found in the code but reached no model" in system.describe()


def test_a_declared_prompt_that_never_runs_is_the_one_error():
    model = echo()

    def write(state):
        return {"report": model.invoke([SystemMessage("Write tersely."), "go"]).text}

    system = LangGraphSystem(single_node(write), prompts={"ghost": "Never sent anywhere."})
    with pytest.raises(PromptNeverUsed, match=r"\['ghost'\]"):
        system.probe(EXAMPLES)


# -- configuration and context exactly as the user passes them


@dataclasses.dataclass(kw_only=True)
class Configuration:
    user_id: str  # required: only the user can give it
    system_prompt: str = "You answer for user {user_id}."

    @classmethod
    def from_runnable_config(cls, config):
        configurable = config.get("configurable") or {}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in configurable.items() if k in names})


def configured_graph(model):
    def write(state, config: RunnableConfig):
        configuration = Configuration.from_runnable_config(config)
        text = configuration.system_prompt.format(user_id=configuration.user_id)
        return {"report": model.invoke([SystemMessage(text), HumanMessage(state["topic"])]).text}

    builder = StateGraph(Topic, context_schema=Configuration)
    builder.add_node("write", write)
    builder.add_edge(START, "write")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return builder.compile()


def test_a_required_configuration_field_is_the_users_to_give_never_built_here():
    model = echo()
    graph = configured_graph(model)
    config = {"configurable": {"user_id": "ann"}}
    system = probed(graph, config=config)
    assert list(system.modules()) == ["context.system_prompt"]
    rollout = asyncio.run(
        system.arun({"context.system_prompt": "Be brief, {user_id}."}, Example(topic="x"))
    )
    assert rollout.error is None and model.calls[-1][0].text == "Be brief, ann."


def test_when_every_probe_run_fails_their_own_error_is_raised():
    graph = configured_graph(echo())
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'user_id'"):
        LangGraphSystem(graph).probe(EXAMPLES)


def test_a_context_instance_is_carried_with_only_the_prompt_fields_overlaid():
    @dataclasses.dataclass(frozen=True)
    class Context:
        user: str
        system_prompt: str = "You greet the user by name."

    model = echo()

    def write(state, runtime):
        text = f"{runtime.context.system_prompt} Name: {runtime.context.user}"
        return {"report": model.invoke([SystemMessage(text), "go"]).text}

    builder = StateGraph(Topic, context_schema=Context)
    builder.add_node("write", write)
    builder.add_edge(START, "write")
    given = Context(user="Bob")
    system = probed(builder.compile(), context=given)
    assert "context.system_prompt" in system.modules()
    asyncio.run(system.arun({"context.system_prompt": "Say hi."}, Example(topic="x")))
    assert model.calls[-1][0].text == "Say hi. Name: Bob"
    assert given.system_prompt == "You greet the user by name."  # the user's object unchanged


# -- any Runnable is a system


def test_a_chain_wrapping_a_graph_is_a_system_and_with_prompts_returns_a_runnable():
    model = echo()
    inner = single_node(
        lambda state: {"report": model.invoke([SystemMessage("Summarise it."), "go"]).text}
    )
    chain = RunnableLambda(lambda example: {"topic": example["topic"].strip()}) | inner
    system = probed(chain, input_fn=lambda example: {"topic": example["topic"]})
    assert system.modules() == {"write": "Summarise it."}
    chain2 = with_prompts(chain, {"write": "Condense it."})
    chain2.invoke({"topic": " rivers "})
    assert model.calls[-1][0].text == "Condense it."


def test_a_non_runnable_is_a_one_line_error():
    with pytest.raises(TypeError, match="expected a compiled LangGraph graph, got int"):
        LangGraphSystem(3)


# -- optimize probes on three training examples and counts their rollouts


def test_optimize_probes_three_examples_and_counts_them(tmp_path):
    model = echo()

    def write(state):
        text = "Write a report section."
        return {"report": model.invoke([SystemMessage(text), HumanMessage(state["topic"])]).text}

    data = [{"id": t, "topic": t, "answer": "x"} for t in [*TOPICS, "deserts"]]
    result = gg.optimize(
        single_node(write),
        data,
        data[:2],
        metric=lambda example, prediction: 0.0,
        reflection_lm=lambda prompt: "```\nWrite a longer report section.\n```",
        max_rollouts=12,
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert result.seed_candidate == {"write": "Write a report section."}
    assert result.rollouts_used == len(model.calls) <= 12  # the probe's three included


def test_inspect_shows_kind_home_and_nodes():
    model = echo()

    def write(state):
        return {"report": model.invoke([SystemMessage("Write a report section."), "go"]).text}

    text = probed(single_node(write)).describe()
    header, row = text.splitlines()[1], text.splitlines()[3]
    assert header.split() == ["module", "kind", "nodes", "home", "variables", "text"]
    assert row.split()[:3] == ["write", "user", "write"]
    assert "string literal in" in row
