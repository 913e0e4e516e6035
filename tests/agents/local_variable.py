"""Copywriter whose prompt is a local variable inside the node function.

Common in quick prototypes and notebooks: ``instructions = "..."`` is written right where the
model is called, so no module-level name points at it; only a probe run sees it reach the model.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, says

PATTERN = "prompt held in a local variable of the node function"
FIX = "MENTION THE PRICE"
PRODUCTS = {
    "kettle": ("Aurora kettle", "$39"),
    "lamp": ("Lumo desk lamp", "$24"),
    "chair": ("Ergo chair", "$189"),
    "mug": ("Thermo mug", "$12"),
}


class State(TypedDict, total=False):
    product: str
    price: str
    description: str


def write(messages) -> str:
    product, price = (line.split(": ", 1)[1] for line in messages[-1].text.splitlines()[:2])
    text = f"Meet the {product}: built to last and a joy to use every day."
    return f"{text} Yours for only {price}." if says(messages, FIX) else text


def build() -> AgentCase:
    model = ScriptedChatModel(script=write)

    def copywriter(state: State) -> dict:
        instructions = (
            "You write product descriptions for an online shop. Write two upbeat sentences "
            "that make the reader want the product."
        )
        details = f"Product: {state['product']}\nPrice: {state['price']}"
        response = model.invoke([SystemMessage(instructions), HumanMessage(details)])
        return {"description": response.text}

    builder = StateGraph(State)
    builder.add_node("copywriter", copywriter)
    builder.add_edge(START, "copywriter")
    builder.add_edge("copywriter", END)
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "copywriter",
                    example["answer"] in state["description"],
                    f"Shoppers need the price {example['answer']} and the description "
                    f'omitted it: the instructions should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=graph,
        models={"copywriter": model},
        examples=[
            {"id": key, "product": name, "price": price, "answer": price}
            for key, (name, price) in PRODUCTS.items()
        ],
        metric=metric,
        expected={"copywriter": "You write product descriptions for an online shop."},
        needs_probe=True,
        fixes={"copywriter": FIX},
    )
