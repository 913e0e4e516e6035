"""Review digest whose prompts live in files next to the agent: a Jinja2 template (with a loop)
rendered through a ``jinja2.Environment`` in one node, and a Markdown file read and
``str.format``-ed in the other, as projects that keep prompts out of the code do.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, says

PATTERN = "prompts in a Jinja2 file and a Markdown file, rendered in the nodes"
PROMPTS_DIR = Path(__file__).parent / "prompts" / "file_prompts"
SUMMARY_FIX, HEADLINE_FIX = "COUNT THE COMPLAINTS", "PUT THE PRODUCT NAME FIRST"
PRODUCTS = {
    "kettle": ["Boils fast.", "The lid broke.", "Handle gets hot."],
    "lamp": ["Lovely light.", "Switch is flimsy."],
    "chair": ["Comfortable.", "Wobbles.", "Squeaks.", "Arm fell off."],
    "blender": ["Loud.", "Great smoothies."],
}


class State(TypedDict, total=False):
    product: str
    reviews: list[str]
    summary: str
    headline: str


def complaints(reviews) -> int:
    good = ("fast", "lovely", "comfortable", "great")
    return sum(not any(g in r.lower() for g in good) for r in reviews)


def summary_reply(messages) -> str:
    reviews = [line[2:] for line in messages[0].text.splitlines() if line.startswith("- ")]
    if says(messages, SUMMARY_FIX):
        return f"{complaints(reviews)} of {len(reviews)} reviews complain."
    return "Customers have mixed feelings."


def headline_reply(messages) -> str:
    summary = messages[0].text.split("Summary: ", 1)[-1].splitlines()[0]
    product = messages[-1].text.split("Product: ", 1)[-1]
    if says(messages, HEADLINE_FIX):
        return f"{product.title()}: {summary}"
    return f"This week: {summary}"


def build() -> AgentCase:
    summarizer = ScriptedChatModel(script=summary_reply)
    editor = ScriptedChatModel(script=headline_reply)
    templates = Environment(loader=FileSystemLoader(PROMPTS_DIR))

    def summarize(state: State) -> dict:
        system = templates.get_template("summarize.jinja2").render(
            product=state["product"], reviews=state["reviews"]
        )
        reply = summarizer.invoke([SystemMessage(system), HumanMessage(state["product"])])
        return {"summary": reply.text}

    def write_headline(state: State) -> dict:
        prompt = (PROMPTS_DIR / "headline.md").read_text().format(summary=state["summary"])
        reply = editor.invoke([SystemMessage(prompt), HumanMessage(f"Product: {state['product']}")])
        return {"headline": reply.text}

    builder = StateGraph(State)
    builder.add_node("summarize", summarize)
    builder.add_node("write_headline", write_headline)
    builder.add_edge(START, "summarize")
    builder.add_edge("summarize", "write_headline")
    builder.add_edge("write_headline", END)
    graph = builder.compile()

    def metric(example, state):
        headline = state["headline"]
        return graded(
            [
                (
                    "summarize",
                    example["answer"] in headline,
                    f"The digest must say how many reviews complain ({example['answer']}): the "
                    f'summary prompt should say "{SUMMARY_FIX}".',
                ),
                (
                    "write_headline",
                    headline.lower().startswith(example["product"]),
                    f'The headline must open with the product name: the headline prompt should say "{HEADLINE_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"summarizer": summarizer, "editor": editor},
        examples=[
            {
                "id": product,
                "product": product,
                "reviews": reviews,
                "answer": f"{complaints(reviews)} of {len(reviews)}",
            }
            for product, reviews in PRODUCTS.items()
        ],
        metric=metric,
        expected={
            "summarize": "You summarize customer reviews of",
            "write_headline": "You write the headline of the weekly product digest.",
        },
        fixes={"summarize": SUMMARY_FIX, "write_headline": HEADLINE_FIX},
        files={
            "summarize": PROMPTS_DIR / "summarize.jinja2",
            "write_headline": PROMPTS_DIR / "headline.md",
        },
    )
