"""How ``LangGraphSystem`` runs the user's graph for one rollout, each on private state.

A rollout runs the user's own graph as it runs: with ``ainvoke``, or ``invoke`` on a worker
thread for a graph that supports only sync execution (``execution``). The candidate travels in
the run's config as a ``boundary.Substitution``; the user's own ``context``/``config`` travel as
given, a prompt field overlaid only where the model boundary cannot rewrite it. Each run gets a
fresh store layer over the user's store (``isolation``), a fresh node cache, and a thread of its
own in a private saver.

Rollouts always run to the end: a graph compiled with ``interrupt_before``/``interrupt_after``
runs without them (said once), and a graph with a checkpointer runs against a private in-memory
saver with a fresh thread id each, so optimization never writes to your checkpoint store.
LangGraph's ``recursion_limit`` (yours, else its default of 25) bounds every rollout.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
import warnings
from collections.abc import Mapping
from typing import Any, cast

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.cache.base import BaseCache
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.pregel import Pregel
from langgraph.types import Command

from gepa_graph.errors import InvalidInput, WrongType
from gepa_graph.failures import is_transient
from gepa_graph.integrations.langgraph import boundary, intercept, isolation
from gepa_graph.integrations.langgraph import store_prompts as in_store
from gepa_graph.integrations.langgraph._internals import graphs
from gepa_graph.integrations.langgraph.discover import PromptSlot
from gepa_graph.integrations.langgraph.execution import (
    cannot_run_async,
    cannot_run_sync,
    neither_message,
    switched_message,
)
from gepa_graph.integrations.langgraph.leaves import FieldLeaf
from gepa_graph.integrations.langgraph.tracing import TraceCollector, error_text
from gepa_graph.system import Rollout
from gepa_graph.usercode import call_user

DEFAULT_RECURSION_LIMIT = 25  # LangGraph's own default


class Rollouts:
    """The rollout-running part of ``LangGraphSystem`` (a base class of it): what it reads of
    the system is declared here, and set by ``LangGraphSystem.__init__``."""

    graph: Runnable
    slots: dict[str, PromptSlot]
    _run_graph: Runnable  # the graph, or a copy without interrupts and with a private saver
    _store: Any  # isolation.store_source: None, a store, or a function returning one
    _store_prompts: Any  # store_prompts.store_prompts
    _tools: isolation.ToolStandIns | None
    _execution: str
    _config: RunnableConfig | None
    _context: Any
    _context_schema: type | None

    def graph_input(self, example: Any) -> Any:
        """The graph input for ``example`` (``LangGraphSystem.graph_input``)."""
        raise NotImplementedError

    def _run_field(self, example: Any, name: str) -> Any:
        raise NotImplementedError

    async def _invoke(
        self, substitution: boundary.Substitution, example: Any
    ) -> tuple[Rollout, TraceCollector]:
        """One rollout, run as the graph runs: with ``ainvoke``, or ``invoke`` on a worker
        thread for a graph that supports only sync execution (found on its first rollout,
        usually the probe, when ``execution="auto"``)."""
        # Every run of the graph comes here, in every process (a Ray worker too): the one place
        # the interception is installed (cheap when done; reaches an SDK imported since).
        intercept.install()
        sync = self._execution == "sync"
        rollout, collector, failure = await self._attempt(substitution, example, sync)
        if self._execution == "auto" and failure is not None and cannot_run_async(failure):
            rerun, rerun_collector, rerun_failure = await self._attempt(
                substitution, example, sync=True
            )
            if rerun_failure is None or not cannot_run_sync(rerun_failure):
                self._execution = "sync"
                warnings.warn(switched_message(failure), stacklevel=2)
                return rerun, rerun_collector
            message = neither_message(failure, rerun_failure)
            if message is not None:
                rollout = Rollout(error=message, trace=collector.trace)
        return rollout, collector

    async def _attempt(
        self, substitution: boundary.Substitution, example: Any, sync: bool
    ) -> tuple[Rollout, TraceCollector, Exception | None]:
        """Run the graph once on a private copy of its state: a fresh store layer over the
        user's store, a fresh node cache, a thread of its own in the private saver."""
        collector = TraceCollector(substitution)
        thread_id = f"gepa-{uuid.uuid4()}"
        graph: Any = self._run_graph
        served = in_store.served(self._store_prompts, substitution.prompts)
        store = isolation.rollout_store(self._store, served)  # a factory's wrong type: raised
        if isinstance(graph, Pregel) and (
            store is not None or getattr(self.graph, "cache", None) is not None
        ):
            graph = graphs.copy_graph(graph, store=store, cache=_fresh_cache(self.graph))
        failure: Exception | None = None
        try:
            config = self._run_config(collector, thread_id, substitution, example)
            if self._tools is not None:
                config["configurable"][isolation.TOOLS_KEY] = self._tools
            context = self._run_context(substitution, example)
            kwargs = {"context": context} if context is not None else {}

            async def run(graph_input: Any) -> Any:
                if sync:
                    return await call_user(graph.invoke, graph_input, config, **kwargs)
                return await graph.ainvoke(graph_input, config, **kwargs)

            output = await run(self.graph_input(example))
            for value in self._run_field(example, "resume") or ():
                if not _interrupted(output):
                    break
                output = await run(Command(resume=value))
            if _interrupted(output):
                raise RuntimeError(
                    f"the graph stopped at an interrupt ({_interrupt_text(output)}); give the "
                    "example a 'resume' list with the value(s) to answer it"
                )
        except Exception as exc:  # a failed rollout is a scored failure, never a crash
            failure = exc
            collector.failure = exc  # the probe raises it as it is when every run fails
            rollout = Rollout(
                output=None,
                trace=collector.trace,
                error=error_text(exc),
                retryable=is_transient(exc),
            )
        else:
            # What could have shaped this run (reuse.py): the modules its model calls carried,
            # since a prompt in code reaches only the model boundary, and every prompt the
            # store serves, since the agent reads those itself.
            carried = {m for call in collector.calls for m in call.modules}
            stored = {m for m in substitution.prompts if m.startswith(in_store.PREFIX)}
            collector.trace.read = sorted(carried | stored)
            rollout = Rollout(output=output, trace=collector.trace)
        finally:
            if getattr(graph, "checkpointer", None) is not getattr(
                self.graph, "checkpointer", None
            ):
                graph.checkpointer.delete_thread(thread_id)
        return rollout, collector, failure

    def _graph_for_rollouts(self) -> Runnable:
        """The user's graph, or a shallow copy without interrupts and with a private saver."""
        changes: dict[str, Any] = {}
        interrupts = graphs.interrupt_nodes(self.graph)
        if interrupts:
            warnings.warn(
                f"the graph interrupts at {interrupts}; rollouts run through to the end "
                "(interrupts off; an example's 'resume' list answers interrupt() calls)",
                stacklevel=3,
            )
            changes.update(interrupt_before_nodes=[], interrupt_after_nodes=[])
        if isinstance(getattr(self.graph, "checkpointer", None), BaseCheckpointSaver) or interrupts:
            changes["checkpointer"] = InMemorySaver()
        if not isinstance(self.graph, Pregel):
            _refuse_shared_state(self.graph)
            return self.graph
        if self._store is not None or self.graph.cache is not None:
            changes.update(store=None, cache=None)  # each rollout gets its own (``_attempt``)
        return graphs.copy_graph(self.graph, **changes) if changes else self.graph

    def _run_config(
        self,
        collector: TraceCollector,
        thread_id: str,
        substitution: boundary.Substitution,
        example: Any,
    ) -> RunnableConfig:
        configurable: dict[str, Any] = {boundary.CONFIG_KEY: substitution}
        given = merge_configs(self._config, self._run_field(example, "config"))
        for name, slot in self.slots.items():
            kind, _, field = name.partition(".")
            if kind in ("context", "configurable") and slot.kind == kind:
                if _overlaid(slot, (given.get("configurable") or {}).get(field, slot.text)):
                    configurable[field] = substitution.prompts[name]
        if getattr(self._run_graph, "checkpointer", None) is not None:
            configurable["thread_id"] = thread_id
        run: RunnableConfig = {"callbacks": [collector], "configurable": configurable}
        config = merge_configs(self._config, self._run_field(example, "config"), run)
        config.setdefault("recursion_limit", DEFAULT_RECURSION_LIMIT)
        return config

    def _run_context(self, substitution: boundary.Substitution, example: Any) -> Any:
        """The context exactly as the user gives it (``context=``, overlaid by the example's),
        with only the prompt fields replaced; never one made from the context class here (its
        required fields are the user's to give). None when the user gives none."""
        given = self._run_field(example, "context")
        if self._context is None and given is None:
            return None
        context = _overlay(self._context, given or {})
        fields = {
            cast(FieldLeaf, slot.leaf).name: substitution.prompts[name]
            for name, slot in self.slots.items()
            if self._context_schema is not None
            and getattr(slot.leaf, "owner", None) is self._context_schema
            and _overlaid(slot, _field(context, cast(FieldLeaf, slot.leaf).name, slot.text))
        }
        return _overlay(context, fields)


