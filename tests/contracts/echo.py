"""Echo systems for the contract tests, importable by Ray workers (the test cluster's
PYTHONPATH holds the repository): each answers with the prompt texts it ran and the question,
so a test reads which prompts reached the model. A question ``fail`` raises RuntimeError inside
the system, ``timeout`` a TimeoutError (a transient failure)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypedDict

from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import START, StateGraph

from gepa_graph.system import FunctionSystem, Rollout, Trace, failed_rollout
from gepa_graph.testing.chat_model import ScriptedChatModel

SEEDS = {"instructions": "Answer the question.", "style": "Be brief."}


def reply(question: str, prompts: list[str]) -> str:
    """The echo's answer, or the failure a question asks for."""
    if question == "fail":
        raise RuntimeError("the echo broke on purpose")
    if question == "timeout":
        raise TimeoutError("the echo timed out on purpose")
    return " | ".join([*prompts, question])


def answer(prompts: Mapping[str, str], example: Mapping[str, Any], trace: Trace) -> Any:
    """A FunctionSystem's fn: records one model call (with this process's id) and echoes."""
    texts = [prompts[name] for name in sorted(prompts)]
    text = reply(example["question"], texts)
    trace.add("llm", inputs=texts, outputs=text, meta={"pid": os.getpid()})
    return {"answer": text}


def function_system() -> FunctionSystem:
    """The echo as a FunctionSystem (two modules)."""
    return FunctionSystem(SEEDS, answer)


class PlainEcho:
    """The echo as a bare ``gg.System``: ``modules`` and ``arun``, no BaseSystem."""

    def modules(self) -> dict[str, str]:
        """The seed prompts."""
        return dict(SEEDS)

    async def arun(self, candidate: Mapping[str, str], example: Any) -> Rollout:
        """Echo, a raise caught into a failed rollout as every System must."""
        trace = Trace()
        try:
            return Rollout(output=answer(candidate, example, trace), trace=trace)
        except Exception as exc:
            return failed_rollout(exc, trace)


class QA(TypedDict, total=False):
    question: str
    answer: str


def _model_reply(messages: list[BaseMessage]) -> str:
    return reply(messages[-1].text, [messages[0].text])


def graph() -> Any:
    """The echo as a one-node LangGraph graph: its system prompt is the one module."""
    prompt = ChatPromptTemplate.from_messages(
        [("system", SEEDS["instructions"]), ("human", "{question}")]
    )
    model = ScriptedChatModel(script=_model_reply)
    builder = StateGraph(QA)
    builder.add_node("echo", prompt | model | (lambda message: {"answer": message.content}))
    builder.add_edge(START, "echo")
    return builder.compile()
