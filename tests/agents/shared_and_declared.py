"""Slogan writer with a prompt shared by two nodes and a prompt declared with ``gg.prompt``.

``draft`` and ``revise`` both send the module constant ``STYLE_PROMPT`` (one house style for every
writing step); the ``critic`` node reads its instructions through
``gg.prompt("critic", "...")``, gepa_graph's way to mark text the scan could not otherwise see.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

import gepa_graph as gg
from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, says

PATTERN = "one constant prompt sent by two nodes + a gg.prompt('critic', ...) declaration"
STYLE_FIX, CRITIC_FIX = "NO EXCLAMATION MARKS", "INSIST ON THE BRAND NAME"
STYLE_PROMPT = "You are the copywriter of a small agency. Write catchy, energetic slogans."
BRANDS = {
    "Zephyr bikes": "Zephyr",
    "Nimbus tea": "Nimbus",
    "Orbit shoes": "Orbit",
    "Quill notebooks": "Quill",
}


class State(TypedDict, total=False):
    product: str
    draft: str
    critique: str
    slogan: str


def writer_reply(messages) -> str:
    text = messages[-1].text
    brand = next(b for b in BRANDS.values() if b in text)
    words = "Ride the wind" if "Draft" in text else "Move with the wind"
    slogan = f"{words}, {brand} is here" if "brand name" in text else f"{words}, it is here"
    return slogan + ("." if says(messages, STYLE_FIX) else "!!!")


def critic_reply(messages) -> str:
    if says(messages, CRITIC_FIX):
        return "Good energy, but the brand name is missing; add the brand name."
    return "Good energy. Maybe shorter."


def build() -> AgentCase:
    writer = ScriptedChatModel(script=writer_reply)
    critic_model = ScriptedChatModel(script=critic_reply)

    def draft(state: State) -> dict:
        task = HumanMessage(f"Draft a slogan for {state['product']}.")
        return {"draft": writer.invoke([SystemMessage(STYLE_PROMPT), task]).text}

    def critic(state: State) -> dict:
        instructions = gg.prompt(
            "critic", "You review slogans. Say in one sentence what would make this slogan better."
        )
        reply = critic_model.invoke([SystemMessage(instructions), HumanMessage(state["draft"])])
        return {"critique": reply.text}

    def revise(state: State) -> dict:
        task = HumanMessage(
            f"Revise the slogan for {state['product']}: {state['draft']}\n"
            f"Feedback: {state['critique']}"
        )
        return {"slogan": writer.invoke([SystemMessage(STYLE_PROMPT), task]).text}

    builder = StateGraph(State)
    for node in (draft, critic, revise):
        builder.add_node(node)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "critic")
    builder.add_edge("critic", "revise")
    builder.add_edge("revise", END)
    graph = builder.compile()

    def metric(example, state):
        slogan = state["slogan"]
        return graded(
            [
                (
                    "draft",
                    "!" not in slogan,
                    f"The client bans exclamation marks: the shared style "
                    f'prompt should say "{STYLE_FIX}".',
                ),
                (
                    "critic",
                    example["answer"] in slogan,
                    f"The slogan must name {example['answer']}: "
                    f'the critic prompt should say "{CRITIC_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"writer": writer, "critic": critic_model},
        examples=[
            {"id": brand.lower(), "product": product, "answer": brand}
            for product, brand in BRANDS.items()
        ],
        metric=metric,
        expected={
            "draft": "You are the copywriter of a small agency.",
            "critic": "You review slogans.",
        },
        fixes={"draft": STYLE_FIX, "critic": CRITIC_FIX},
    )
