"""Sentiment tagger whose node calls the OpenAI SDK itself
(``client.chat.completions.create``), the way code written before any framework does; the client
talks to an in-process ``httpx.MockTransport`` stub: no network.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from ._case import AgentCase, graded, says
from ._providers import OpenAIStub

PATTERN = "a node calling the OpenAI SDK client (chat.completions.create) directly"
FIX = "SARCASM IS NEGATIVE"
SENTIMENT_SYSTEM_PROMPT = "Label the sentiment of the customer's message: positive or negative."
MESSAGES = {
    "great": ("Oh great, it broke again.", "negative"),
    "love": ("I just love waiting an hour on hold.", "negative"),
    "thanks": ("Thanks a lot for ruining my weekend.", "negative"),
    "works": ("It works perfectly, thank you!", "positive"),
}


def label_reply(messages) -> str:
    text = messages[-1].text.lower()
    sarcastic = any(w in text for w in ("again", "waiting", "ruining"))
    if sarcastic and says(messages, FIX):
        return "negative"
    return "positive" if any(w in text for w in ("great", "love", "thank")) else "negative"


class State(TypedDict, total=False):
    text: str
    label: str


def build() -> AgentCase:
    stub = OpenAIStub(label_reply)
    client = stub.client

    def tag(state: State) -> dict:
        completion = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": SENTIMENT_SYSTEM_PROMPT},
                {"role": "user", "content": state["text"]},
            ],
        )
        return {"label": completion.choices[0].message.content.strip()}

    builder = StateGraph(State)
    builder.add_node("tag", tag)
    builder.add_edge(START, "tag")
    builder.add_edge("tag", END)
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "tag",
                    state["label"] == example["answer"],
                    f"{example['text']!r} is {example['answer']}, not {state['label']}: the "
                    f'prompt should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=graph,
        models={"openai": stub},
        examples=[
            {"id": key, "text": text, "answer": label} for key, (text, label) in MESSAGES.items()
        ],
        metric=metric,
        expected={"tag": "Label the sentiment of the customer's message"},
        fixes={"tag": FIX},
    )
