"""Headline desk whose nodes reach the model by ``stream`` and ``batch`` rather than ``invoke``:
``draft`` streams the reply and joins the chunks (as chat UIs do), ``variants`` asks for three
alternatives in one ``llm.batch([...])`` call.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says

PATTERN = "model reached by llm.stream(...) (chunks joined) and llm.batch([...])"
DRAFT_FIX, VARIANT_FIX = "NAME THE CITY", "KEEP IT UNDER SIX WORDS"
DRAFT_SYSTEM_PROMPT = "You write the headline of a local news story."
VARIANT_SYSTEM_PROMPT = "You rewrite a headline in the style the editor asks for."
STORIES = {
    "bridge": ("Oslo", "The old bridge in Oslo reopens after repairs."),
    "market": ("Lyon", "A new night market opens in Lyon this summer."),
    "tram": ("Porto", "Porto extends its tram line to the beach."),
    "library": ("Graz", "The library of Graz stays open until midnight."),
}
STYLES = ["plain", "playful", "urgent"]


def draft_reply(messages) -> str:
    city, _ = next(v for v in STORIES.values() if v[1] == last_human(messages))
    return f"{city} news: big changes ahead" if says(messages, DRAFT_FIX) else "Big changes ahead"


def variant_reply(messages) -> str:
    request = last_human(messages)
    headline = request.split("Headline: ", 1)[1].split("\n", 1)[0]
    style = request.rsplit("Style: ", 1)[1]
    text = f"{headline} ({style})"
    return text if says(messages, VARIANT_FIX) else f"{text} -- read all about it today"


class State(TypedDict, total=False):
    story: str
    headline: str
    variants: list[str]


def build() -> AgentCase:
    writer = ScriptedChatModel(script=draft_reply)
    rewriter = ScriptedChatModel(script=variant_reply)

    def draft(state: State) -> dict:
        chunks = writer.stream([SystemMessage(DRAFT_SYSTEM_PROMPT), HumanMessage(state["story"])])
        return {"headline": "".join(chunk.text for chunk in chunks)}

    def variants(state: State) -> dict:
        replies = rewriter.batch(
            [
                [
                    SystemMessage(VARIANT_SYSTEM_PROMPT),
                    HumanMessage(f"Headline: {state['headline']}\nStyle: {style}"),
                ]
                for style in STYLES
            ]
        )
        return {"variants": [reply.text for reply in replies]}

    builder = StateGraph(State)
    builder.add_node("draft", draft)
    builder.add_node("variants", variants)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "variants")
    builder.add_edge("variants", END)
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "draft",
                    example["answer"] in state["headline"],
                    f"The headline must name {example['answer']}: the headline prompt should say "
                    f'"{DRAFT_FIX}".',
                ),
                (
                    "variants",
                    all("read all about it" not in v for v in state["variants"]),
                    f'Variants are too long: the rewrite prompt should say "{VARIANT_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"writer": writer, "rewriter": rewriter},
        examples=[
            {"id": key, "story": story, "answer": city} for key, (city, story) in STORIES.items()
        ],
        metric=metric,
        expected={
            "draft": "You write the headline of a local news story.",
            "variants": "You rewrite a headline in the style the editor asks for.",
        },
        fixes={"draft": DRAFT_FIX, "variants": VARIANT_FIX},
    )
