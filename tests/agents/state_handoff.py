"""Review classifier where one node formats the prompt into the state and another sends it.

A pattern of pipelines that log or inspect the rendered prompt: ``prepare`` fills
``CLASSIFY_PROMPT`` into ``state["prompt"]``; ``classify`` hands that text to the model.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, says

PATTERN = "prompt formatted into a state field by one node, sent to the model by another"
FIX = "REPLY WITH ONE LOWERCASE WORD"
CLASSIFY_PROMPT = """Read the customer review below and tell us whether the customer is happy.

Review: {review}"""
POSITIVE = ("love", "great", "excellent", "perfect")


class State(TypedDict, total=False):
    review: str
    prompt: str
    sentiment: str


def classify_reply(messages) -> str:
    review = messages[-1].text.split("Review: ", 1)[-1].lower()
    label = "positive" if any(word in review for word in POSITIVE) else "negative"
    return label if says(messages, FIX) else f"The customer sounds {label} about it."


def build() -> AgentCase:
    model = ScriptedChatModel(script=classify_reply)

    def prepare(state: State) -> dict:
        return {"prompt": CLASSIFY_PROMPT.format(review=state["review"])}

    def classify(state: State) -> dict:
        return {"sentiment": model.invoke([HumanMessage(state["prompt"])]).text.strip()}

    builder = StateGraph(State)
    builder.add_node("prepare", prepare)
    builder.add_node("classify", classify)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "classify")
    builder.add_edge("classify", END)
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "prepare",
                    state["sentiment"] == example["answer"],
                    f"Expected the label {example['answer']!r}, got {state['sentiment']!r}: "
                    f'the prompt should say "{FIX}".',
                )
            ]
        )

    reviews = {
        "r1": ("I love this blender, it is great.", "positive"),
        "r2": ("It broke after two days.", "negative"),
        "r3": ("Excellent value, perfect size.", "positive"),
        "r4": ("The lid leaks and support never answered.", "negative"),
    }
    return AgentCase(
        graph=graph,
        models={"classifier": model},
        examples=[
            {"id": key, "review": text, "answer": label} for key, (text, label) in reviews.items()
        ],
        metric=metric,
        expected={"prepare": "tell us whether the customer is happy"},
        fixes={"prepare": FIX},
    )