def _refuse_shared_state(wrapper: Runnable) -> None:
    """A compiled graph inside a wrapper (``preprocess | graph``) keeps its own store, cache and
    checkpointer, which rollouts cannot swap for private ones: refuse, rather than let them write
    into the user's long-term memory."""
    for graph in graphs.graphs_inside(wrapper):
        shared = [name for name in ("store", "cache", "checkpointer") if getattr(graph, name, None)]
        if shared:
            raise InvalidInput(
                f"the graph {graph.get_name()!r} inside this {type(wrapper).__name__} has its own "
                f"{' and '.join(shared)}, which rollouts would write into: optimize the compiled "
                "graph itself (input_fn= can do the wrapper's preprocessing)"
            )


def _fresh_cache(graph: Any) -> BaseCache | None:
    """A rollout's own node cache: a hit in a shared one would skip the node, and the
    candidate prompt with it, and would write rollouts' results into the user's cache."""
    return InMemoryCache() if getattr(graph, "cache", None) is not None else None


def check_context(context: Any) -> None:
    """Raise WrongType for a ``context=`` that is no mapping, dataclass or pydantic model."""
    if context is None or isinstance(context, Mapping) or dataclasses.is_dataclass(context):
        return
    if not hasattr(context, "model_copy"):
        raise WrongType(
            "context must be a mapping, a dataclass or a pydantic model, got "
            f"{type(context).__name__}"
        )


