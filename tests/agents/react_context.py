"""ReAct agent in the style of the official ``langchain-ai/react-agent`` template.

The system prompt is a field of the graph's ``context_schema`` dataclass whose default comes from a
prompts module; the model node formats ``runtime.context.system_prompt`` with the current time, and
tools run in a ``ToolNode`` routed by ``tools_condition``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.runtime import Runtime

from gepa_graph.testing.chat_model import ScriptedChatModel

from . import _prompts_react_context as prompts
from ._case import CAPITALS, AgentCase, call, country_in, final_text, graded, says, tool_result

PATTERN = "context_schema dataclass field holds the system prompt (runtime.context.system_prompt)"
FIX = "ANSWER IN UPPERCASE"


@dataclass(kw_only=True)
class Context:
    """The context for the agent."""

    system_prompt: str = field(
        default=prompts.SYSTEM_PROMPT,
        metadata={"description": "The system prompt to use for the agent's interactions."},
    )
    max_search_results: int = 3


@tool
def search(query: str) -> str:
    """Search an atlas for facts about a country."""
    country = country_in(query)
    return f"The capital of {country} is {CAPITALS[country]}." if country else "No results."


def reply(messages) -> AIMessage | str:
    found = tool_result(messages)
    if found is None:
        return call("search", query=messages[-1].text)
    city = found.rstrip(".").split(" is ")[-1]
    return city.upper() if says(messages, FIX) else f"I looked it up: the capital is {city}."


def build() -> AgentCase:
    model = ScriptedChatModel(script=reply)

    def call_model(state: MessagesState, runtime: Runtime[Context]) -> dict:
        system_message = runtime.context.system_prompt.format(
            system_time=datetime.now(tz=UTC).isoformat()
        )
        response = model.bind_tools([search]).invoke(
            [{"role": "system", "content": system_message}, *state["messages"]]
        )
        return {"messages": [response]}

    builder = StateGraph(MessagesState, context_schema=Context)
    builder.add_node(call_model)
    builder.add_node("tools", ToolNode([search]))
    builder.add_edge(START, "call_model")
    builder.add_conditional_edges("call_model", tools_condition, ["tools", END])
    builder.add_edge("tools", "call_model")
    graph = builder.compile(name="ReAct Agent")

    def metric(example, state):
        answer = final_text(state)
        return graded(
            [
                (
                    "context.system_prompt",
                    answer == example["answer"],
                    f"Expected the bare city {example['answer']!r}, got {answer!r}: "
                    f'the prompt should say "{FIX}".',
                )
            ]
        )

    countries = ["France", "Japan", "Kenya", "Peru"]
    return AgentCase(
        graph=graph,
        models={"agent": model},
        examples=[
            {
                "id": c.lower(),
                "question": f"What is the capital of {c}?",
                "answer": CAPITALS[c].upper(),
            }
            for c in countries
        ],
        metric=metric,
        expected={"context.system_prompt": "Look facts up with the search tool"},
        system_kwargs={"context": Context()},
        invoke_kwargs={"context": Context()},
        fixes={"context.system_prompt": FIX},
    )
