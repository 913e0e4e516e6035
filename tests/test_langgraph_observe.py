"""Discovery by observation: the probe runs the seed on a few examples, what reached a model
decides the modules, the code only names them and finds their home."""

import asyncio
import dataclasses
import re
import warnings
from typing import TypedDict

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import TodoListMiddleware
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import create_retriever_tool, tool
from langgraph.func import entrypoint, task
from langgraph.graph import START, StateGraph

import gepa_graph as gg
from gepa_graph import Example
from gepa_graph.integrations.langgraph import LangGraphSystem, with_prompts
from gepa_graph.integrations.langgraph.observe import constant_template
from gepa_graph.system import PromptNeverUsed
from gepa_graph.testing.chat_model import ScriptedChatModel

TOPICS = ["volcanoes", "glaciers", "coral reefs"]
EXAMPLES = [Example(id=t, topic=t) for t in TOPICS]


class Topic(TypedDict, total=False):
    topic: str
    notes: str
    report: str


def echo():
    return ScriptedChatModel(script=lambda messages: "notes on " + messages[-1].text[-30:])


def probed(graph, examples=EXAMPLES, **kwargs):
    system = LangGraphSystem(graph, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        system.probe(examples)
    return system


def single_node(node):
    builder = StateGraph(Topic)
    builder.add_node("write", node)
    builder.add_edge(START, "write")
    return builder.compile()


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


# -- the static walk's blind spots: each prompt gets its name and its home


def test_functional_api_tasks_sending_their_own_system_messages():
    model = echo()

    @task
    def outline(topic: str) -> str:
        return model.invoke([SystemMessage("Outline the topic in three bullets."), topic]).text

    @task
    def write(outline_text: str) -> str:
        return model.invoke([SystemMessage("Write a report section."), outline_text]).text

    @entrypoint()
    def report(inputs: dict) -> str:
        return write(outline(inputs["topic"]).result()).result()

    system = probed(report)
    assert system.modules() == {
        "report/outline": "Outline the topic in three bullets.",
        "report/write": "Write a report section.",
    }
    assert system.probe_report.reached["report/write"] == ["report/write"]
    rollout = asyncio.run(
        system.arun({**system.modules(), "report/write": "Write two lines."}, EXAMPLES[0])
    )
    assert rollout.error is None and model.calls[-1][0].text == "Write two lines."


ROUTER_RULES = "Reply with science when the topic is about nature, else with other."


def route_topic(state):
    reply = echo().invoke([SystemMessage(ROUTER_RULES), HumanMessage(state["topic"])])
    return "science" if "notes" in reply.text else "other"


def test_a_router_on_a_conditional_edge_leaving_start():
    model = echo()
    builder = StateGraph(Topic)
    builder.add_node("science", lambda s: {"report": model.invoke("Write about it now.").text})
    builder.add_node("other", lambda s: {"report": "n/a"})
    builder.add_conditional_edges(START, route_topic, ["science", "other"])
    system = probed(builder.compile())
    assert system.modules()["route_topic"] == ROUTER_RULES
    assert (
        system.slots["route_topic"].where
        == "module constant tests.test_langgraph_observe.ROUTER_RULES"
    )


WRITER_STYLE = "You write vivid, precise summaries of science topics for curious adults."


def test_partial_variables_and_bound_chains_are_homes_apply_writes():
    model = echo()
    template = ChatPromptTemplate.from_messages(
        [("system", "{style}"), ("human", "{topic}")]
    ).partial(style=WRITER_STYLE)
    chain = template | model

    def run(state, writer=None):
        return {"report": writer.invoke({"topic": state["topic"]}).text}

    graph = single_node(RunnableLambda(run).bind(writer=chain))
    system = probed(graph)
    assert system.modules() == {"write": WRITER_STYLE}
    assert system.slots["write"].kind == "partial"
    system.apply(graph, {"write": "You write dry summaries."})
    graph.invoke({"topic": "tides"})
    assert model.calls[-1][0].text == "You write dry summaries."


def test_prompts_in_markdown_and_jinja2_files_export_to_copies(tmp_path):
    jinja2 = pytest.importorskip("jinja2")
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "outline.md").write_text("Outline {topic} in three short bullets.\n")
    (folder / "writer.j2").write_text("Write one paragraph about {{ topic }} for a newsletter.\n")
    (folder / "facts.j2").write_text(
        "Check these facts for the newsletter:\n{% for f in facts %}- {{ f }}\n{% endfor %}"
    )
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(folder))
    model = echo()

    def write(state):
        outline = (folder / "outline.md").read_text().format(topic=state["topic"])
        notes = model.invoke([HumanMessage(outline)]).text
        text = environment.get_template("writer.j2").render(topic=state["topic"])
        facts = environment.get_template("facts.j2").render(facts=[state["topic"], notes])
        model.invoke([SystemMessage(facts)])
        return {"report": model.invoke([SystemMessage(text), HumanMessage(notes)]).text}

    graph = single_node(write)
    system = probed(graph)
    assert set(system.modules()) == {"write.outline", "write.writer", "write.facts"}
    # A template with a loop is optimized as it renders; its home is still its file.
    assert system.slots["write.facts"].where.startswith("file facts.j2 (as rendered")
    assert system.modules()["write.facts"].startswith("Check these facts for the newsletter:")
    assert system.slots["write.writer"].variables == ("topic",)
    assert all(slot.kind == "file" for slot in system.slots.values())
    assert not [s for s in system._found.values() if "jinja2" in s.where]
    new = "Write a haiku about {{ topic }}."
    rollout = asyncio.run(system.arun({"write.writer": new}, Example(topic="fog")))
    assert rollout.error is None and model.calls[-1][0].text == "Write a haiku about fog."
    written = system.export(tmp_path / "out", {"write.writer": new})
    assert (tmp_path / "out" / "writer.j2").read_text() == new
    assert written == {"write.writer": str(tmp_path / "out" / "writer.j2")}
    assert (folder / "writer.j2").read_text().startswith("Write one paragraph")  # untouched
    system.apply(graph, {"write.writer": new})  # no place to write: carried in the config
    graph.invoke({"topic": "snow"})
    assert model.calls[-1][0].text == "Write a haiku about snow."


