"""Review classifier with production plumbing: ``prompt | primary.with_retry(...).with_fallbacks(
[backup])`` where the primary model is down (every call raises) so the backup answers, a template
whose JSON example escapes its braces (``{{"sentiment": ...}}``), and a summary written by a
completion LLM (text in, text out) from a ``PromptTemplate``.
"""

from __future__ import annotations

import json

from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says
from ._providers import ScriptedLLM

PATTERN = "with_retry().with_fallbacks([...]) chain, escaped JSON braces, a completion LLM"
CLASSIFY_FIX, SUMMARY_FIX = "MIXED REVIEWS ARE NEUTRAL", "START WITH THE VERDICT"
CLASSIFY_TEMPLATE = (
    'Classify the sentiment of the review. Reply with JSON like {{"sentiment": "positive"}}.'
    "\n\nReview: {review}"
)
SUMMARY_TEMPLATE = "Write a one-line summary of this review for the shop owner.\n\nReview: {review}\nSentiment: {sentiment}\nSummary:"
REVIEWS = {
    "mixed1": ("Lovely colour but the strap broke.", "neutral"),
    "mixed2": ("Fast delivery, wrong size though.", "neutral"),
    "good": ("Perfect, I love it.", "positive"),
    "bad": ("Broke on day one.", "negative"),
}


class ProviderDown(RuntimeError):
    """The primary provider refuses every call."""


def primary_reply(messages) -> str:
    raise ProviderDown("primary provider unavailable")


def backup_reply(messages) -> str:
    review = last_human(messages).rsplit("Review: ", 1)[1]
    mixed = " but " in review or "though" in review
    if mixed and says(messages, CLASSIFY_FIX):
        label = "neutral"
    else:
        label = "negative" if "broke" in review.lower() or "wrong" in review else "positive"
    return json.dumps({"sentiment": label})


def summary_reply(prompt: str) -> str:
    sentiment = prompt.split("Sentiment: ", 1)[1].split("\n", 1)[0]
    text = "Customer wrote about the product."
    return f"{sentiment.upper()}: {text}" if SUMMARY_FIX.lower() in prompt.lower() else text


class State(TypedDict, total=False):
    review: str
    sentiment: str
    summary: str


def build() -> AgentCase:
    primary = ScriptedChatModel(script=primary_reply)
    backup = ScriptedChatModel(script=backup_reply)
    writer = ScriptedLLM(script=summary_reply)
    classify_chain = ChatPromptTemplate.from_messages(
        [("human", CLASSIFY_TEMPLATE)]
    ) | primary.with_retry(
        stop_after_attempt=1, retry_if_exception_type=(ProviderDown,)
    ).with_fallbacks([backup])
    summary_chain = PromptTemplate.from_template(SUMMARY_TEMPLATE) | writer

    def classify(state: State) -> dict:
        reply = classify_chain.invoke({"review": state["review"]})
        return {"sentiment": json.loads(reply.text)["sentiment"]}

    def summarize(state: State) -> dict:
        return {"summary": summary_chain.invoke(dict(state)).strip()}

    builder = StateGraph(State)
    builder.add_node("classify", classify)
    builder.add_node("summarize", summarize)
    builder.add_edge(START, "classify")
    builder.add_edge("classify", "summarize")
    builder.add_edge("summarize", END)
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "classify",
                    state["sentiment"] == example["answer"],
                    f"Expected {example['answer']}, got {state['sentiment']}: the classifier "
                    f'prompt should say "{CLASSIFY_FIX}".',
                ),
                (
                    "summarize",
                    state["summary"].startswith(state["sentiment"].upper()),
                    f'Summaries open with the verdict: the summary prompt should say "{SUMMARY_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"primary": primary, "backup": backup, "writer": writer},
        examples=[
            {"id": key, "review": review, "answer": label}
            for key, (review, label) in REVIEWS.items()
        ],
        metric=metric,
        expected={
            "classify": "Classify the sentiment of the review.",
            "summarize": "Write a one-line summary of this review",
        },
        fixes={"classify": CLASSIFY_FIX, "summarize": SUMMARY_FIX},
    )
