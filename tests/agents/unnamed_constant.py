"""Hotel concierge whose system prompt is a module constant named ``HOUSE_RULES``.

Written like many hand-rolled chatbots: the constant's name says what the text is about, not that
it is a prompt, so name-based discovery passes it by; only a probe run sees it reach the model.
"""

from __future__ import annotations

from langchain_core.messages import SystemMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, final_text, graded, last_human, says

PATTERN = "module constant whose name has no prompt-like word (HOUSE_RULES)"
FIX = "SIGN OFF AS THE FRONT DESK"
SIGN_OFF = "Warm regards, The Front Desk"

HOUSE_RULES = """You are the concierge of the Seaview Hotel. Answer guests' questions kindly.
Check-in is from 15:00, check-out until 11:00. Breakfast is served 7:00-10:30.
The pool is open 8:00-20:00. The Wi-Fi password is SEAVIEW2024."""

FACTS = {
    "check-out": "Check-out is until 11:00.",
    "breakfast": "Breakfast is served 7:00-10:30.",
    "pool": "The pool is open 8:00-20:00.",
    "wi-fi": "The Wi-Fi password is SEAVIEW2024.",
}


def concierge_reply(messages) -> str:
    question = last_human(messages).lower()
    fact = next((text for key, text in FACTS.items() if key in question), "Let me check.")
    return f"{fact}\n{SIGN_OFF}" if says(messages, FIX) else f"{fact} Enjoy your stay!"


def build() -> AgentCase:
    model = ScriptedChatModel(script=concierge_reply)

    def concierge(state: MessagesState) -> dict:
        return {"messages": [model.invoke([SystemMessage(HOUSE_RULES), *state["messages"]])]}

    builder = StateGraph(MessagesState)
    builder.add_node("concierge", concierge)
    builder.add_edge(START, "concierge")
    builder.add_edge("concierge", END)
    graph = builder.compile()

    def metric(example, state):
        reply = final_text(state)
        return graded(
            [
                (
                    "concierge",
                    example["answer"] in reply and reply.endswith(SIGN_OFF),
                    f'Every reply must end with "{SIGN_OFF}": the prompt should say "{FIX}".',
                ),
            ]
        )

    questions = {
        "check-out": "Until when is check-out?",
        "breakfast": "When is breakfast?",
        "pool": "When is the pool open?",
        "wi-fi": "What is the Wi-Fi password?",
    }
    return AgentCase(
        graph=graph,
        models={"concierge": model},
        examples=[
            {"id": key, "question": q, "answer": FACTS[key].rstrip(".")}
            for key, q in questions.items()
        ],
        metric=metric,
        expected={"concierge": "You are the concierge of the Seaview Hotel."},
        needs_probe=True,
        fixes={"concierge": FIX},
    )
