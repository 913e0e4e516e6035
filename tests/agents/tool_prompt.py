"""ReAct agent whose tool calls its own LLM, like the summarizing tools of research-assistant
tutorials: ``summarize_article`` formats ``SUMMARY_PROMPT`` and asks a second model, inside the
``ToolNode``; the agent model has its own ``SYSTEM_PROMPT``.
"""

from __future__ import annotations

import re

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, call, final_text, graded, last_human, says, tool_result

PATTERN = "a prompt used inside a tool (run by the ToolNode) calling its own LLM"
AGENT_FIX, SUMMARY_FIX = "REPLY WITH THE YEAR ONLY", "KEEP EVERY DATE"

SYSTEM_PROMPT = (
    "You are a history research assistant. Read the article with the "
    "summarize_article tool, then answer the user's question."
)
SUMMARY_PROMPT = "Summarize this encyclopedia article for a busy reader.\n\nArticle:\n{article}"

ARTICLES = {
    "Sydney Harbour Bridge": "The Sydney Harbour Bridge, a steel arch, opened in 1932 "
    "after eight years of work.",
    "Golden Gate Bridge": "The Golden Gate Bridge, a suspension bridge, opened in 1937.",
    "Tower Bridge": "Tower Bridge, a bascule bridge over the Thames, opened in 1894.",
    "Brooklyn Bridge": "The Brooklyn Bridge, a hybrid cable-stayed bridge, opened in 1883.",
}


def summarize(messages) -> str:
    article = messages[-1].text.split("Article:\n", 1)[-1]
    if says(messages, SUMMARY_FIX):
        return article
    return re.sub(r",[^,]*,| in \d{4}| opened| after .*", "", article).rstrip(".") + " is a bridge."


def answer(messages) -> AIMessage | str:
    summary = tool_result(messages)
    if summary is None:
        name = next(n for n in ARTICLES if n.lower() in last_human(messages).lower())
        return call("summarize_article", title=name)
    year = re.search(r"\b1\d{3}\b", summary)
    if says(messages, AGENT_FIX):
        return year.group() if year else "UNKNOWN"
    return f"According to the article summary: {summary}"


def build() -> AgentCase:
    agent_model = ScriptedChatModel(script=answer)
    summary_model = ScriptedChatModel(script=summarize)

    @tool
    def summarize_article(title: str) -> str:
        """Fetch an encyclopedia article by title and return a short summary of it."""
        article = ARTICLES.get(title, "No such article.")
        return summary_model.invoke([HumanMessage(SUMMARY_PROMPT.format(article=article))]).text

    def agent(state: MessagesState) -> dict:
        response = agent_model.bind_tools([summarize_article]).invoke(
            [SystemMessage(SYSTEM_PROMPT), *state["messages"]]
        )
        return {"messages": [response]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([summarize_article]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    graph = builder.compile()

    def metric(example, state):
        reply = final_text(state)
        return graded(
            [
                (
                    "tools",
                    example["answer"] in reply,
                    f"The year {example['answer']} never reached the answer; the article summary "
                    f'dropped it: the summary prompt should say "{SUMMARY_FIX}".',
                ),
                (
                    "agent",
                    " " not in reply,
                    f"The reply must be a bare year, got {reply!r}: the agent prompt should say "
                    f'"{AGENT_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"agent": agent_model, "summarizer": summary_model},
        examples=[
            {
                "id": name.split()[0].lower(),
                "question": f"When did the {name} open?",
                "answer": re.search(r"\d{4}", text).group(),
            }
            for name, text in ARTICLES.items()
        ],
        metric=metric,
        expected={
            "agent": "You are a history research assistant.",
            "tools": "Summarize this encyclopedia article",
        },
        fixes={"agent": AGENT_FIX, "tools": SUMMARY_FIX},
    )
