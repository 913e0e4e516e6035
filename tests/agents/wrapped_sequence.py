"""A graph wrapped in a chain: ``preprocess | graph`` (a ``RunnableSequence``) normalises the
user's raw input into the graph's state before the compiled graph runs, as apps that expose one
Runnable do; the thing handed to the optimizer is the sequence, not the graph.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, final_text, graded, last_human, says

PATTERN = "a compiled graph wrapped in a RunnableSequence: preprocess | graph"
FIX = "ANSWER IN UPPER CASE"
SYSTEM_PROMPT = (
    "You are a spelling assistant. Spell the word the user asks about, letter by letter."
)
WORDS = ["necessary", "rhythm", "queue", "receipt"]


def spell_reply(messages) -> str:
    word = last_human(messages).split()[-1].strip("?")
    letters = "-".join(word)
    return letters.upper() if says(messages, FIX) else letters


def preprocess(raw: dict) -> dict:
    return {"messages": [HumanMessage(f"How do you spell {raw['word'].strip().lower()}?")]}


def build() -> AgentCase:
    model = ScriptedChatModel(script=spell_reply)

    def speller(state: MessagesState) -> dict:
        return {"messages": [model.invoke([SystemMessage(SYSTEM_PROMPT), *state["messages"]])]}

    builder = StateGraph(MessagesState)
    builder.add_node("speller", speller)
    builder.add_edge(START, "speller")
    builder.add_edge("speller", END)
    app = RunnableLambda(preprocess) | builder.compile()

    def metric(example, state):
        answer = final_text(state)
        return graded(
            [
                (
                    "speller",
                    answer == example["answer"],
                    f'Expected {example["answer"]!r}, got {answer!r}: the prompt should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=app,
        models={"speller": model},
        examples=[
            {"id": w, "word": f"  {w.title()} ", "answer": "-".join(w).upper()} for w in WORDS
        ],
        metric=metric,
        expected={"speller": "You are a spelling assistant."},
        fixes={"speller": FIX},
    )
