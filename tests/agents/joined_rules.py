"""Moderator whose system prompt is assembled at run time from a list constant:
``"\\n".join`` of a role line and one bullet per entry of ``HOUSE_RULES`` (teams keep rules as
data and build the prompt in the node). No string in the code is the prompt that reaches the
model; ``apply`` has no single place to write it.
"""

from __future__ import annotations

from langchain_core.messages import SystemMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, final_text, graded, last_human, says

PATTERN = "system prompt joined at run time from a role line and a list of rule constants"
FIX = "LINKS ARE SPAM"
ROLE = "You moderate comments on a cooking blog. Reply ALLOW or REMOVE."
HOUSE_RULES = ["Remove insults.", "Allow criticism of recipes.", "Remove off-topic sales pitches."]
COMMENTS = {
    "link": ("Great recipe! Cheap pans at www.pan-deals.example", "REMOVE"),
    "promo": ("Visit www.best-knives.example for discounts", "REMOVE"),
    "critic": ("Too much salt for my taste.", "ALLOW"),
    "thanks": ("Thanks, my kids loved it.", "ALLOW"),
}


def moderate(messages) -> str:
    comment = last_human(messages)
    if "www." in comment and says(messages, FIX):
        return "REMOVE"
    return "ALLOW"


def build() -> AgentCase:
    model = ScriptedChatModel(script=moderate)

    def moderator(state: MessagesState) -> dict:
        system = "\n".join([ROLE, "Rules:", *(f"- {rule}" for rule in HOUSE_RULES)])
        return {"messages": [model.invoke([SystemMessage(system), *state["messages"]])]}

    builder = StateGraph(MessagesState)
    builder.add_node("moderator", moderator)
    builder.add_edge(START, "moderator")
    builder.add_edge("moderator", END)
    graph = builder.compile()

    def metric(example, state):
        verdict = final_text(state)
        return graded(
            [
                (
                    "moderator",
                    verdict == example["answer"],
                    f"Expected {example['answer']}, got {verdict}: comments with links sell "
                    f'something; the prompt should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=graph,
        models={"moderator": model},
        examples=[
            {"id": key, "question": text, "answer": verdict}
            for key, (text, verdict) in COMMENTS.items()
        ],
        metric=metric,
        expected={"moderator": "You moderate comments on a cooking blog."},
        fixes={"moderator": FIX},
    )
