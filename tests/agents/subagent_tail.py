"""Orchestrator and sub-agent where the sub-agent's prompt is the tail of the orchestrator's:
the orchestrator is told everything its researcher is told, after its own preamble
(``LEAD_PROMPT = LEAD_PREAMBLE + RESEARCHER_PROMPT``), as multi-agent research systems often
compose prompts; each must be rewritten only where it is itself the prompt.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says

PATTERN = "sub-agent prompt = the tail of the orchestrator's prompt (identity, not substring)"
LEAD_FIX, RESEARCH_FIX = "SPLIT BY DECADE", "STATE THE YEAR"
RESEARCHER_PROMPT = (
    "Research rules: answer each question from the archive, in one sentence, and say when you do "
    "not know."
)
LEAD_PROMPT = (
    "You lead a small research team. Split the user's question into sub-questions for your "
    "researcher, one per line.\n\n" + RESEARCHER_PROMPT
)
ARCHIVE = {"radio": 1895, "television": 1927, "transistor": 1947, "laser": 1960}


class State(TypedDict, total=False):
    question: str
    subquestions: list[str]
    findings: list[str]


def lead_reply(messages) -> str:
    topic = next(t for t in ARCHIVE if t in last_human(messages).lower())
    if says(messages, LEAD_FIX):
        return f"When was the {topic} invented?\nWho used the {topic} first?"
    return f"Tell me about the {topic}."


def research_reply(messages) -> str:
    question = last_human(messages)
    topic = next(t for t in ARCHIVE if t in question)
    if "When" in question and says(messages, RESEARCH_FIX):
        return f"The {topic} was invented in {ARCHIVE[topic]}."
    return f"The {topic} changed the world."


def build() -> AgentCase:
    lead_model = ScriptedChatModel(script=lead_reply)
    researcher_model = ScriptedChatModel(script=research_reply)

    def lead(state: State) -> dict:
        reply = lead_model.invoke([SystemMessage(LEAD_PROMPT), HumanMessage(state["question"])])
        return {"subquestions": [q for q in reply.text.splitlines() if q.strip()]}

    def research(state: State) -> dict:
        findings = [
            researcher_model.invoke([SystemMessage(RESEARCHER_PROMPT), HumanMessage(q)]).text
            for q in state["subquestions"]
        ]
        return {"findings": findings}

    builder = StateGraph(State)
    builder.add_node("lead", lead)
    builder.add_node("research", research)
    builder.add_edge(START, "lead")
    builder.add_edge("lead", "research")
    builder.add_edge("research", END)
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "lead",
                    len(state["subquestions"]) > 1,
                    f'The question needs several sub-questions: the lead prompt should say "{LEAD_FIX}".',
                ),
                (
                    "research",
                    any(example["answer"] in f for f in state["findings"]),
                    f"The findings never gave the year {example['answer']}: the researcher prompt "
                    f'should say "{RESEARCH_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"lead": lead_model, "researcher": researcher_model},
        examples=[
            {"id": topic, "question": f"Write a short history of the {topic}.", "answer": str(year)}
            for topic, year in ARCHIVE.items()
        ],
        metric=metric,
        expected={
            "lead": "You lead a small research team.",
            "research": "Research rules: answer each question from the archive",
        },
        fixes={"lead": LEAD_FIX, "research": RESEARCH_FIX},
        owners={"lead": "lead", "research": "researcher"},
    )
