"""Graphs and a LiteLLM provider the interception tests share: a one-node planner graph, a
rollout run as a system runs it (a Substitution and a TraceCollector in its config), and an
in-process LiteLLM provider that keeps the messages it received."""

import asyncio
import contextlib
from collections.abc import Iterator
from typing import TypedDict

import litellm
from langgraph.graph import START, StateGraph

from gepa_graph.integrations.langgraph import boundary, intercept
from gepa_graph.integrations.langgraph.tracing import TraceCollector
from gepa_graph.testing.chat_model import ScriptedChatModel

SEED = "You are a careful planner. Plan the steps for the task."
NEW = "You are a bold planner. Plan at most two steps."
SEEDS = {"planner": boundary.PromptSpec(SEED)}


class State(TypedDict, total=False):
    question: str
    answer: str


def one_node(work, is_async=False):
    builder = StateGraph(State)
    if is_async:

        async def node(state):
            return {"answer": await work(state["question"])}
    else:

        def node(state):
            return {"answer": work(state["question"])}

    builder.add_node("plan", node)
    builder.add_edge(START, "plan")
    return builder.compile()


def rollout(graph, prompts=None, question="q?"):
    """Run ``graph`` as a rollout does: a Substitution and a TraceCollector in its config."""
    intercept.install()
    substitution = boundary.Substitution(
        SEEDS, prompts if prompts is not None else {"planner": NEW}
    )
    collector = TraceCollector(substitution)
    config = {"callbacks": [collector], "configurable": {boundary.CONFIG_KEY: substitution}}
    output = asyncio.run(graph.ainvoke({"question": question}, config))
    return output, collector


def echo_system():
    return ScriptedChatModel(script=lambda ms: ms[0].text)


PROVIDER = "gg-intercept-test"


class Recorder(litellm.CustomLLM):
    """A LiteLLM provider answering in-process and keeping the messages it received."""

    def __init__(self):
        super().__init__()
        self.received = []

    def completion(self, model, messages, *args, **kwargs):
        self.received.append([dict(m) for m in messages])
        return litellm.ModelResponse(
            model=model,
            choices=[{"index": 0, "message": {"role": "assistant", "content": "planned"}}],
            usage={"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
        )

    async def acompletion(self, model, messages, *args, **kwargs):
        return self.completion(model, messages, *args, **kwargs)


def chat_messages(question):
    return [{"role": "system", "content": SEED}, {"role": "user", "content": question}]


@contextlib.contextmanager
def registered_provider() -> Iterator[Recorder]:
    """A Recorder serving ``PROVIDER/...`` models while inside; the provider map as it was after."""
    recorder = Recorder()
    before = list(litellm.custom_provider_map)
    litellm.custom_provider_map = [
        *(p for p in before if p.get("provider") != PROVIDER),
        {"provider": PROVIDER, "custom_handler": recorder},
    ]
    litellm.utils.custom_llm_setup()
    try:
        yield recorder
    finally:
        litellm.custom_provider_map = before
        litellm.utils.custom_llm_setup()
