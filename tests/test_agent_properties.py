"""Random graphs built from the pieces agents are made of, with random prompt placements: every
model call that carries a module's text is rewritten for that module, and only for it.

Each example writes the source of a small agent module (so the discovery walk reads real code:
module constants, closures, templates, a context schema, tools, edge functions, subgraphs),
imports it, and runs one rollout of a candidate that rewrites every module (its seed plus a
marker line). Every piece has its own scripted model, so which module a call carries is known by
construction; the found modules are matched to the pieces by their seed text.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import sys
import tempfile
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gepa_graph as gg
from gepa_graph.integrations.langgraph import LangGraphSystem
from gepa_graph.testing.chat_model import ScriptedChatModel

# Where a prompt lives and how it reaches the model.
KINDS = (
    "template",  # ChatPromptTemplate system message with a {topic} variable, a closure variable
    "constant",  # module constant NODE<i>_PROMPT sent as a system message
    "format",  # module constant SUMMARY<i>_PROMPT.format(topic=...) sent as a human message
    "human",  # module constant STEP<i>_INSTRUCTIONS sent as a second human message
    "closure",  # local string of build() sent as a system message
    "context",  # field of the graph's context_schema, read as runtime.context.prompt_<i>
    "tool",  # a tool run by a ToolNode calls its own model with TOOL<i>_PROMPT
    "edge",  # a conditional-edge function calls a model with ROUTER<i>_PROMPT
    "subgraph",  # a compiled subgraph node whose node sends SUB<i>_PROMPT
    "declared",  # gg.prompt("declared<i>", text) called in the node
)
SUBJECTS = ["tides", "glaciers", "volcanoes", "comets", "coral reefs", "deserts"]
VERBS = ["summarize", "explain", "list the causes of", "compare the kinds of", "describe"]
STYLES = ["in one sentence", "for a child", "with one example", "formally", "as a checklist"]

HEADER = """
import operator
from dataclasses import dataclass
from typing import Annotated

import gepa_graph as gg

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.runtime import Runtime
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    topic: str
    log: Annotated[list, operator.add]
    messages: Annotated[list, add_messages]
