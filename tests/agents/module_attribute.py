"""A one-node tutor whose prompt lives in a prompts module, reached as ``prompts.MAIN_PROMPT``.

The style of projects that keep prompts in ``prompts.py`` and import the module (as the
``data-enrichment`` template's reflect node does): the node formats
``prompts.MAIN_PROMPT.format(question=...)`` and sends it as a human message.
"""

from __future__ import annotations

import re

from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from . import _prompts_module_attribute as prompts
from ._case import AgentCase, graded, says

PATTERN = "module attribute access: prompts.MAIN_PROMPT.format(...) in the node"
FIX = "FINAL ANSWER:"
OPERATIONS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


class State(TypedDict, total=False):
    question: str
    reply: str


def solve(messages) -> str:
    a, op, b = re.search(r"(\d+)\s*([-+*])\s*(\d+)", messages[-1].text).groups()
    result = OPERATIONS[op](int(a), int(b))
    working = f"We compute {a} {op} {b} step by step, which gives {result}."
    return f"{working}\nFINAL ANSWER: {result}" if says(messages, FIX) else working


def build() -> AgentCase:
    model = ScriptedChatModel(script=solve)

    def tutor(state: State) -> dict:
        message = HumanMessage(prompts.MAIN_PROMPT.format(question=state["question"]))
        return {"reply": model.invoke([message]).text}

    builder = StateGraph(State)
    builder.add_node("tutor", tutor)
    builder.add_edge(START, "tutor")
    builder.add_edge("tutor", END)
    graph = builder.compile()

    def metric(example, state):
        last_line = state["reply"].strip().splitlines()[-1]
        return graded(
            [
                (
                    "tutor",
                    last_line == f"FINAL ANSWER: {example['answer']}",
                    f'The grader reads only a last line "FINAL ANSWER: {example["answer"]}" '
                    f'and found {last_line!r}: the prompt should ask for "{FIX}".',
                )
            ]
        )

    problems = {
        "add": ("17 + 25", 42),
        "sub": ("90 - 37", 53),
        "mul": ("12 * 11", 132),
        "mul2": ("7 * 8", 56),
    }
    return AgentCase(
        graph=graph,
        models={"tutor": model},
        examples=[
            {"id": key, "question": f"What is {expr}?", "answer": str(value)}
            for key, (expr, value) in problems.items()
        ],
        metric=metric,
        expected={"tutor": "You are a careful arithmetic tutor."},
        fixes={"tutor": FIX},
    )
