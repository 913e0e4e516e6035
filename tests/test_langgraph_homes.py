"""Discovery's homes: prompts the static walk cannot name on its own (Functional API tasks,
routers on edges, partial variables, prompt files, helpers a tool calls) get a name and a home
from the probe; library prompts and stop phrases are told apart; apply, export and exclusion
work on the modules only a probe names."""

import asyncio
import re

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import TodoListMiddleware
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import create_retriever_tool, tool
from langgraph.func import entrypoint, task
from langgraph.graph import START, StateGraph

import gepa_graph as gg
from gepa_graph import Example
from gepa_graph.integrations.langgraph import LangGraphSystem, with_prompts
from gepa_graph.testing.chat_model import ScriptedChatModel
from tests.probe_helpers import EXAMPLES, TOPICS, Topic, echo, probed, single_node

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
        == "module constant tests.test_langgraph_homes.ROUTER_RULES"
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
