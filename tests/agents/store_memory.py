"""Memory agent in the style of LangGraph's ``langchain-ai/memory-agent`` template.

Long-term memory lives in the graph's store: ``call_model`` reads the user's profile and memories
by ``runtime.context.user_id`` and formats them into ``runtime.context.system_prompt``; the model
saves a memory each turn with the ``upsert_memory`` tool, which the ``store_memory`` node writes to
``runtime.store``, then the model answers with the memories it now has. The nodes are sync, as the
LangGraph memory how-to writes them (the template's async nodes differ only by ``await``), so the
graph also runs over a sync-only store such as ``SqliteStore``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Annotated

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import InjectedToolArg, tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, call, final_text, graded, last_human, says, tool_result

PATTERN = "long-term memory in the graph's store: profile and memories read by user id, one saved per turn"
FIX = "CALL THE USER BY THEIR NAME"
USER_ID = "ada"
SYSTEM_PROMPT = """You are a helpful and friendly chatbot. Get to know the user! Save what you learn.

{user_info}"""
PROFILE = {"name": "Ada", "city": "Lyon"}
MEMORIES = {"m0": {"content": "likes hiking", "context": "onboarding"}}


@dataclass(kw_only=True)
class Context:
    """Who the agent talks to, and its prompt."""

    user_id: str = USER_ID
    system_prompt: str = field(default=SYSTEM_PROMPT)


def seed(store: BaseStore, user_id: str = USER_ID) -> BaseStore:
    """Give ``store`` the user's profile and first memory, as a deployment would hold them."""
    store.put(("profile", user_id), "profile", PROFILE)
    for key, value in MEMORIES.items():
        store.put(("memories", user_id), key, value)
    return store


@tool
def upsert_memory(
    content: str,
    context: str,
    *,
    memory_id: str | None = None,
    user_id: Annotated[str, InjectedToolArg],
    store: Annotated[BaseStore, InjectedToolArg],
) -> str:
    """Save a memory about the user: ``content`` is the fact, ``context`` where it came up."""
    key = memory_id or str(uuid.uuid4())
    store.put(("memories", user_id), key, {"content": content, "context": context})
    return f"Stored memory {key}"


def reply(messages) -> AIMessage | str:
    if tool_result(messages) is None:
        fact = last_human(messages).removeprefix("Remember that ").rstrip(".")
        return call("upsert_memory", content=fact, context="said in chat")
    system = messages[0].text
    name = re.search(r"^Name: (.+)$", system, re.M).group(1)
    count = len(re.findall(r"^- ", system, re.M))
    greeting = f"Got it, {name}." if says(messages, FIX) else "Got it."
    return f"{greeting} I now remember {count} things about you."


def build(store: BaseStore | None = None) -> AgentCase:
    """The agent compiled with ``store`` (default: an InMemoryStore, seeded)."""
    model = ScriptedChatModel(script=reply)

    def call_model(state: MessagesState, runtime: Runtime[Context]) -> dict:
        user_id = runtime.context.user_id
        profile = runtime.store.get(("profile", user_id), "profile")
        memories = runtime.store.search(("memories", user_id), limit=10)
        user_info = f"Name: {profile.value['name']}\nMemories:\n" + "\n".join(
            f"- {item.value['content']}" for item in memories
        )
        system = runtime.context.system_prompt.format(user_info=user_info)
        response = model.bind_tools([upsert_memory]).invoke(
            [{"role": "system", "content": system}, *state["messages"]]
        )
        return {"messages": [response]}

    def store_memory(state: MessagesState, runtime: Runtime[Context]) -> dict:
        results = [
            ToolMessage(
                upsert_memory.invoke(
                    {**tc["args"], "user_id": runtime.context.user_id, "store": runtime.store}
                ),
                tool_call_id=tc["id"],
            )
            for tc in state["messages"][-1].tool_calls
        ]
        return {"messages": results}

    def route_message(state: MessagesState) -> str:
        return "store_memory" if state["messages"][-1].tool_calls else END

    builder = StateGraph(MessagesState, context_schema=Context)
    builder.add_node(call_model)
    builder.add_node(store_memory)
    builder.add_edge(START, "call_model")
    builder.add_conditional_edges("call_model", route_message, ["store_memory", END])
    builder.add_edge("store_memory", "call_model")
    graph = builder.compile(store=store if store is not None else seed(InMemoryStore()))

    def metric(example, state):
        answer = final_text(state)
        return graded(
            [
                (
                    "context.system_prompt",
                    answer == example["answer"],
                    f"Expected {example['answer']!r}, got {answer!r}: our users like to be "
                    f'greeted by name; the prompt should say "{FIX}".',
                )
            ]
        )

    facts = ["I drink green tea", "my sister is called Rose", "I cycle to work", "I read sci-fi"]
    remembered = len(MEMORIES) + 1  # what the store held, and this turn's memory
    return AgentCase(
        graph=graph,
        models={"agent": model},
        examples=[
            {
                "id": f"fact-{i}",
                "question": f"Remember that {fact}.",
                "answer": f"Got it, {PROFILE['name']}. I now remember {remembered} things about you.",
            }
            for i, fact in enumerate(facts)
        ],
        metric=metric,
        expected={"context.system_prompt": "Get to know the user! Save what you learn."},
        system_kwargs={"context": Context()},
        invoke_kwargs={"context": Context()},
        fixes={"context.system_prompt": FIX},
    )
