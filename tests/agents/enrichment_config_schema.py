"""Data-enrichment agent in the style of ``langchain-ai/data-enrichment``.

The research prompt is the ``prompt`` field of the ``Configuration`` dataclass given as the graph's
``context_schema``; the node formats ``runtime.context.prompt`` with the extraction schema and the
topic and sends it as the first human message. The agent searches, then submits through an ``Info``
tool whose parameters are the user's JSON schema.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass, field
from typing import Annotated, Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.runtime import Runtime

from gepa_graph.testing.chat_model import ScriptedChatModel

from . import _prompts_enrichment as prompts
from ._case import AgentCase, call, graded, says, tool_result

PATTERN = "context_schema Configuration.prompt formatted with .format(info=..., topic=...)"
FIX = "FILL EVERY FIELD"
COMPANIES = {
    "Acme Robotics": {"founder": "Ada Stone", "headquarters": "Lyon", "founded": "2011"},
    "Blue Finch Labs": {"founder": "Omar Diaz", "headquarters": "Porto", "founded": "2016"},
    "Cedar Health": {"founder": "Mei Tanaka", "headquarters": "Osaka", "founded": "2008"},
    "Delta Freight": {"founder": "Lars Berg", "headquarters": "Bergen", "founded": "1999"},
}
SCHEMA = {
    "type": "object",
    "properties": {k: {"type": "string"} for k in ("founder", "headquarters", "founded")},
}


@dataclass(kw_only=True)
class Configuration:
    """The configuration for the agent."""

    prompt: str = field(
        default=prompts.MAIN_PROMPT,
        metadata={"description": "The main prompt template. Expects {info} and {topic}."},
    )
    max_loops: int = 6


class State(MessagesState):
    topic: str
    extraction_schema: dict[str, Any]
    info: Annotated[dict[str, Any], operator.or_]


@tool
def search(query: str) -> str:
    """Search the web for a company."""
    name = next((n for n in COMPANIES if n.lower() in query.lower()), None)
    return json.dumps(COMPANIES[name]) if name else "No results."


def reply(messages) -> AIMessage:
    found = tool_result(messages)
    if found is None:
        return call("search", query=messages[0].text.rsplit("Topic: ", 1)[-1])
    facts = json.loads(found)
    return call("Info", **(facts if says(messages, FIX) else {"founder": facts["founder"]}))


def build() -> AgentCase:
    model = ScriptedChatModel(script=reply)

    def call_agent_model(state: State, runtime: Runtime[Configuration]) -> dict:
        info_tool = {
            "name": "Info",
            "description": "Call this when you have gathered all the relevant info",
            "parameters": state["extraction_schema"],
        }
        p = runtime.context.prompt.format(
            info=json.dumps(state["extraction_schema"], indent=2), topic=state["topic"]
        )
        messages = [HumanMessage(content=p), *state["messages"]]
        response = model.bind_tools([search, info_tool], tool_choice="any").invoke(messages)
        info = next((c["args"] for c in response.tool_calls if c["name"] == "Info"), None)
        return {"messages": [response], "info": info or {}}

    def route_after_agent(state: State) -> str:
        last = state["messages"][-1]
        return END if not isinstance(last, AIMessage) or state["info"] else "tools"

    builder = StateGraph(State, context_schema=Configuration)
    builder.add_node(call_agent_model)
    builder.add_node("tools", ToolNode([search]))
    builder.add_edge(START, "call_agent_model")
    builder.add_conditional_edges("call_agent_model", route_after_agent, ["tools", END])
    builder.add_edge("tools", "call_agent_model")
    graph = builder.compile(name="ResearchTopic")

    def metric(example, state):
        info = state.get("info") or {}
        checks = [
            (
                "context.prompt",
                info.get(key) == value,
                f"The {key} is missing or wrong (expected {value!r}): the prompt should "
                f'say "{FIX}".',
            )
            for key, value in example["answer"].items()
        ]
        return graded(checks)

    return AgentCase(
        graph=graph,
        models={"agent": model},
        examples=[
            {
                "id": name.split()[0].lower(),
                "topic": name,
                "extraction_schema": SCHEMA,
                "answer": facts,
            }
            for name, facts in COMPANIES.items()
        ],
        metric=metric,
        expected={"context.prompt": "You are doing web research on behalf of a user."},
        system_kwargs={"context": Configuration()},
        invoke_kwargs={"context": Configuration()},
        fixes={"context.prompt": FIX},
    )