HOUSE_STYLE = "Condense the search results into two plain sentences for the agent."


def condense(text):
    return echo().invoke([SystemMessage(HOUSE_STYLE), HumanMessage(text)]).text


@tool
def research(query: str) -> str:
    """Search the web and condense what it finds."""
    return condense(f"results for {query}")


def test_a_prompt_used_by_a_helper_a_tool_calls():
    def reply(messages):
        if messages[-1].type == "tool":
            return "done"
        return AIMessage("", tool_calls=[{"name": "research", "args": {"query": "x"}, "id": None}])

    agent = create_agent(ScriptedChatModel(script=reply), [research], system_prompt="You research.")
    system = probed(agent, [Example(question=t) for t in TOPICS])
    assert system.modules() == {"model": "You research.", "tools": HOUSE_STYLE}
    assert "HOUSE_STYLE" in system.slots["tools"].where


# -- library prompts and stop phrases


class Shelf(BaseRetriever):
    def _get_relevant_documents(self, query, *, run_manager=None):
        return [Document(page_content=f"{query} is documented on shelf 3.")]


def test_library_prompts_are_listed_and_optimized_only_on_request():
    def reply(messages):
        if messages[-1].type == "tool":
            return "done"
        return AIMessage("", tool_calls=[{"name": "shelf", "args": {"query": "x"}, "id": None}])

    def agent():
        return create_agent(
            ScriptedChatModel(script=reply),
            [create_retriever_tool(Shelf(), "shelf", "Search the shelf.")],
            system_prompt="You find books for readers.",
            middleware=[TodoListMiddleware()],
        )

    examples = [Example(question=t) for t in TOPICS]
    system = probed(agent(), examples)
    assert system.modules() == {"model": "You find books for readers."}  # no "{page_content}"
    [library] = system.probe_report.library
    assert system._found[library].origin == "library"
    assert "write_todos" in system._found[library].text
    assert "library prompt(s) listed but not optimized" in system.describe()
    everything = probed(agent(), examples, library_prompts=True)
    assert set(everything.modules()) == {"model", library}
    by_name = probed(agent(), examples, library_prompts=[library])
    assert set(by_name.modules()) == {"model", library}


