"""LangGraphSystem: a compiled LangGraph graph as a ``gepa_graph.System``.

Modules are the graph's discovered prompts (``discover``). A rollout runs ``graph.ainvoke`` on a
copy holding the candidate's prompts (``substitute``), with a ``TraceCollector`` as callback. The
metric's ``prediction`` is the final state ``ainvoke`` returns (messages stay LangChain
messages); the trace has one record per node step, model call and tool call, attributed to nodes
so a module's reflection reads only its own node's records (``node_of``).

Graph input for an example (first rule that applies):

1. ``input_fn(example)`` when given;
2. the example's ``inputs`` field, when it has one;
3. the example's fields that the graph's input schema declares, minus label fields
   (``LABEL_FIELDS``: never leak the expected answer into the state); if the graph takes
   ``messages`` and the example has none, its ``question``/``input``/``query``/``prompt``/``task``
   text becomes the first user message;
4. for graphs without a known schema: every field except the label fields.

A graph with a checkpointer runs its rollouts against a private in-memory saver with a fresh
thread id each, so optimization never writes to your checkpoint store.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gepa_graph.integrations.langgraph import _internals
from gepa_graph.integrations.langgraph.discover import (
    PromptSlot,
    discover,
    ensure_compiled,
)
from gepa_graph.integrations.langgraph.substitute import apply, substituted
from gepa_graph.integrations.langgraph.tracing import TraceCollector, error_text
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.pregel import Pregel

from gepa_graph.candidate import content_id
from gepa_graph.lm import is_transient
from gepa_graph.system import Rollout

LABEL_FIELDS = frozenset(
    {
        "id",
        "answer",
        "expected",
        "expected_output",
        "label",
        "labels",
        "target",
        "reference",
        "ground_truth",
        "gold",
        "solution",
    }
)
QUESTION_FIELDS = ("question", "input", "query", "prompt", "task")
_COPY_CACHE_SIZE = 32


class LangGraphSystem:
    """Optimize the prompts of a compiled LangGraph graph; see the module docstring.

    ``input_fn``: example -> graph input. ``config``: merged into every run (recursion limit,
    ``configurable`` values...). ``prompts``: ``gg.prompt`` names with default text that the
    source scan cannot see. ``exclude``: discovered modules to leave alone.
    """

    def __init__(
        self,
        graph: Any,
        *,
        input_fn: Callable[[Any], Any] | None = None,
        config: RunnableConfig | None = None,
        prompts: Mapping[str, str] | None = None,
        exclude: Iterable[str] = (),
    ) -> None:
        self.graph: Pregel = ensure_compiled(graph)
        self._declared = dict(prompts or {})
        slots = discover(self.graph, self._declared)
        excluded = set(exclude)
        unknown = sorted(excluded - set(slots))
        if unknown:
            raise KeyError(
                f"cannot exclude unknown module(s) {unknown}; modules are {sorted(slots)}"
            )
        self.slots: dict[str, PromptSlot] = {n: s for n, s in slots.items() if n not in excluded}
        if not self.slots:
            raise ValueError("every discovered prompt is excluded; nothing is left to optimize")
        self._all_slots = slots
        self._input_fn = input_fn
        self._config = config
        self._fields = _internals.input_fields(self.graph)
        self._copies: OrderedDict[str, Pregel] = OrderedDict()
        checkpointer = self.graph.checkpointer
        self._saver = InMemorySaver() if isinstance(checkpointer, BaseCheckpointSaver) else None

    # -- the System protocol

    def modules(self) -> dict[str, str]:
        return {name: slot.text for name, slot in self.slots.items()}

    def node_of(self, module: str) -> str | None:
        return self._slot(module).node

    def apply(self, target: Any, prompts: Mapping[str, str]) -> None:
        apply(ensure_compiled(target), prompts, self._declared)

    def validate_example(self, example: Any) -> None:
        """Raise ValueError for an example whose graph input lacks what the graph requires."""
        if not isinstance(example, Mapping):
            raise ValueError(f"examples must be mappings, got {type(example).__name__}")
        if self._input_fn is not None or self._fields is None:
            return
        fields, required = self._fields
        graph_input = self.graph_input(example)
        if not isinstance(graph_input, Mapping):
            return
        missing = [name for name in required if name not in graph_input]
        if missing:
            hint = f" (or a text field {list(QUESTION_FIELDS)})" if "messages" in missing else ""
            raise ValueError(
                f"the example lacks field(s) {missing}{hint} that the graph's input schema "
                "requires; give an 'inputs' field or pass input_fn"
            )
        if fields and not graph_input:
            raise ValueError(
                f"the example has none of the graph's input fields {fields} (its fields: "
                f"{sorted(example)}); rename them, give an 'inputs' field, or pass input_fn"
            )

    async def arun(self, candidate: Mapping[str, str], example: Any) -> Rollout:
        self._check_candidate(candidate)  # a wrong module name fails loudly, not as a score
        collector = TraceCollector()
        thread_id = f"gepa-{uuid.uuid4()}"
        try:
            graph = self.graph_for(candidate)  # raises for a template that does not parse
            graph_input = self.graph_input(example)
            output = await graph.ainvoke(graph_input, self._run_config(collector, thread_id))
        except Exception as exc:  # a failed rollout is a scored failure, never a crash
            return Rollout(output=None, trace=collector.trace, error=error_text(exc),
                           retryable=is_transient(exc))
        finally:
            if self._saver is not None:
                self._saver.delete_thread(thread_id)
        return Rollout(output=output, trace=collector.trace)

    # -- helpers

    def graph_for(self, candidate: Mapping[str, str]) -> Pregel:
        """The graph running ``candidate``'s prompts (cached per prompt set; never the user's)."""
        self._check_candidate(candidate)
        prompts = {name: text for name, text in candidate.items() if name in self.slots}
        key = content_id(prompts)
        if key in self._copies:
            self._copies.move_to_end(key)
            return self._copies[key]
        graph = substituted(self.graph, self._all_slots, prompts)
        if self._saver is not None:
            graph = _internals.copy_graph(graph) if graph is self.graph else graph
            graph.checkpointer = self._saver
        self._copies[key] = graph
        if len(self._copies) > _COPY_CACHE_SIZE:
            self._copies.popitem(last=False)
        return graph

    def graph_input(self, example: Any) -> Any:
        """The graph input for ``example`` (the convention is in the module docstring)."""
        if self._input_fn is not None:
            return self._input_fn(example)
        if "inputs" in example:
            inputs = example["inputs"]
            return dict(inputs) if isinstance(inputs, Mapping) else inputs
        if self._fields is None:
            return {k: v for k, v in example.items() if k not in LABEL_FIELDS}
        fields = self._fields[0]
        graph_input = {k: example[k] for k in fields if k in example and k not in LABEL_FIELDS}
        if "messages" in fields and "messages" not in graph_input:
            text = next(
                (example[k] for k in QUESTION_FIELDS if isinstance(example.get(k), str)), None
            )
            if text is not None:
                graph_input["messages"] = [HumanMessage(content=text)]
        return graph_input

    def _run_config(self, collector: TraceCollector, thread_id: str) -> RunnableConfig:
        run: RunnableConfig = {"callbacks": [collector]}
        if self._saver is not None:
            run["configurable"] = {"thread_id": thread_id}
        return merge_configs(self._config, run)

    def _check_candidate(self, candidate: Mapping[str, str]) -> None:
        unknown = sorted(set(candidate) - set(self._all_slots))
        if unknown:
            raise KeyError(
                f"candidate has unknown module(s) {unknown}; modules are {sorted(self.slots)}"
            )

    def _slot(self, module: str) -> PromptSlot:
        try:
            return self.slots[module]
        except KeyError:
            raise KeyError(f"unknown module {module!r}; modules are {sorted(self.slots)}") from None
