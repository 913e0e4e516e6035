"""Report writer whose section node sends a three-word system instruction,
``"Write a report section."``, with the topic and notes in the human message, like the section
writers of open research agents (prompts shorter than any prose-length threshold).
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says

PATTERN = 'a short system instruction: "Write a report section."'
FIX = "START WITH A MARKDOWN HEADING"
TOPICS = {
    "tides": ("Tides", "The moon's gravity pulls the oceans; two high tides a day."),
    "bees": ("Bees", "Bees pollinate a third of our crops; colonies collapse in cold springs."),
    "rust": ("Rust", "Iron reacts with oxygen and water; salt speeds it up."),
    "glass": ("Glass", "Sand melts at 1700 degrees; cooling fast keeps it clear."),
}


class State(TypedDict, total=False):
    topic: str
    notes: str
    section: str


def section_reply(messages) -> str:
    request = last_human(messages)
    topic = request.split("Topic: ", 1)[1].splitlines()[0]
    notes = request.split("Notes: ", 1)[1]
    body = f"{notes}"
    return f"## {topic}\n\n{body}" if says(messages, FIX) else f"{topic}. {body}"


def build() -> AgentCase:
    writer = ScriptedChatModel(script=section_reply)

    def write_section(state: State) -> dict:
        reply = writer.invoke(
            [
                SystemMessage("Write a report section."),
                HumanMessage(f"Topic: {state['topic']}\nNotes: {state['notes']}"),
            ]
        )
        return {"section": reply.text}

    builder = StateGraph(State)
    builder.add_node("write_section", write_section)
    builder.add_edge(START, "write_section")
    builder.add_edge("write_section", END)
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "write_section",
                    state["section"].startswith(example["answer"]),
                    f"Sections open with a heading like {example['answer']!r}: the instruction "
                    f'should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=graph,
        models={"writer": writer},
        examples=[
            {"id": key, "topic": topic, "notes": notes, "answer": f"## {topic}"}
            for key, (topic, notes) in TOPICS.items()
        ],
        metric=metric,
        expected={"write_section": "Write a report section."},
        fixes={"write_section": FIX},
    )
