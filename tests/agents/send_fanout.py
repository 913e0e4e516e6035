"""Map-reduce summarizer in the style of the LangGraph "map-reduce" how-to.

A conditional edge fans out one ``Send("summarize", {...})`` per document; each mapped
``summarize`` step formats ``MAP_PROMPT``; ``combine`` reduces the collected summaries with
``REDUCE_PROMPT``.
"""

from __future__ import annotations

import operator
import re
from typing import Annotated

from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, says

PATTERN = "map-reduce with Send: a mapped summarize node and a reduce node, one prompt each"
MAP_FIX, REDUCE_FIX = "KEEP EVERY NUMBER", "END WITH THE TOTAL"
MAP_PROMPT = "Write a one-line summary of this sales report:\n\n{document}"
REDUCE_PROMPT = (
    "The following are summaries of regional sales reports:\n\n{summaries}\n\n"
    "Write a short overall summary for the executive team."
)


class OverallState(TypedDict, total=False):
    documents: list[str]
    summaries: Annotated[list[str], operator.add]
    report: str


class SummaryState(TypedDict):
    document: str


def summarize_reply(messages) -> str:
    document = messages[-1].text.split("\n\n", 1)[-1]
    region = document.split()[0]
    units = re.search(r"(\d+) units", document)
    return (
        f"{region}: {units.group(1)} units sold."
        if says(messages, MAP_FIX) and units
        else f"{region}: sales went well."
    )


def reduce_reply(messages) -> str:
    text = messages[-1].text
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    report = "Regions reported: " + " ".join(line[2:] for line in lines)
    if says(messages, REDUCE_FIX):
        total = sum(int(n) for n in re.findall(r"(\d+) units", text))
        report += f"\nTOTAL: {total} units"
    return report


def build() -> AgentCase:
    map_model = ScriptedChatModel(script=summarize_reply)
    reduce_model = ScriptedChatModel(script=reduce_reply)

    def continue_to_summaries(state: OverallState) -> list[Send]:
        return [Send("summarize", {"document": d}) for d in state["documents"]]

    def summarize(state: SummaryState) -> dict:
        prompt = MAP_PROMPT.format(document=state["document"])
        return {"summaries": [map_model.invoke([HumanMessage(prompt)]).text]}

    def combine(state: OverallState) -> dict:
        summaries = "\n".join(f"- {s}" for s in state["summaries"])
        prompt = REDUCE_PROMPT.format(summaries=summaries)
        return {"report": reduce_model.invoke([HumanMessage(prompt)]).text}

    builder = StateGraph(OverallState)
    builder.add_node("summarize", summarize)
    builder.add_node("combine", combine)
    builder.add_conditional_edges(START, continue_to_summaries, ["summarize"])
    builder.add_edge("summarize", "combine")
    builder.add_edge("combine", END)
    graph = builder.compile()

    def metric(example, state):
        report = state["report"]
        numbers = [re.search(r"(\d+) units", d).group(1) for d in example["documents"]]
        return graded(
            [
                (
                    "summarize",
                    all(f"{n} units" in report for n in numbers),
                    f"The report lost the unit counts {numbers}: the summary prompt should say "
                    f'"{MAP_FIX}".',
                ),
                (
                    "combine",
                    report.endswith(f"TOTAL: {example['answer']} units"),
                    f'The report must end with "TOTAL: {example["answer"]} units": the combining '
                    f'prompt should say "{REDUCE_FIX}".',
                ),
            ]
        )

    weeks = {"w1": (120, 80, 45), "w2": (30, 60, 90), "w3": (200, 10, 5), "w4": (75, 75, 150)}
    return AgentCase(
        graph=graph,
        models={"map": map_model, "reduce": reduce_model},
        examples=[
            {
                "id": key,
                "documents": [
                    f"{region} region sold {n} units this week."
                    for region, n in zip(("North", "South", "West"), units)
                ],
                "answer": str(sum(units)),
            }
            for key, units in weeks.items()
        ],
        metric=metric,
        expected={
            "summarize": "Write a one-line summary of this sales report",
            "combine": "summaries of regional sales reports",
        },
        fixes={"summarize": MAP_FIX, "combine": REDUCE_FIX},
    )
