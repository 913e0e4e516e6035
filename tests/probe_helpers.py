"""Graphs and examples the probe tests share: topics to write about, an echoing model, a
single-node graph, and a system after its probe runs."""

import warnings
from typing import TypedDict

from langgraph.graph import START, StateGraph

from gepa_graph import Example
from gepa_graph.integrations.langgraph import LangGraphSystem
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
