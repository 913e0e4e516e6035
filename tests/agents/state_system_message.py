"""Chatbot that stores its system message in the conversation state: an ``init`` node adds
``SystemMessage(PERSONA)`` to ``messages`` on a thread's first turn, and the ``chat`` node sends
the state's messages as they are (checkpointed with ``InMemorySaver``), as simple memory bots do.
"""

from __future__ import annotations

from langchain_core.messages import SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, final_text, graded, last_human, says

PATTERN = "system message added to the state by an init node, sent later from the state"
FIX = "ANSWER IN ONE WORD"
PERSONA = "You are Pip, a cheerful quiz-night host. Answer the player's question."
QUIZ = {
    "red": ("What colour is a ripe tomato?", "Red"),
    "four": ("How many legs has a cat?", "Four"),
    "ice": ("What is frozen water called?", "Ice"),
    "moon": ("What orbits the Earth every month?", "Moon"),
}


def reply(messages) -> str:
    answer = next(a for q, a in QUIZ.values() if q == last_human(messages))
    return answer if says(messages, FIX) else f"Great question! The answer is {answer.lower()}!"


def build() -> AgentCase:
    model = ScriptedChatModel(script=reply)

    def init(state: MessagesState) -> dict:
        if any(m.type == "system" for m in state["messages"]):
            return {}
        return {"messages": [SystemMessage(PERSONA, id="persona")]}

    def chat(state: MessagesState) -> dict:
        system = [m for m in state["messages"] if m.type == "system"]
        rest = [m for m in state["messages"] if m.type != "system"]
        return {"messages": [model.invoke([*system, *rest])]}

    builder = StateGraph(MessagesState)
    builder.add_node("init", init)
    builder.add_node("chat", chat)
    builder.add_edge(START, "init")
    builder.add_edge("init", "chat")
    builder.add_edge("chat", END)
    graph = builder.compile(checkpointer=InMemorySaver())

    def metric(example, state):
        answer = final_text(state)
        return graded(
            [
                (
                    "init",
                    answer == example["answer"],
                    f'Expected {example["answer"]!r}, got {answer!r}: the host prompt should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=graph,
        models={"host": model},
        examples=[{"id": key, "question": q, "answer": a} for key, (q, a) in QUIZ.items()],
        metric=metric,
        expected={"init": "You are Pip, a cheerful quiz-night host."},
        fixes={"init": FIX},
        invoke_kwargs={"config": {"configurable": {"thread_id": "quiz"}}},
    )
