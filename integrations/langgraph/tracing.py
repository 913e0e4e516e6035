"""A LangChain callback handler that turns one graph run into a per-node ``gepa_graph.Trace``.

Records (all values JSON-friendly, messages as ``{"role", "content", "tool_calls", ...}``):

- ``node``: a node step, from its start (input state) to its end (the update it returned);
  a step that raised becomes an ``error`` record carrying the node's input and the exception;
- ``llm``: each model call, with the messages sent and the message returned, token usage and
  cost (``usage``: LiteLLM's price table; None when the model is unknown to it), or the error;
- ``tool``: each tool call with its name and arguments and its output or error.

Attribution: a run's node comes from LangGraph's metadata at its start
(``_internals.graphs.node_path_of``: "node", or "parent/child" inside a subgraph); runs without
that metadata inherit their parent run's node. End and error events carry no metadata, so
records are found by run id. Records are appended at start, so they are in start order.

Given the run's ``boundary.Substitution``, the trace is attributed by prompt: a model call's
``modules`` are those whose prompt its messages carried (whichever node, tool or edge made the
call), the node step around the call gets them too, and so does every tool call the model
asked for (matched by tool-call id).

Besides the trace, every model call, whatever path reached the model (LangChain callbacks here,
provider SDK calls through ``record_sdk_call``), is kept as an ``ObservedCall``
(``model_calls``) in ``TraceCollector.calls``: the messages as (role, text) pairs and a ``site``
key that is the same for the corresponding call of every example. That is what discovery and the substitution audit read.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from uuid import UUID, uuid4

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langgraph.errors import GraphBubbleUp

from gepa_graph.integrations.langgraph._internals.graphs import node_path_of
from gepa_graph.integrations.langgraph.model_calls import (
    CHAT_ROLES,
    ObservedCall,
    content_text,
    message_pairs,
    role_of,
    texts_of,
)
from gepa_graph.integrations.langgraph.usage import (
    cost,
    model_identity,
    model_name,
    start_model,
    usage_of,
)
from gepa_graph.jsonable import to_jsonable
from gepa_graph.system import Trace, TraceRecord, Usage


def error_text(error: BaseException) -> str:
    """``Type: message`` of an error, as a trace records it."""
    return f"{type(error).__name__}: {error}"


class Attribution(Protocol):
    """What the collector needs of the run's ``boundary.Substitution``: which modules' prompts
    some texts carry (a protocol, so this module does not import the boundary that installs it)."""

    def modules_in(self, texts: Iterable[str]) -> list[str]:
        """The modules whose prompt ``texts`` carry."""
        ...


@dataclasses.dataclass
class _Run:
    node: str | None
    record: TraceRecord | None = None
    model: str | None = None
    step: TraceRecord | None = None  # the node step this run belongs to


class TraceCollector(BaseCallbackHandler):
    """Collects one rollout's trace; give each rollout its own collector (``.trace``).

    ``calls``: every model call as an ``ObservedCall``, in start order. For the probe run,
    ``system_texts`` is the text of every system message a model received, ``instruction_texts``
    those and the text of each call's first other message (where an instruction sent as a plain
    string ends up).
    """

    run_inline = True  # called in order on the event loop for async runs; no thread hop

    def __init__(self, substitution: Attribution | None = None) -> None:
        self.trace = Trace(by_prompt=substitution is not None)
        self.calls: list[ObservedCall] = []
        self._substitution = substitution
        self._ordinals: dict[tuple[Any, str, str], int] = {}
        self._tool_call_modules: dict[str, list[str]] = {}
        self._runs: dict[UUID, _Run] = {}
        self._lock = threading.Lock()  # sync nodes run in worker threads
        self.failure: Exception | None = None  # a failed rollout's error (``rollouts``)

    @property
    def system_texts(self) -> list[str]:
        """The text of every system message a model received, in call order."""
        return [text for call in self.calls for text in call.texts("system")]

    @property
    def instruction_texts(self) -> list[str]:
        """System texts and the first other message of each call (an instruction sent as a
        plain string), in call order."""
        texts = []
        for call in self.calls:
            texts += call.texts("system")
            first = next((text for role, text in call.messages if role != "system"), None)
            if first is not None:
                texts.append(first)
        return texts

    # -- bookkeeping

    def _observe(
        self,
        run_id: UUID,
        entry: str,
        messages: tuple[tuple[str, str], ...],
        modules: list[str] | None,
        model: str,
    ) -> ObservedCall:
        """Record an ObservedCall for the model run ``run_id`` (already started)."""
        with self._lock:
            run = self._runs.get(run_id)
            node = run.node if run else None
            step = id(run.step) if run and run.step is not None else node
            key = (step, entry, model)
            ordinal = self._ordinals.get(key, 0)
            self._ordinals[key] = ordinal + 1
            call = ObservedCall(node, entry, messages, tuple(modules or ()), model, ordinal)
            self.calls.append(call)
        return call

    def _start(
        self,
        kind: str | None,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: Mapping[str, Any] | None,
        inputs: Any = None,
        model: str | None = None,
        modules: list[str] | None = None,
    ) -> None:
        with self._lock:
            parent = self._runs.get(parent_run_id) if parent_run_id else None
            node = node_path_of(metadata) or (parent.node if parent else None)
            if kind == "node" and (node is None or (parent is not None and parent.node == node)):
                kind = None  # not a node step: the graph itself, or a run inside a node's step
            record = self.trace.add(kind, node=node, inputs=inputs) if kind else None
            step = record if kind == "node" else (parent.step if parent else None)
            self._runs[run_id] = _Run(node=node, record=record, model=model, step=step)
            if modules:
                for target in (record, step):
                    if target is not None:
                        target.modules = sorted({*(target.modules or ()), *modules})

    def _end(self, run_id: UUID, **fields: Any) -> _Run | None:
        with self._lock:
            run = self._runs.pop(run_id, None)
            if run is not None and run.record is not None:
                for name, value in fields.items():
                    setattr(run.record, name, value)
            return run

    # -- chains: graph, node steps and everything inside them

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start("node", run_id, parent_run_id, metadata, to_jsonable(inputs))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, outputs=to_jsonable(outputs))

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if isinstance(error, GraphBubbleUp):  # interrupts and Command(graph=PARENT): control flow
            self._end(run_id)
        else:
            self._end(run_id, kind="error", error=error_text(error))

    # -- model calls

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        batches = [[to_jsonable(m) for m in batch] for batch in messages]
        inputs = {"messages": batches[0] if len(batches) == 1 else batches}
        model = start_model(kwargs, metadata)
        flat = [message for batch in messages for message in batch]
        modules = self._substitution.modules_in(texts_of(flat)) if self._substitution else None
        self._start("llm", run_id, parent_run_id, metadata, inputs, model, modules)
        identity = model_identity(model, serialized)
        for batch in messages:
            self._observe(run_id, "langchain.chat", message_pairs(batch), modules, identity)

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        model = start_model(kwargs, metadata)
        modules = self._substitution.modules_in(prompts) if self._substitution else None
        self._start(
            "llm", run_id, parent_run_id, metadata, {"prompts": list(prompts)}, model, modules
        )
        identity = model_identity(model, serialized)
        for prompt in prompts:
            self._observe(run_id, "langchain.llm", (("human", prompt),), modules, identity)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            run = self._runs.get(run_id)
        model = model_name(response, run.model if run else None)
        generation = (
            response.generations[0][0] if response.generations and response.generations[0] else None
        )
        message = getattr(generation, "message", None)
        if message is not None and run is not None and run.record is not None:
            with self._lock:  # the tools this call asks for run for the same modules
                for call in getattr(message, "tool_calls", None) or ():
                    if call.get("id") and run.record.modules:
                        self._tool_call_modules[call["id"]] = run.record.modules
        if message is not None:
            outputs: Any = {"message": to_jsonable(message)}
        else:
            outputs = {"text": generation.text if generation else ""}
        self._end(run_id, outputs=outputs, usage=usage_of(response, model), meta={"model": model})

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error_text(error))

    # -- model calls on other paths (provider SDKs)

    def record_sdk_call(
        self,
        entry: str,
        messages: list[dict[str, Any]],
        *,
        model: str | None,
        metadata: Mapping[str, Any] | None,
        parent_run_id: UUID | None,
    ) -> Callable[..., None]:
        """Record a model call made through a provider SDK (``entry``), with its request's
        messages as chat dicts, as an ``llm`` record and an ObservedCall, attributed like a
        LangChain call; returns ``finish(message, tokens, model, error)`` to complete it."""
        run_id = uuid4()
        pairs = tuple((role_of(m.get("role")), content_text(m.get("content"))) for m in messages)
        modules = (
            self._substitution.modules_in(text for _, text in pairs) if self._substitution else None
        )
        shown = [{**m, "role": CHAT_ROLES[role_of(m.get("role"))]} for m in messages]
        inputs = {"messages": to_jsonable(shown)}
        self._start("llm", run_id, parent_run_id, metadata, inputs, model, modules)
        self._observe(run_id, entry, pairs, modules, model or "")

        def finish(
            message: dict[str, Any] | None,
            tokens: tuple[int, int] | None,
            answered_by: str | None,
            error: BaseException | None,
        ) -> None:
            name = answered_by or model
            fields: dict[str, Any] = {"meta": {"model": name, "entry": entry}}
            if error is not None:
                fields["error"] = error_text(error)
            if message is not None:
                fields["outputs"] = {"message": to_jsonable(message)}
                with self._lock:
                    run = self._runs.get(run_id)
                    for call in message.get("tool_calls") or ():
                        if call.get("id") and run and run.record and run.record.modules:
                            self._tool_call_modules[call["id"]] = run.record.modules
            if tokens is not None:
                fields["usage"] = Usage(
                    prompt_tokens=tokens[0],
                    completion_tokens=tokens[1],
                    cost_usd=cost(name, *tokens),
                )
            self._end(run_id, **fields)

        return finish

    # -- tools

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = (serialized or {}).get("name") or kwargs.get("name")
        arguments = to_jsonable(inputs) if inputs is not None else input_str
        with self._lock:
            modules = self._tool_call_modules.get(kwargs.get("tool_call_id") or "")
        self._start(
            "tool",
            run_id,
            parent_run_id,
            metadata,
            {"name": name, "args": arguments},
            modules=modules,
        )

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if isinstance(output, ToolMessage):
            output = output.content
        self._end(run_id, outputs=to_jsonable(output))

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error_text(error))
