"""LangGraphSystem: a compiled LangGraph graph as a ``gepa_graph.System``.

Modules are the graph's prompts (``discover``; candidates confirmed by ``probe``). A rollout runs
the user's own graph with ``ainvoke``: the candidate travels in the run's config as a
``boundary.Substitution`` (rewritten where it reaches a model, whichever node, tool or edge makes
the call), context-schema prompts in ``context=`` and configuration prompts in
``configurable`` -- LangGraph's own ways, nothing copied. A ``TraceCollector`` records one record
per node step, model call and tool call, each model call attributed to the modules whose prompt
it carried, which is what a module's reflection reads.

Graph input for an example (first rule that applies):

1. ``input_fn(example)`` when given;
2. the example's ``inputs`` field, when it has one;
3. the example's fields that the graph's input schema declares, minus label fields
   (``LABEL_FIELDS``: never leak the expected answer into the state); if the graph takes
   ``messages`` and the example has none, its ``question``/``input``/``query``/``prompt``/``task``
   text becomes the first user message;
4. for graphs without a known schema: every field except the label and run fields.

Run fields of an example (unless the input schema declares a field of that name): ``context``
(runtime context, merged over ``LangGraphSystem(context=...)``), ``config`` (merged into the
run config) and ``resume`` (values answering the graph's ``interrupt()`` calls in order).

Rollouts always run to the end: a graph compiled with ``interrupt_before``/``interrupt_after``
runs without them (said once), and a graph with a checkpointer runs against a private in-memory
saver with a fresh thread id each, so optimization never writes to your checkpoint store.
LangGraph's ``recursion_limit`` (yours, else its default of 25) bounds every rollout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.cache.base import BaseCache
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.pregel import Pregel
from langgraph.types import Command

from gepa_graph.errors import InvalidInput, UnknownName, WrongType
from gepa_graph.integrations.langgraph import _internals, boundary, isolation
from gepa_graph.integrations.langgraph import store_prompts as in_store
from gepa_graph.integrations.langgraph.discover import (
    NoPromptsFound,
    PromptSlot,
    ensure_compiled,
    find_slots,
    no_prompts_message,
    table,
)
from gepa_graph.integrations.langgraph.execution import (
    cannot_run_async,
    cannot_run_sync,
    execution_mode,
    neither_message,
    switched_message,
)
from gepa_graph.integrations.langgraph.tracing import TraceCollector, error_text
from gepa_graph.integrations.langgraph.walk import CannotWriteInPlace
from gepa_graph.lm import is_transient
from gepa_graph.system import Rollout
from gepa_graph.usercode import call_user

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
RUN_FIELDS = ("context", "config", "resume")
QUESTION_FIELDS = ("question", "input", "query", "prompt", "task")
DEFAULT_RECURSION_LIMIT = 25  # LangGraph's own default


@dataclasses.dataclass
class ProbeReport:
    """What one seed run showed: which prompts reached a model, and what else did."""

    reached: dict[str, list[str]]  # module -> nodes whose model calls carried it
    confirmed: list[str]  # candidates that became modules
    unreached: list[str]  # modules found in the code whose prompt reached no model
    unclaimed: list[str]  # system-message texts that reached a model and belong to no module
    error: str | None = None
    cost_usd: float | None = None  # of the probe run's model calls, where LiteLLM knows prices

    def notes(self) -> list[str]:
        """What the probe run showed, as lines for ``describe``: an error, the confirmed
        candidates, the modules that reached no model, the system messages no module holds."""
        lines = []
        if self.error:
            lines.append(f"probe run failed: {self.error}")
        if self.confirmed:
            lines.append(f"confirmed by the probe run: {self.confirmed}")
        if self.unreached:
            lines.append(
                f"found in the code but reached no model in the probe run: {self.unreached}"
            )
        for text in self.unclaimed:
            flat = " ".join(text.split())
            lines.append(
                f"a system message no module holds reached a model: {flat[:70]!r}; to optimize "
                'it, wrap the text where the code builds it in gg.prompt("name", <text>)'
            )
        return lines


class LangGraphSystem:
    """Optimize the prompts of a compiled LangGraph graph; see the module docstring.

    ``input_fn``: example -> graph input. ``config``: merged into every run (``configurable``
    values, ``recursion_limit``...). ``context``: the runtime context every run gets (a dict or
    an instance of the graph's ``context_schema``). ``prompts``: ``gg.prompt`` names with default
    text the source scan cannot see. ``exclude``: modules to leave alone.

    ``store``: the store rollouts read (default: the graph's own), a ``BaseStore`` or a
    zero-argument function returning one per rollout (e.g. a seeded test store); each rollout
    writes only into its own layer over it (``isolation``). ``execution``: ``"auto"`` runs
    rollouts with ``ainvoke`` and moves to ``invoke`` on worker threads when a part of the graph
    has no async implementation; ``"sync"`` or ``"async"`` chooses (``execution``). ``tools``:
    tool name -> a function (or tool) that runs in its place in rollouts, for tools with side
    effects (rollouts run the agent's real tools otherwise).
    """

    def __init__(
        self,
        graph: Any,
        *,
        input_fn: Callable[[Any], Any] | None = None,
        config: RunnableConfig | None = None,
        context: Any = None,
        prompts: Mapping[str, str] | None = None,
        exclude: Iterable[str] = (),
        store: Any = None,
        execution: str = "auto",
        tools: Mapping[str, Any] | None = None,
        store_prompts: Iterable[Any] = (),
    ) -> None:
        boundary.install()
        self.graph: Pregel = ensure_compiled(graph)
        self._store = isolation.store_source(store, default=self.graph.store)
        self._execution = execution_mode(execution)
        self._tools = isolation.ToolStandIns(tools) if tools is not None else None
        self._store_prompts = in_store.store_prompts(store_prompts)
        self._declared = {
            **(prompts or {}),
            **in_store.seed_texts(self._store_prompts, self._store),
        }
        self._found = find_slots(self.graph, self._declared)
        self._excluded = set(exclude)
        unknown = sorted(self._excluded - set(self._found))
        if unknown:
            raise UnknownName(
                f"cannot exclude unknown module(s) {unknown}; modules are {sorted(self._found)}"
            )
        self.probe_report: ProbeReport | None = None
        self._select({name for name, slot in self._found.items() if slot.strong})
        self._input_fn = input_fn
        self._config = config
        self._context = _as_dict(context)
        self._context_schema = _internals.context_schema(self.graph)
        self._fields = _internals.input_fields(self.graph)
        self._run_graph = self._graph_for_rollouts()

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled in another process (a Ray worker): the prompt substitution at the model
        boundary is installed there too, as ``__init__`` installs it here."""
        boundary.install()
        self.__dict__.update(state)

    def use_modules(self, names: Iterable[str]) -> None:
        """Make exactly ``names`` (found prompts) the modules: what a probe run in another
        process confirmed, for a system rebuilt from its import path on a Ray worker."""
        names = set(names)
        unknown = sorted(names - set(self._found))
        if unknown:
            raise KeyError(f"unknown module(s) {unknown}; found {sorted(self._found)}")
        self._select(names)

    def _select(self, names: set[str]) -> None:
        self.slots: dict[str, PromptSlot] = {
            name: slot
            for name, slot in self._found.items()
            if name in names and name not in self._excluded
        }

    @property
    def needs_probe(self) -> bool:
        """Whether candidates wait for a probe run to confirm them (a graph with nothing at all
        to confirm fails at once, before any paid call)."""
        return any(not slot.strong for slot in self._found.values())

    # -- the System protocol

    def modules(self) -> dict[str, str]:
        """The seed prompts of the selected modules; NoPromptsFound (one line) when none is left."""
        if not self.slots:
            raise NoPromptsFound(
                no_prompts_message(
                    self.graph,
                    self._found,
                    self.probe_report.unclaimed if self.probe_report else None,
                )
            )
        return {name: slot.text for name, slot in self.slots.items()}

    def node_of(self, module: str) -> str | None:
        """The node a module's prompt is reached from (None when shared or not tied to one)."""
        return self._slot(module).node

    def apply(self, target: Any, prompts: Mapping[str, str]) -> None:
        """Write ``prompts`` into ``target`` where they live (``Result.apply``)."""
        apply(ensure_compiled(target), prompts, self._declared)

    def validate_example(self, example: Any) -> None:
        """Raise InvalidInput (a ValueError) for an example whose graph input lacks what the graph requires."""
        if not isinstance(example, Mapping):
            raise InvalidInput(f"examples must be mappings, got {type(example).__name__}")
        for name, kind in (("context", Mapping), ("config", Mapping), ("resume", list)):
            value = self._run_field(example, name)
            if value is not None and not isinstance(value, kind):
                raise InvalidInput(
                    f"the example's {name!r} must be a {kind.__name__}, got {type(value).__name__}"
                )
        if self._input_fn is not None or self._fields is None:
            return
        fields, required = self._fields
        graph_input = self.graph_input(example)
        if not isinstance(graph_input, Mapping):
            return
        missing = [name for name in required if name not in graph_input]
        if missing:
            hint = f" (or a text field {list(QUESTION_FIELDS)})" if "messages" in missing else ""
            raise InvalidInput(
                f"the example lacks field(s) {missing}{hint} that the graph's input schema "
                "requires; give an 'inputs' field or pass input_fn"
            )
        if fields and not graph_input:
            raise InvalidInput(
                f"the example has none of the graph's input fields {fields} (its fields: "
                f"{sorted(example)}); rename them, give an 'inputs' field, or pass input_fn"
            )

    async def arun(self, candidate: Mapping[str, str], example: Any) -> Rollout:
        """Run the graph on ``example`` with the candidate's prompts substituted where they
        reach a model, tracing each model call by the prompts it carried; a failure is a Rollout."""
        self._check_candidate(candidate)  # a wrong module name fails loudly, not as a score
        specs = {name: slot.spec for name, slot in self.slots.items()}
        try:
            substitution = boundary.Substitution(specs, candidate)
        except ValueError as exc:  # a rewrite that is no longer a valid template
            return Rollout(error=error_text(exc))
        rollout, collector = await self._invoke(substitution, example)
        substitution.audit(collector.calls)  # a call that kept a changed seed stops the run
        return rollout

    # -- the probe run

    async def aprobe(self, example: Any) -> ProbeReport:
        """Run the seed on ``example`` to see which found prompts reach a model.

        Candidates that reached a model as an instruction (in a system message, or opening a
        call's first message) become modules -- text that only fills another prompt's variable
        does not; every other found prompt stays a module, and ``probe_report`` lists what
        reached no model and the system messages no module holds.
        """
        substitution = boundary.Substitution({n: s.spec for n, s in self._found.items()}, {})
        rollout, collector = await self._invoke(substitution, example)
        reached: dict[str, list[str]] = {}
        for record in rollout.trace.records:
            for module in record.modules or () if record.kind == "llm" else ():
                nodes = reached.setdefault(module, [])
                if record.node and record.node not in nodes:
                    nodes.append(record.node)
        system_texts = list(dict.fromkeys(collector.system_texts))
        instructions = list(dict.fromkeys(collector.instruction_texts))
        confirmed = [
            name
            for name, slot in self._found.items()
            if not slot.strong and _instructs(slot, system_texts, instructions)
        ]
        strong = [n for n, s in self._found.items() if s.strong]
        claimed = [s.spec.pattern() for n, s in self._found.items() if n in reached]
        self.probe_report = ProbeReport(
            reached=reached,
            confirmed=confirmed,
            unreached=[n for n in strong if n not in reached and n not in self._excluded],
            unclaimed=[
                t for t in system_texts if t.strip() and not any(p.occurs_in(t) for p in claimed)
            ],
            error=rollout.error,
            cost_usd=rollout.trace.usage().cost_usd,
        )
        self._select({*strong, *confirmed})
        return self.probe_report

    def probe(self, example: Any) -> ProbeReport:
        """``aprobe`` for code that is not async."""
        return asyncio.run(self.aprobe(example))

    def describe(self) -> str:
        """The modules as a table, with what a probe run showed (NoPromptsFound when none)."""
        self.modules()
        title = f"{len(self.slots)} prompt(s) in graph {self.graph.get_name()!r}"
        notes = self.probe_report.notes() if self.probe_report else []
        candidates = [n for n, s in self._found.items() if not s.strong and n not in self.slots]
        if candidates and self.probe_report is None:
            notes.append(f"candidates a probe run may confirm (--probe EXAMPLE): {candidates}")
        return table(self.slots, title, notes)

    # -- running the graph

    async def _invoke(
        self, substitution: boundary.Substitution, example: Any
    ) -> tuple[Rollout, TraceCollector]:
        """One rollout, run as the graph runs: with ``ainvoke``, or ``invoke`` on a worker
        thread for a graph that supports only sync execution (found on its first rollout,
        usually the probe, when ``execution="auto"``)."""
        sync = self._execution == "sync"
        rollout, collector, failure = await self._attempt(substitution, example, sync)
        if self._execution == "auto" and cannot_run_async(failure):
            rerun, rerun_collector, rerun_failure = await self._attempt(
                substitution, example, sync=True
            )
            if not cannot_run_sync(rerun_failure):
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
        graph = self._run_graph
        served = in_store.served(self._store_prompts, substitution.prompts)
        store = isolation.rollout_store(self._store, served)  # a factory's wrong type: raised
        if store is not None or self.graph.cache is not None:
            graph = _internals.copy_graph(graph, store=store, cache=_fresh_cache(self.graph))
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
            rollout = Rollout(
                output=None,
                trace=collector.trace,
                error=error_text(exc),
                retryable=is_transient(exc),
            )
        else:
            rollout = Rollout(output=output, trace=collector.trace)
        finally:
            if graph.checkpointer is not self.graph.checkpointer:
                graph.checkpointer.delete_thread(thread_id)
        return rollout, collector, failure

    def _graph_for_rollouts(self) -> Pregel:
        """The user's graph, or a shallow copy without interrupts and with a private saver."""
        changes: dict[str, Any] = {}
        interrupts = _internals.interrupt_nodes(self.graph)
        if interrupts:
            warnings.warn(
                f"the graph interrupts at {interrupts}; rollouts run through to the end "
                "(interrupts off; an example's 'resume' list answers interrupt() calls)",
                stacklevel=3,
            )
            changes.update(interrupt_before_nodes=[], interrupt_after_nodes=[])
        if isinstance(self.graph.checkpointer, BaseCheckpointSaver) or interrupts:
            changes["checkpointer"] = InMemorySaver()
        if self._store is not None or self.graph.cache is not None:
            changes.update(store=None, cache=None)  # each rollout gets its own (``_attempt``)
        return _internals.copy_graph(self.graph, **changes) if changes else self.graph

    def graph_input(self, example: Any) -> Any:
        """The graph input for ``example`` (the convention is in the module docstring)."""
        if self._input_fn is not None:
            return self._input_fn(example)
        if "inputs" in example:
            inputs = example["inputs"]
            return dict(inputs) if isinstance(inputs, Mapping) else inputs
        if self._fields is None:
            return {
                k: v for k, v in example.items() if k not in LABEL_FIELDS and k not in RUN_FIELDS
            }
        fields = self._fields[0]
        graph_input = {k: example[k] for k in fields if k in example and k not in LABEL_FIELDS}
        if "messages" in fields and "messages" not in graph_input:
            text = next(
                (example[k] for k in QUESTION_FIELDS if isinstance(example.get(k), str)), None
            )
            if text is not None:
                graph_input["messages"] = [HumanMessage(content=text)]
        return graph_input

    def _run_field(self, example: Any, name: str) -> Any:
        """An example's run field, unless the graph's input schema has a field of that name."""
        if self._fields is not None and name in self._fields[0]:
            return None
        return example.get(name) if isinstance(example, Mapping) else None

    def _run_config(
        self,
        collector: TraceCollector,
        thread_id: str,
        substitution: boundary.Substitution,
        example: Any,
    ) -> RunnableConfig:
        configurable: dict[str, Any] = {boundary.CONFIG_KEY: substitution}
        for name in self.slots:
            kind, _, field = name.partition(".")
            if kind in ("context", "configurable") and self.slots[name].kind == kind:
                configurable[field] = substitution.prompts[name]
        if self._run_graph.checkpointer is not None:
            configurable["thread_id"] = thread_id
        run: RunnableConfig = {"callbacks": [collector], "configurable": configurable}
        config = merge_configs(self._config, self._run_field(example, "config"), run)
        config.setdefault("recursion_limit", DEFAULT_RECURSION_LIMIT)
        return config

    def _run_context(self, substitution: boundary.Substitution, example: Any) -> Any:
        values = {**self._context, **(self._run_field(example, "context") or {})}
        if self._context_schema is None:
            return values or None
        for name, slot in self.slots.items():
            if getattr(slot.leaf, "owner", None) is self._context_schema:
                values[slot.leaf.name] = substitution.prompts[name]
        return values

    def _check_candidate(self, candidate: Mapping[str, str]) -> None:
        unknown = sorted(set(candidate) - set(self._found))
        if unknown:
            raise UnknownName(
                f"candidate has unknown module(s) {unknown}; modules are {sorted(self.slots)}"
            )

    def _slot(self, module: str) -> PromptSlot:
        try:
            return self.slots[module]
        except KeyError:
            raise UnknownName(
                f"unknown module {module!r}; modules are {sorted(self.slots)}"
            ) from None


def _fresh_cache(graph: Pregel) -> BaseCache | None:
    """A rollout's own node cache: a hit in a shared one would skip the node, and the
    candidate prompt with it, and would write rollouts' results into the user's cache."""
    return InMemoryCache() if graph.cache is not None else None


def _as_dict(context: Any) -> dict[str, Any]:
    if context is None:
        return {}
    if isinstance(context, Mapping):
        return dict(context)
    if dataclasses.is_dataclass(context):
        return {f.name: getattr(context, f.name) for f in dataclasses.fields(context)}
    if hasattr(context, "model_dump"):
        return {name: getattr(context, name) for name in type(context).model_fields}
    raise WrongType(
        f"context must be a mapping, a dataclass or a pydantic model, got {type(context).__name__}"
    )


def _instructs(slot: PromptSlot, system_texts: list[str], instructions: list[str]) -> bool:
    pattern = slot.spec.pattern()
    if any(pattern.occurs_in(text) for text in system_texts):
        return True
    return any(
        pattern.regex.match(text.lstrip()) for text in instructions if pattern.occurs_in(text)
    )


def _interrupted(output: Any) -> bool:
    return bool(_internals.pending_interrupts(output))


def _interrupt_text(output: Any) -> str:
    return "; ".join(str(v)[:80] for v in _internals.pending_interrupts(output))


# ----------------------------------------------------------------------------- production


def describe(graph: Pregel, declared: Mapping[str, str] | None = None, probe: Any = None) -> str:
    """A table of ``graph``'s prompts; with ``probe`` (an example), after a probe run of the seed."""
    system = LangGraphSystem(graph, prompts=declared)
    if probe is not None:
        system.probe(probe)
    return system.describe()


def _check_names(slots: Mapping[str, PromptSlot], prompts: Mapping[str, str]) -> None:
    unknown = sorted(set(prompts) - set(slots))
    if unknown:
        raise UnknownName(f"unknown prompt module(s) {unknown}; the graph has {sorted(slots)}")
    for name, text in prompts.items():
        if not isinstance(text, str):
            raise WrongType(f"prompt {name!r} must be a str, got {type(text).__name__}")


def _with_substitution(
    graph: Pregel, slots: Mapping[str, PromptSlot], prompts: Mapping[str, str]
) -> dict[str, Any]:
    """``graph.config`` with a Substitution for ``prompts`` added to the one it may carry."""
    config = dict(graph.config or {})
    configurable = dict(config.get("configurable") or {})
    previous = configurable.get(boundary.CONFIG_KEY)
    texts = dict(previous.prompts) if isinstance(previous, boundary.Substitution) else {}
    texts.update(prompts)
    specs = {name: slots[name].spec for name in texts if name in slots}
    configurable[boundary.CONFIG_KEY] = boundary.Substitution(specs, texts)
    config["configurable"] = configurable
    return config


def with_prompts(
    graph: Pregel, prompts: Mapping[str, str], declared: Mapping[str, str] | None = None
) -> Pregel:
    """A copy of ``graph`` that runs ``prompts`` (module -> text); the original is left alone.

    Works for every kind of prompt, exactly as rollouts substitute them: the copy's config
    carries the texts, which reach every model call the copy's runs make.
    """
    boundary.install()
    graph = ensure_compiled(graph)
    slots = find_slots(graph, declared)
    _check_names(slots, prompts)
    return _internals.copy_graph(graph, config=_with_substitution(graph, slots, prompts))


def apply(
    graph: Pregel,
    prompts: Mapping[str, str],
    declared: Mapping[str, str] | None = None,
    store: Any = None,
) -> dict[str, str]:
    """Write ``prompts`` into ``graph`` and the objects it uses, in place; module -> where.

    Templates and messages change where they are, closure variables, module constants and
    attributes and object attributes are reassigned, configuration and context classes get new
    field defaults. Prompts with no such place (string literals in a function, ``gg.prompt``
    calls) go into ``graph.config``, which LangGraph merges into every run of this graph object.
    Store prompts (``store_prompts``) are written into ``store`` when one is given (only the
    items whose text changes), else carried in ``graph.config`` like the others.
    """
    boundary.install()
    written: dict[str, str] = {}
    if store is not None:
        written.update(in_store.write(store, prompts))
        prompts = {n: t for n, t in prompts.items() if in_store.StorePrompt.parse(n) is None}
    slots = find_slots(graph, declared)
    _check_names(slots, prompts)
    carried: dict[str, str] = {}
    for name, text in prompts.items():
        slot = slots[name]
        if text == slot.text:
            continue
        try:
            slot.leaf.write(text)
            written[name] = slot.where
        except CannotWriteInPlace:
            carried[name] = text
            written[name] = "graph.config (no place in the code to write it)"
    if carried:
        graph.config = _with_substitution(graph, slots, carried)
    return written