def test_a_stop_phrase_the_code_compares_with_the_output_is_not_a_module():
    model = ScriptedChatModel(script=lambda messages: "FINAL ANSWER: yes")

    def write(state):
        reply = model.invoke([SystemMessage(f"Answer, then say {'FINAL ANSWER'}."), "go"])
        done = "FINAL ANSWER" in reply.text
        return {"report": reply.text if done else "again"}

    system = probed(single_node(write))
    assert list(system.modules()) == ["write"]
    assert system.modules()["write"] == "Answer, then say FINAL ANSWER."


def test_optimize_then_export_with_prompts_and_apply_on_observed_modules(tmp_path):
    (tmp_path / "writer.md").write_text("Write one paragraph about {topic}.")
    folder = tmp_path
    model = echo()

    def write(state):
        text = (folder / "writer.md").read_text().format(topic=state["topic"])
        notes = model.invoke([SystemMessage(text), HumanMessage("go")]).text
        rules = " ".join(["Check the facts", "of the paragraph", "twice."])  # no home
        return {"report": model.invoke([SystemMessage(rules), HumanMessage(notes)]).text}

    def metric(example, prediction):
        sent = [m.text for call in model.calls for m in call]
        return 1.0 if any("[better]" in text for text in sent) else 0.0

    def reflection(prompt):
        current = re.search(r"(`{3,})\n(.*?)\n\1", prompt, re.S).group(2)
        return f"```\n{current} [better]\n```"

    graph = single_node(write)
    data = [{"id": t, "topic": t} for t in TOPICS]
    result = gg.optimize(
        graph,
        data,
        data,
        metric=metric,
        reflection_lm=reflection,
        max_rollouts=20,
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert set(result.seed_candidate) == {"write", "write.system"}
    assert result.seed_candidate["write.system"] == "Check the facts of the paragraph twice."
    changed = result.changed_modules()
    assert changed
    model.reset()
    with_prompts(graph, result.best_candidate).invoke({"topic": "dunes"})
    sent = [m.text for call in model.calls for m in call]
    for _, best in changed.values():
        assert any(best.replace("{topic}", "dunes") == text for text in sent)
    if "write" in changed:
        assert result.export(tmp_path / "out") == {"write": str(tmp_path / "out" / "writer.md")}
        assert (tmp_path / "out" / "writer.md").read_text() == result.best_candidate["write"]
    result.apply(graph)
    model.reset()
    graph.invoke({"topic": "dunes"})
    assert [m.text for call in model.calls for m in call] == sent


def test_a_module_only_a_probe_names_can_be_excluded_up_front():
    model = echo()

    def write(state):
        text = " ".join(["You write", "about", state["topic"], "in plain words."])
        return {"notes": model.invoke([SystemMessage(text), "go"]).text}

    def edit(state):
        return {"report": model.invoke([SystemMessage("Edit the notes."), state["notes"]]).text}

    builder = StateGraph(Topic)
    builder.add_node("write", write)
    builder.add_node("edit", edit)
    builder.add_edge(START, "write")
    builder.add_edge("write", "edit")
    with pytest.raises(KeyError, match="nope"):
        LangGraphSystem(builder.compile(), exclude=["nope"])
    system = probed(builder.compile(), exclude=["write"])
    assert system.modules() == {"edit": "Edit the notes."}
    assert "write" in system._found  # found, observed, and left alone as asked