def _overlaid(slot: PromptSlot, given: Any) -> bool:
    """Whether a run must put the candidate's text into a prompt field itself: when the user
    gives the field another text than the seed, or the seed cannot be recognised where it
    reaches a model. Otherwise the seed reaches the model boundary, which rewrites it there
    once (setting the field too would rewrite the candidate a second time)."""
    return given != slot.text or not slot.spec.pattern().matchable


def _field(context: Any, name: str, default: Any) -> Any:
    if isinstance(context, Mapping):
        return context.get(name, default)
    return getattr(context, name, default)


def _overlay(context: Any, values: Mapping[str, Any]) -> Any:
    """``context`` (a mapping, dataclass or pydantic instance, or None) with ``values`` set,
    as a copy of the same kind: the user's object is never changed nor rebuilt from scratch."""
    if context is None or isinstance(context, Mapping):
        return {**(context or {}), **values}
    if not values:
        return context
    if hasattr(context, "model_copy"):
        return context.model_copy(update=dict(values))
    clone = copy.copy(context)
    for name, value in values.items():
        object.__setattr__(clone, name, value)  # frozen dataclasses too
    return clone


def _interrupted(output: Any) -> bool:
    return bool(graphs.pending_interrupts(output))


def _interrupt_text(output: Any) -> str:
    return "; ".join(str(v)[:80] for v in graphs.pending_interrupts(output))
