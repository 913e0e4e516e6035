"""Summarizer configured through ``config["configurable"]`` with no schema on the graph.

A plain ``Configuration`` dataclass (as older LangGraph templates and many apps write it) holds
the prompt as a field default; the node reads it with ``Configuration.from_runnable_config``.
LangGraph does not know the class, so only the node's own code leads to it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig, ensure_config
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, says

PATTERN = "Configuration dataclass read from config['configurable'], no schema on the graph"
FIX = "END WITH THE WORD COUNT"


@dataclass(kw_only=True)
class Configuration:
    summary_prompt: str = "Summarize the text for a busy manager in one sentence."
    max_words: int = 20

    @classmethod
    def from_runnable_config(cls, config: RunnableConfig | None = None) -> Configuration:
        configurable = ensure_config(config).get("configurable") or {}
        return cls(**{f.name: configurable[f.name] for f in fields(cls) if f.name in configurable})


class State(TypedDict, total=False):
    text: str
    summary: str


def summarize(messages) -> str:
    words = messages[-1].text.split()
    summary = " ".join(words[:6]) + "."
    return f"{summary} ({len(words)} words)" if says(messages, FIX) else summary


def build() -> AgentCase:
    model = ScriptedChatModel(script=summarize)

    def summarizer(state: State, config: RunnableConfig) -> dict:
        configuration = Configuration.from_runnable_config(config)
        reply = model.invoke(
            [SystemMessage(configuration.summary_prompt), HumanMessage(state["text"])]
        )
        return {"summary": reply.text}

    builder = StateGraph(State)
    builder.add_node("summarizer", summarizer)
    builder.add_edge(START, "summarizer")
    builder.add_edge("summarizer", END)
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "configurable.summary_prompt",
                    example["answer"] in state["summary"],
                    f"The summary must end with the word count {example['answer']}: the "
                    f'prompt should say "{FIX}".',
                )
            ]
        )

    texts = [
        "Sales rose in the north while costs fell across all regions this quarter",
        "The new office opens in May and hiring starts next week",
        "Customer complaints halved after the support team doubled",
        "Shipping delays persist because the port remains closed",
    ]
    return AgentCase(
        graph=graph,
        models={"summarizer": model},
        examples=[
            {"id": f"t{n}", "text": t, "answer": f"({len(t.split())} words)"}
            for n, t in enumerate(texts)
        ],
        metric=metric,
        expected={"configurable.summary_prompt": "Summarize the text for a busy manager"},
        fixes={"configurable.summary_prompt": FIX},
    )
