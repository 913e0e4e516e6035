"""Writer with two compiled subgraphs: one invoked inside a node function, one added as a node.

As in the LangGraph "subgraphs" how-to: ``research`` is a plain function that calls
``draft_graph.invoke(...)`` (different state schema, mapped by hand), while ``review_graph`` shares
the parent's ``final`` key and is added directly with ``add_node("review", review_graph)``.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, says

PATTERN = "compiled subgraph invoked inside a node function + compiled subgraph added as a node"
DRAFT_FIX, TITLE_FIX = "STATE ONE EXACT NUMBER", "ADD A MARKDOWN TITLE"
DRAFT_PROMPT = (
    "You are a science writer. Write one sentence about the topic for a children's encyclopedia."
)
EDIT_PROMPT = "You are the copy editor. Return the text ready to print."
FACTS = {
    "the Moon": "The Moon is about 384,400 km from Earth.",
    "Mars": "Mars has 2 small moons.",
    "Jupiter": "Jupiter has 95 known moons.",
    "the Sun": "The Sun is about 150 million km from Earth.",
}


class DraftState(TypedDict, total=False):
    subject: str
    text: str


class State(TypedDict, total=False):
    topic: str
    final: str


def draft_reply(messages) -> str:
    topic = messages[-1].text
    return (
        FACTS[topic]
        if says(messages, DRAFT_FIX)
        else f"{topic[0].upper()}{topic[1:]} is a fascinating place in space."
    )


def edit_reply(messages) -> str:
    text = messages[-1].text
    return (
        f"# {text.split(' is ')[0].split(' has ')[0]}\n{text}"
        if says(messages, TITLE_FIX)
        else text
    )


def build() -> AgentCase:
    draft_model, edit_model = (
        ScriptedChatModel(script=draft_reply),
        ScriptedChatModel(script=edit_reply),
    )

    def write(state: DraftState) -> dict:
        reply = draft_model.invoke([SystemMessage(DRAFT_PROMPT), HumanMessage(state["subject"])])
        return {"text": reply.text}

    draft_builder = StateGraph(DraftState)
    draft_builder.add_node("write", write)
    draft_builder.add_edge(START, "write")
    draft_graph = draft_builder.compile()

    def edit(state: State) -> dict:
        reply = edit_model.invoke([SystemMessage(EDIT_PROMPT), HumanMessage(state["final"])])
        return {"final": reply.text}

    review_builder = StateGraph(State)
    review_builder.add_node("edit", edit)
    review_builder.add_edge(START, "edit")
    review_graph = review_builder.compile()

    def research(state: State) -> dict:
        result = draft_graph.invoke({"subject": state["topic"]})
        return {"final": result["text"]}

    builder = StateGraph(State)
    builder.add_node("research", research)
    builder.add_node("review", review_graph)
    builder.add_edge(START, "research")
    builder.add_edge("research", "review")
    builder.add_edge("review", END)
    graph = builder.compile()

    def metric(example, state):
        final = state["final"]
        return graded(
            [
                (
                    "research/write",
                    example["answer"] in final,
                    f'The entry must state the fact "{example["answer"]}": the writer prompt should say '
                    f'"{DRAFT_FIX}".',
                ),
                (
                    "review/edit",
                    final.startswith("# "),
                    f'Entries start with a "# " title line: the editor prompt should say "{TITLE_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"draft": draft_model, "edit": edit_model},
        examples=[
            {
                "id": topic.split()[-1].lower(),
                "topic": topic,
                "answer": fact.split(" is ")[-1].split(" has ")[-1].rstrip("."),
            }
            for topic, fact in FACTS.items()
        ],
        metric=metric,
        expected={
            "research/write": "You are a science writer.",
            "review/edit": "You are the copy editor.",
        },
        fixes={"research/write": DRAFT_FIX, "review/edit": TITLE_FIX},
    )
