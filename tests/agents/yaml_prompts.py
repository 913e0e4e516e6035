"""Mail assistant whose prompts live in a YAML file loaded once at import time into a dict
(``PROMPTS = yaml.safe_load(...)``), read in the nodes as ``PROMPTS["classifier"]["system"]``,
the way many projects keep prompts as configuration.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says

PATTERN = "prompts in a YAML file loaded at import time into a dict, read as PROMPTS[a][b]"
PROMPTS_FILE = Path(__file__).parent / "prompts" / "yaml_prompts" / "prompts.yaml"
PROMPTS = yaml.safe_load(PROMPTS_FILE.read_text())
CLASSIFY_FIX, RESPOND_FIX = "INVOICES ARE WORK", "SIGN AS THE ASSISTANT"
EMAILS = {
    "invoice": ("Invoice 4411 for March consulting", "work"),
    "receipt": ("Invoice for your office chair order", "work"),
    "mum": ("Sunday lunch at mum's?", "family"),
    "digest": ("Your weekly digest: 10 new posts", "newsletters"),
}


def classify_reply(messages) -> str:
    subject = last_human(messages).lower()
    if "invoice" in subject:
        return "work" if says(messages, CLASSIFY_FIX) else "newsletters"
    return "family" if "mum" in subject else "newsletters"


def respond_reply(messages) -> str:
    text = "Thanks, I received your email."
    return text + " -- Assistant" if says(messages, RESPOND_FIX) else text


class State(TypedDict, total=False):
    subject: str
    folder: str
    reply: str


def build() -> AgentCase:
    classifier = ScriptedChatModel(script=classify_reply)
    responder = ScriptedChatModel(script=respond_reply)

    def classify(state: State) -> dict:
        messages = [SystemMessage(PROMPTS["classifier"]["system"]), HumanMessage(state["subject"])]
        return {"folder": classifier.invoke(messages).text}

    def respond(state: State) -> dict:
        messages = [SystemMessage(PROMPTS["responder"]["system"]), HumanMessage(state["subject"])]
        return {"reply": responder.invoke(messages).text}

    builder = StateGraph(State)
    builder.add_node("classify", classify)
    builder.add_node("respond", respond)
    builder.add_edge(START, "classify")
    builder.add_edge("classify", "respond")
    builder.add_edge("respond", END)
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "classify",
                    state["folder"] == example["answer"],
                    f"{example['subject']!r} belongs in {example['answer']}, not "
                    f'{state["folder"]}: the classifier prompt should say "{CLASSIFY_FIX}".',
                ),
                (
                    "respond",
                    state["reply"].endswith("-- Assistant"),
                    f'Replies are signed: the responder prompt should say "{RESPOND_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"classifier": classifier, "responder": responder},
        examples=[
            {"id": key, "subject": subject, "answer": folder}
            for key, (subject, folder) in EMAILS.items()
        ],
        metric=metric,
        expected={
            "classify": "You sort incoming emails into folders",
            "respond": "You draft a short acknowledgement",
        },
        fixes={"classify": CLASSIFY_FIX, "respond": RESPOND_FIX},
    )
