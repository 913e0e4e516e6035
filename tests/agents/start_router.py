"""Help desk whose router is the conditional edge leaving ``START``: ``route_question`` asks a
classifier model which expert takes the question before any node runs, as the Adaptive RAG and
routing tutorials do (``add_conditional_edges(START, route_question, {...})``).
"""

from __future__ import annotations

import re

from langchain_core.messages import SystemMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, final_text, graded, last_human, says

PATTERN = "router model called in a conditional edge from START"
ROUTER_FIX, MATH_FIX = "QUESTIONS WITH NUMBERS GO TO MATH", "ANSWER WITH THE NUMBER ONLY"
ROUTER_INSTRUCTIONS = (
    "You route help-desk questions. Reply 'math' for arithmetic questions and 'general' for "
    "everything else."
)
MATH_SYSTEM_PROMPT = "You are a careful calculator. Work out the user's arithmetic question."
GENERAL_SYSTEM_PROMPT = "You are a friendly help-desk agent. Answer in one short sentence."
QUESTIONS = {
    "add": ("How much is 17 plus 25?", "42"),
    "times": ("What do I get for 6 times 7 apples?", "42"),
    "minus": ("Compute 100 minus 58, please.", "42"),
    "sum": ("If I have 40 pens and buy 2 more, how many pens?", "42"),
}


def route_reply(messages) -> str:
    question = last_human(messages)
    if says(messages, ROUTER_FIX) and re.search(r"\d", question):
        return "math"
    return "math" if "compute" in question.lower() else "general"


def math_reply(messages) -> str:
    numbers = [int(n) for n in re.findall(r"\d+", last_human(messages))]
    a, b = numbers
    question = last_human(messages)
    value = a * b if "times" in question else a - b if "minus" in question else a + b
    return str(value) if says(messages, MATH_FIX) else f"Let me see: that makes {value}."


def build() -> AgentCase:
    router = ScriptedChatModel(script=route_reply)
    calculator = ScriptedChatModel(script=math_reply)
    helper = ScriptedChatModel(script=lambda messages: "Happy to help with that!")

    def route_question(state: MessagesState) -> str:
        verdict = router.invoke([SystemMessage(ROUTER_INSTRUCTIONS), state["messages"][-1]])
        return "math" if "math" in verdict.text.lower() else "general"

    def math(state: MessagesState) -> dict:
        return {
            "messages": [calculator.invoke([SystemMessage(MATH_SYSTEM_PROMPT), *state["messages"]])]
        }

    def general(state: MessagesState) -> dict:
        return {
            "messages": [helper.invoke([SystemMessage(GENERAL_SYSTEM_PROMPT), *state["messages"]])]
        }

    builder = StateGraph(MessagesState)
    builder.add_node("math", math)
    builder.add_node("general", general)
    builder.add_conditional_edges(START, route_question, {"math": "math", "general": "general"})
    builder.add_edge("math", END)
    builder.add_edge("general", END)
    graph = builder.compile()

    def metric(example, state):
        answer = final_text(state)
        routed = any(
            m.type == "ai" and m.text != "Happy to help with that!" for m in state["messages"]
        )
        return graded(
            [
                (
                    "route_question",
                    routed,
                    f'An arithmetic question reached the general agent: the router prompt should say "{ROUTER_FIX}".',
                ),
                (
                    "math",
                    answer == example["answer"],
                    f'Expected the bare number {example["answer"]}, got {answer!r}: the calculator prompt should say "{MATH_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"router": router, "calculator": calculator, "helper": helper},
        examples=[{"id": key, "question": q, "answer": a} for key, (q, a) in QUESTIONS.items()],
        metric=metric,
        expected={
            "route_question": "You route help-desk questions.",
            "math": "You are a careful calculator.",
            "general": "You are a friendly help-desk agent.",
        },
        fixes={"route_question": ROUTER_FIX, "math": MATH_FIX},
    )
