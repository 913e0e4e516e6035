"""Conversational retrieval in the style of ``langchain-ai/retrieval-agent-template``.

Both prompts are fields of a ``Configuration`` dataclass (defaults from a prompts module) read with
``Configuration.from_runnable_config(config)`` from ``config["configurable"]``; each node builds its
``ChatPromptTemplate`` from the configured text at run time. The retriever is a keyword index.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Annotated

from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig, ensure_config
from langgraph.graph import START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from . import _prompts_retrieval as prompts
from ._case import AgentCase, final_text, graded, last_human, says

PATTERN = "Configuration fields read from config['configurable'], templates built in nodes"
QUERY_FIX, CITE_FIX = "USE THE BOOK TITLE AS THE QUERY", "CITE THE SOURCE"
BOOKS = {
    "dune": ("Dune", "Frank Herbert"),
    "emma": ("Emma", "Jane Austen"),
    "ulysses": ("Ulysses", "James Joyce"),
    "beloved": ("Beloved", "Toni Morrison"),
}


@dataclass(kw_only=True)
class Configuration:
    """The configuration for the agent."""

    query_system_prompt: str = field(default=prompts.QUERY_SYSTEM_PROMPT)
    response_system_prompt: str = field(default=prompts.RESPONSE_SYSTEM_PROMPT)
    top_k: int = 2

    @classmethod
    def from_runnable_config(cls, config: RunnableConfig | None = None) -> Configuration:
        configurable = ensure_config(config).get("configurable") or {}
        names = {f.name for f in fields(cls) if f.init}
        return cls(**{k: v for k, v in configurable.items() if k in names})


class State(MessagesState):
    queries: Annotated[list[str], operator.add]
    retrieved_docs: list[str]


def retrieve_from_index(query: str) -> list[str]:
    """An exact-title index: a query finds a book only when it is the title itself."""
    book = BOOKS.get(query.strip().lower())
    return [f"[{query.strip().lower()}] {book[0]} was written by {book[1]}."] if book else []


def query_reply(messages) -> str:
    question = last_human(messages)
    title = next((t for t, _ in BOOKS.values() if t.lower() in question.lower()), question)
    return title if says(messages, QUERY_FIX) else question


def response_reply(messages) -> str:
    system = messages[0].text
    doc = next((line for line in system.splitlines() if line.startswith("[")), None)
    answer = doc.split(" by ")[-1].rstrip(".") if doc else "I could not find that book."
    if says(messages, CITE_FIX):
        answer += f" [source: {doc[1 : doc.index(']')] if doc else 'none'}]"
    return answer


def build() -> AgentCase:
    query_model = ScriptedChatModel(script=query_reply)
    response_model = ScriptedChatModel(script=response_reply)
    now = datetime.now(tz=UTC).isoformat

    def generate_query(state: State, *, config: RunnableConfig) -> dict:
        configuration = Configuration.from_runnable_config(config)
        prompt = ChatPromptTemplate.from_messages(
            [("system", configuration.query_system_prompt), ("placeholder", "{messages}")]
        )
        message_value = prompt.invoke(
            {
                "messages": state["messages"],
                "system_time": now(),
                "queries": "\n- ".join(state.get("queries", [])),
            },
            config,
        )
        return {"queries": [query_model.invoke(message_value, config).text]}

    def retrieve(state: State) -> dict:
        return {"retrieved_docs": retrieve_from_index(state["queries"][-1])}

    def respond(state: State, *, config: RunnableConfig) -> dict:
        configuration = Configuration.from_runnable_config(config)
        prompt = ChatPromptTemplate.from_messages(
            [("system", configuration.response_system_prompt), ("placeholder", "{messages}")]
        )
        message_value = prompt.invoke(
            {
                "messages": state["messages"],
                "system_time": now(),
                "retrieved_docs": "\n".join(state["retrieved_docs"]),
            }
        )
        return {"messages": [response_model.invoke(message_value, config)]}

    builder = StateGraph(State, config_schema=Configuration)
    for node in (generate_query, retrieve, respond):
        builder.add_node(node)
    builder.add_edge(START, "generate_query")
    builder.add_edge("generate_query", "retrieve")
    builder.add_edge("retrieve", "respond")
    graph = builder.compile(name="RetrievalGraph")

    def metric(example, state):
        answer = final_text(state)
        return graded(
            [
                (
                    "context.query_system_prompt",
                    example["answer"] in answer,
                    f"The answer should name {example['answer']}, but the search found nothing: the "
                    f'query prompt should say "{QUERY_FIX}".',
                ),
                (
                    "context.response_system_prompt",
                    "[source:" in answer,
                    f"The answer must end with its source, like [source: dune]: the response prompt "
                    f'should say "{CITE_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"query": query_model, "response": response_model},
        examples=[
            {"id": key, "question": f"Who wrote the novel {title}?", "answer": author}
            for key, (title, author) in BOOKS.items()
        ],
        metric=metric,
        expected={
            "context.query_system_prompt": "Generate a search query to retrieve",
            "context.response_system_prompt": "You are a helpful librarian.",
        },
        fixes={
            "context.query_system_prompt": QUERY_FIX,
            "context.response_system_prompt": CITE_FIX,
        },
    )