"""


def instruction(n: int, verb: str, style: str) -> str:
    return f"You are assistant number {n} of the team. When given a topic, {verb} it {style}."


@st.composite
def agents(draw):
    """A list of (kind, prompt text) pieces, at least one of them a node, no two edges in a row."""
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=5))
    for n in range(1, len(kinds)):
        if kinds[n] == kinds[n - 1] == "edge":
            kinds[n] = "constant"
    if all(kind == "edge" for kind in kinds):
        kinds.append("constant")
    texts = [
        instruction(n, draw(st.sampled_from(VERBS)), draw(st.sampled_from(STYLES)))
        for n in range(len(kinds))
    ]
    return list(zip(kinds, texts, strict=True))


def agent_source(pieces) -> str:
    """The Python source of an agent module with ``build(models) -> (graph, context)``."""
    top, body, wiring = [HEADER], [], []
    fields = [
        f"    prompt_{i}: str = {text!r}" for i, (k, text) in enumerate(pieces) if k == "context"
    ]
    if fields:
        top += ["", "@dataclass", "class Context:", *fields]
    previous, pending_edge = "START", None
    nodes = [n for n, (kind, _) in enumerate(pieces) if kind != "edge"]

    def connect(target: str) -> None:
        if pending_edge is None:
            wiring.append(f"    builder.add_edge({previous}, {target})")
        else:
            wiring.append(
                f"    builder.add_conditional_edges({previous}, route{pending_edge}, [{target}])"
            )

    for i, (kind, text) in enumerate(pieces):
        call = f"models[{i}].invoke"
        if kind == "edge":
            top.append(f"ROUTER{i}_PROMPT = {text!r}")
            following = next((n for n in nodes if n > i), None)
            target = "END" if following is None else repr(entry_of(following, pieces))
            body += [
                f"    def route{i}(state):",
                f'        {call}([SystemMessage(ROUTER{i}_PROMPT), HumanMessage(state["topic"])])',
                f"        return {target}",
            ]
            pending_edge = i
            continue
        send = {
            "template": f'prompt{i}.invoke({{"topic": state["topic"]}})',
            "constant": f'[SystemMessage(NODE{i}_PROMPT), HumanMessage(state["topic"])]',
            "format": f'[HumanMessage(SUMMARY{i}_PROMPT.format(topic=state["topic"]))]',
            "human": f'[HumanMessage(state["topic"]), HumanMessage(STEP{i}_INSTRUCTIONS)]',
            "closure": f'[SystemMessage(rules{i}), HumanMessage(state["topic"])]',
            "context": f'[SystemMessage(runtime.context.prompt_{i}), HumanMessage(state["topic"])]',
            "subgraph": f'[SystemMessage(SUB{i}_PROMPT), HumanMessage(state["topic"])]',
            "declared": f'[SystemMessage(gg.prompt("declared{i}", {text!r})), '
            'HumanMessage(state["topic"])]',
        }.get(kind)
        if kind == "template":
            template = text + "\n\nTopic: {topic}"
            body.append(
                f'    prompt{i} = ChatPromptTemplate.from_messages([("system", {template!r}), '
                '("human", "{topic}")])'
            )
        elif kind == "closure":
            body.append(f"    rules{i} = {text!r}")
        elif kind in ("constant", "format", "human", "subgraph", "tool"):
            name = {
                "constant": f"NODE{i}_PROMPT",
                "format": f"SUMMARY{i}_PROMPT",
                "human": f"STEP{i}_INSTRUCTIONS",
                "subgraph": f"SUB{i}_PROMPT",
                "tool": f"TOOL{i}_PROMPT",
            }[kind]
            top.append(f"{name} = {(text + ' Topic: {topic}.') if kind == 'format' else text!r}")
        if kind == "tool":
            body += [
                "    @tool",
                f"    def lookup{i}(topic: str) -> str:",
                '        """Look the topic up."""',
                f"        return {call}([SystemMessage(TOOL{i}_PROMPT), HumanMessage(topic)]).text",
                f"    def ask{i}(state):",
                f'        calls = [{{"name": "lookup{i}", "args": {{"topic": state["topic"]}}, '
                f'"id": "call{i}"}}]',
                '        return {"messages": [AIMessage("", tool_calls=calls)]}',
                f'    builder.add_node("ask{i}", ask{i})',
                f'    builder.add_node("tools{i}", ToolNode([lookup{i}]))',
                f'    builder.add_edge("ask{i}", "tools{i}")',
            ]
            connect(f'"ask{i}"')
            previous = f'"tools{i}"'
        else:
            runtime = ", runtime: Runtime[Context]" if kind == "context" else ""
            body += [
                f"    def n{i}(state{runtime}):",
                f'        return {{"log": [{call}({send}).text]}}',
            ]
            if kind == "subgraph":
                body += [
                    f"    sub{i} = StateGraph(State)",
                    f'    sub{i}.add_node("inner{i}", n{i})',
                    f'    sub{i}.add_edge(START, "inner{i}")',
                    f'    sub{i}.add_edge("inner{i}", END)',
                    f'    builder.add_node("n{i}", sub{i}.compile())',
                ]
            else:
                body.append(f'    builder.add_node("n{i}", n{i})')
            connect(f'"n{i}"')
            previous = f'"n{i}"'
        pending_edge = None
    connect("END")
    schema = ", context_schema=Context" if fields else ""
    return "\n".join(
        [
            *top,
            "",
            "",
            "def build(models):",
            f"    builder = StateGraph(State{schema})",
            *body,
            *wiring,
            f"    return builder.compile(), {'Context()' if fields else 'None'}",
        ]
    )


def entry_of(n: int, pieces) -> str:
    return f"ask{n}" if pieces[n][0] == "tool" else f"n{n}"


_modules = itertools.count()


def load(source: str, folder: Path):
    name = f"_random_agent_{next(_modules)}"
    path = folder / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@settings(
    max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(agents())
def test_every_call_carrying_a_module_is_rewritten_for_it_and_only_for_it(pieces):
    check_rewritten_once_for_its_module_only(pieces)


def check_rewritten_once_for_its_module_only(pieces):
    models = {
        i: ScriptedChatModel(script=lambda messages, i=i: f"noted {i}") for i in range(len(pieces))
    }
    with tempfile.TemporaryDirectory() as folder:
        module = load(agent_source(pieces), Path(folder))
        graph, context = module.build(models)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            system = LangGraphSystem(graph, context=context)
            example = gg.Example(id="x", topic="the moon")
            if getattr(system, "needs_probe", False):
                system.probe(example)
            seeds = system.modules()
            # Each piece's prompt is exactly one module.
            owner = {}
            for i, (_, text) in enumerate(pieces):
                found = [name for name, seed in seeds.items() if text in seed]
                assert len(found) == 1, (i, text, sorted(seeds))
                owner[found[0]] = i
            assert set(owner) == set(seeds), sorted(set(seeds) - set(owner))
            candidate = {name: f"{seed}\n[mark {name}]" for name, seed in seeds.items()}
            for model in models.values():
                model.reset()  # forget the probe's calls
            rollout = asyncio.run(system.arun(candidate, example))
        assert rollout.error is None, rollout.error
        for name, i in owner.items():
            calls = models[i].calls
            assert calls, f"piece {i} ({pieces[i][0]}) made no call"
            for other in owner:
                for call in calls:
                    text = "\n".join(m.text for m in call)
                    count = text.count(f"[mark {other}]")
                    assert count == (other == name), (pieces[i][0], other, count)
            shown = [r for r in rollout.trace.for_module(name, None) if r.kind == "llm"]
            assert len(shown) == len(calls), (name, len(shown), len(calls))
