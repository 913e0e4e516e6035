"""LangGraphSystem: a compiled LangGraph graph (or any LangChain Runnable) as a ``gepa_graph.System``.

Modules are what reaches a model: ``probe`` runs the seed on a few examples and keeps every
instruction its calls carried (``observe``), named and homed where the code keeps it
(``discover``); before a probe, the prompts found in the code stand in. A rollout runs
the user's own graph with ``ainvoke``: the candidate travels in the run's config as a
``boundary.Substitution`` (rewritten where it reaches a model, whichever node, tool or edge makes
the call); the user's own ``context``/``config`` travel as given, a prompt field overlaid only
where the model boundary cannot rewrite it -- LangGraph's own ways, nothing copied or built. A ``TraceCollector`` records one record
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
import copy
import dataclasses
import pathlib
import re
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.cache.base import BaseCache
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.pregel import Pregel
from langgraph.types import Command

from gepa_graph.errors import InvalidInput, UnknownName, WrongType
from gepa_graph.integrations.langgraph import boundary, derive, isolation, observe
from gepa_graph.integrations.langgraph import store_prompts as in_store
from gepa_graph.integrations.langgraph._internals import graphs, schemas
from gepa_graph.integrations.langgraph.discover import (
    NoPromptsFound,
    PromptSlot,
    ensure_compiled,
    find_slots,
    no_prompts_message,
    scan,
    table,
)
from gepa_graph.integrations.langgraph.execution import (
    cannot_run_async,
    cannot_run_sync,
    execution_mode,
    neither_message,
    switched_message,
)
from gepa_graph.integrations.langgraph.leaves import CannotWriteInPlace, FileLeaf
from gepa_graph.integrations.langgraph.library_texts import LibraryTexts
from gepa_graph.integrations.langgraph.tracing import TraceCollector, error_text
from gepa_graph.lm import is_transient
from gepa_graph.system import PromptNeverUsed, Rollout
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
    """What the probe runs of the seed showed: which prompts reached a model, and from where."""

    reached: dict[str, list[str]]  # module -> nodes whose model calls carried it
    confirmed: list[str]  # candidates (prose under another name) that became modules
    unreached: list[str]  # prompts found in the code that reached no model: dropped
    unclaimed: list[str]  # instruction text that reached a model but fits no template
    error: str | None = None  # the first failed probe run's error
    cost_usd: float | None = None  # of the probe runs' model calls, where LiteLLM knows prices
    observed: list[str] = dataclasses.field(default_factory=list)  # modules with no home
    library: list[str] = dataclasses.field(default_factory=list)  # library prompts found
    rollouts: int = 1  # probe runs made
    failed: int = 0  # of which failed

    def notes(self) -> list[str]:
        """What the probe runs showed, as lines for ``describe`` and the log."""
        lines = []
        if self.error:
            lines.append(f"{self.failed} of {self.rollouts} probe run(s) failed: {self.error}")
        if self.confirmed:
            lines.append(f"confirmed by the probe run: {self.confirmed}")
        if self.observed:
            lines.append(
                f"found only in what reached a model (no home in the code; apply carries them "
                f"in graph.config): {self.observed}"
            )
        if self.library:
            lines.append(
                f"library prompts (optimized only with LangGraphSystem(graph, "
                f"library_prompts=True) or by name): {self.library}"
            )
        if self.unreached:
            lines.append(
                f"dropped: found in the code but reached no model in {self.rollouts} probe "
                f"run(s): {self.unreached}"
            )
        for text in self.unclaimed:
            flat = " ".join(text.split())
            lines.append(
                f"an instruction reached a model but fits no template: {flat[:70]!r}; to "
                'optimize it, wrap the text where the code builds it in gg.prompt("name", <text>)'
            )
        return lines


class LangGraphSystem:
    """Optimize the prompts of a compiled LangGraph graph; see the module docstring.

    ``input_fn``: example -> graph input. ``config``: merged into every run (``configurable``
    values, ``recursion_limit``...). ``context``: the runtime context every run gets (a dict or
    an instance of the graph's ``context_schema``). ``prompts``: ``gg.prompt`` names with default
    text the source scan cannot see. ``exclude``: modules to leave alone.
    ``library_prompts``: True to optimize the prompts library code wrote too (a middleware's,
    a tool's), or the names of those to optimize; by default they are listed, not optimized.

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
        library_prompts: bool | Iterable[str] = False,
        store: Any = None,
        execution: str = "auto",
        tools: Mapping[str, Any] | None = None,
        store_prompts: Iterable[Any] = (),
    ) -> None:
        boundary.install()
        self.graph: Runnable = ensure_compiled(graph)
        self._store = isolation.store_source(store, default=getattr(self.graph, "store", None))
        self._execution = execution_mode(execution)
        self._tools = isolation.ToolStandIns(tools) if tools is not None else None
        self._store_prompts = in_store.store_prompts(store_prompts)
        self._declared = {
            **(prompts or {}),
            **in_store.seed_texts(self._store_prompts, self._store),
        }
        self._found, self._packages = scan(self.graph, self._declared)
        self._library_prompts = (
            library_prompts if isinstance(library_prompts, bool) else set(library_prompts)
        )
        self._excluded = set(exclude)
        unknown = self._impossible(self._excluded)  # a probe may still name the others
        if unknown:
            raise UnknownName(
                f"cannot exclude unknown module(s) {unknown}; modules are {sorted(self._found)}"
            )
        self.probe_report: ProbeReport | None = None
        self._select({name for name, slot in self._found.items() if slot.strong})
        self._input_fn = input_fn
        self._config = config
        _check_context(context)
        self._context = context
        self._context_schema = schemas.context_schema(self.graph)
        self._fields = schemas.input_fields(self.graph)
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
            raise KeyError(
                f"unknown module(s) {unknown} (found {sorted(self._found)}): the probe run that "
                "named them saw instructions this process's code does not hold; pass the system "
                "object itself, not its import path"
            )
        self._select(names)

    def _select(self, names: set[str]) -> None:
        self.slots: dict[str, PromptSlot] = {
            name: slot
            for name, slot in self._found.items()
            if name in names and name not in self._excluded
        }

    @property
    def needs_probe(self) -> bool:
        """Whether the modules still wait for the probe runs: what reaches a model decides
        them (``aprobe``), even where the code holds no text at all: prompts loaded from data
        files, a database or the environment reach a model all the same."""
        return self.probe_report is None

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
        apply(ensure_compiled(target), prompts, self._declared, self._observed(target))

    def export(self, directory: Any, prompts: Mapping[str, str]) -> dict[str, str]:
        """Write each file-based prompt of ``prompts`` to a copy of its file under
        ``directory`` (``Result.export``); module -> the path written."""
        return export(self.slots, prompts, directory)

    def _observed(self, target: Any) -> dict[str, PromptSlot]:
        """The probe's modules that hold for ``target``: all of them for the graph it ran, the
        ones without a home (carried in the config) for another copy of the agent."""
        if target is self.graph:
            return dict(self._found)
        return {n: s for n, s in self._found.items() if s.kind == "observed"}

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

    async def aprobe(self, examples: Any) -> ProbeReport:
        """Run the seed on ``examples`` (one example or a list; ``optimize`` gives the first
        three training examples) and make the modules what reached a model (``observe``).

        Found prompts that reached a model stay modules (their home is where the code keeps
        them), instructions with no home in the code become modules carried in the config, a
        found prompt that reached no model is dropped with a notice, and library prompts are
        listed but optimized only on request. A declared prompt (``gg.prompt``, ``prompts=``)
        that reached no model is an error (PromptNeverUsed), and when every run fails their
        first error is raised as it is.
        """
        examples = list(examples) if isinstance(examples, (list, tuple)) else [examples]
        if not examples:
            raise InvalidInput("the probe needs at least one example")
        found = {n: s for n, s in self._found.items() if s.kind != "observed"}
        substitution = boundary.Substitution({n: s.spec for n, s in found.items()}, {})
        outcomes = await asyncio.gather(*(self._invoke(substitution, e) for e in examples))
        runs, failures, cost = [], [], 0.0
        for example, (rollout, collector) in zip(examples, outcomes, strict=True):
            if rollout.error is not None:
                failures.append((rollout.error, getattr(collector, "failure", None)))
            data = observe.input_strings(self.graph_input(example))
            earlier = observe.earlier_outputs(rollout.trace.records, len(collector.calls))
            runs.append((collector.calls, data, earlier))
            cost += rollout.trace.usage().cost_usd or 0.0
        if len(failures) == len(examples):
            error, exception = failures[0]
            if exception is not None:
                raise exception
            raise RuntimeError(error)
        library = LibraryTexts(self._packages)
        derived = derive.derive(found, observe.observe(runs), library)
        declared = [n for n, s in found.items() if s.kind == "declared"]
        never = [n for n in declared if n not in derived.renamed and n not in self._excluded]
        if never:
            raise PromptNeverUsed(
                f"declared prompt(s) {never} reached no model in {len(examples)} probe run(s) of "
                "the seed; check the name and default text (they must match what the code "
                "sends), or drop the declaration"
            )
        self._excluded |= {derived.renamed[n] for n in self._excluded if n in derived.renamed}
        self._found = {}
        for name, slot in {**derived.kept, **derived.observed}.items():
            if not slot.library and slot.kind != "declared" and library.owns(slot.text):
                slot = dataclasses.replace(slot, library=True)
            self._found[name] = slot
        self.probe_report = ProbeReport(
            reached={
                **derived.reached,
                **{n: list(s.nodes) for n, s in derived.observed.items()},
            },
            confirmed=[derived.renamed[n] for n in derived.renamed if not found[n].strong],
            unreached=[
                n
                for n, slot in found.items()
                if slot.strong and n not in derived.renamed and n not in self._excluded
            ],
            unclaimed=derived.untemplated,
            error=failures[0][0] if failures else None,
            cost_usd=cost,
            observed=[n for n, s in self._found.items() if s.kind == "observed" and not s.library],
            library=[n for n, s in self._found.items() if s.library],
            rollouts=len(examples),
            failed=len(failures),
        )
        if self.probe_report.unreached:
            warnings.warn(
                f"prompt(s) {self.probe_report.unreached} found in the code reached no model in "
                f"{len(examples)} probe run(s) of the seed; they are left out of the optimization",
                stacklevel=2,
            )
        self._select({n for n in self._found if self._wanted(n)})
        _remember(self.graph, self._found)
        return self.probe_report

    def check_names(self, names: Iterable[str]) -> None:
        """Raise InvalidInput (before any probe run) for a module name no probe could give:
        one that is no found prompt and does not start with a node of the graph."""
        unknown = self._impossible(names)
        if unknown:
            raise InvalidInput(
                f"unknown module {unknown[0]!r}: no prompt of the graph has that name, nor could "
                f"a probe run give it (prompts are named after nodes); found: {sorted(self._found)}"
            )

    def _impossible(self, names: Iterable[str]) -> list[str]:
        nodes = {*self._found, *(n for slot in self._found.values() for n in slot.nodes)}
        if isinstance(self.graph, Pregel):
            nodes.update(graphs.node_runnables(self.graph))
        return sorted(
            name
            for name in names
            if name not in self._found and re.split(r"[./]", name)[0] not in nodes
        )

    def _wanted(self, name: str) -> bool:
        if not self._found[name].library:
            return True
        chosen = self._library_prompts
        return chosen is True or (isinstance(chosen, set) and name in chosen)

    def probe(self, examples: Any) -> ProbeReport:
        """``aprobe`` for code that is not async."""
        return asyncio.run(self.aprobe(examples))

    def describe(self) -> str:
        """The modules as a table (library prompts not optimized listed too), with what the
        probe runs showed (NoPromptsFound when there is no module)."""
        self.modules()
        title = f"{len(self.slots)} prompt(s) in graph {self.graph.get_name()!r}"
        shown = dict(self.slots)
        notes = self.probe_report.notes() if self.probe_report else []
        if self.probe_report is None:
            candidates = [n for n, s in self._found.items() if not s.strong]
            if candidates:
                notes.append(f"candidates a probe run may confirm (--probe EXAMPLES): {candidates}")
            notes.append(
                "found by reading the code; a probe run (--probe EXAMPLES) shows what reaches "
                "a model, which is what optimize keeps"
            )
        else:
            listed = [n for n in self.probe_report.library if n not in self.slots]
            shown.update({n: self._found[n] for n in listed})
            if listed:
                title += f", and {len(listed)} library prompt(s) listed but not optimized"
        reached = self.probe_report.reached if self.probe_report else None
        return table(shown, title, notes, reached)

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
        if isinstance(graph, Pregel) and (store is not None or self.graph.cache is not None):
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
            rollout = Rollout(output=output, trace=collector.trace)
        finally:
            if getattr(graph, "checkpointer", None) is not getattr(
                self.graph, "checkpointer", None
            ):
                graph.checkpointer.delete_thread(thread_id)
        return rollout, collector, failure

    def _graph_for_rollouts(self) -> Pregel:
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
            slot.leaf.name: substitution.prompts[name]
            for name, slot in self.slots.items()
            if self._context_schema is not None
            and getattr(slot.leaf, "owner", None) is self._context_schema
            and _overlaid(slot, _field(context, slot.leaf.name, slot.text))
        }
        return _overlay(context, fields)

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


def _check_context(context: Any) -> None:
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


# ----------------------------------------------------------------------------- production


def describe(graph: Any, declared: Mapping[str, str] | None = None, probe: Any = None) -> str:
    """A table of ``graph``'s prompts; with ``probe`` (an example or a list), after probe runs
    of the seed."""
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
    config: Mapping[str, Any] | None, slots: Mapping[str, PromptSlot], prompts: Mapping[str, str]
) -> dict[str, Any]:
    """``config`` with a Substitution for ``prompts`` added to the one it may carry."""
    config = dict(config or {})
    configurable = dict(config.get("configurable") or {})
    previous = configurable.get(boundary.CONFIG_KEY)
    texts = dict(previous.prompts) if isinstance(previous, boundary.Substitution) else {}
    texts.update(prompts)
    specs = {name: slots[name].spec for name in texts if name in slots}
    configurable[boundary.CONFIG_KEY] = boundary.Substitution(specs, texts)
    config["configurable"] = configurable
    return config


_PROBED: weakref.WeakKeyDictionary[Any, dict[str, PromptSlot]] = weakref.WeakKeyDictionary()
"""The modules a probe run made of each graph object in this process (names, homes and the
instructions with no home in the code), for ``with_prompts``, ``apply`` and ``export`` on it."""


def _remember(graph: Runnable, slots: Mapping[str, PromptSlot]) -> None:
    try:
        _PROBED[graph] = dict(slots)
    except TypeError:  # an object that cannot be weakly referenced: nothing to remember
        pass


def probed_slots(graph: Any = None) -> dict[str, PromptSlot]:
    """What a probe run in this process made of ``graph`` (of every probed graph when None)."""
    if graph is not None:
        try:
            return dict(_PROBED.get(graph) or {})
        except TypeError:
            return {}
    return {name: slot for slots in list(_PROBED.values()) for name, slot in slots.items()}


def _slots_of(
    graph: Runnable,
    declared: Mapping[str, str] | None,
    observed: Mapping[str, PromptSlot] | None,
) -> dict[str, PromptSlot]:
    """The prompts of ``graph`` its code holds, and what a probe run of it (this process's,
    or ``observed``) made of them: the names it gave, and instructions found nowhere in it."""
    slots = find_slots(graph, declared)
    return {**slots, **probed_slots(graph), **(observed or {})}


def with_prompts(
    graph: Runnable,
    prompts: Mapping[str, str],
    declared: Mapping[str, str] | None = None,
    observed: Mapping[str, PromptSlot] | None = None,
) -> Runnable:
    """A copy of ``graph`` that runs ``prompts`` (module -> text); the original is left alone.

    Works for every kind of prompt, exactly as rollouts substitute them: the copy's config
    carries the texts, which reach every model call the copy's runs make. ``observed``: the
    modules a probe run found with no home in the code (``LangGraphSystem``'s).
    """
    boundary.install()
    graph = ensure_compiled(graph)
    slots = _slots_of(graph, declared, observed)
    _check_names(slots, prompts)
    if isinstance(graph, Pregel):
        return graphs.copy_graph(graph, config=_with_substitution(graph.config, slots, prompts))
    return graph.with_config(_with_substitution(None, slots, prompts))


def apply(
    graph: Runnable,
    prompts: Mapping[str, str],
    declared: Mapping[str, str] | None = None,
    observed: Mapping[str, PromptSlot] | None = None,
    store: Any = None,
) -> dict[str, str]:
    """Write ``prompts`` into ``graph`` and the objects it uses, in place; module -> where.

    Templates and messages change where they are, closure variables, module constants and
    attributes and object attributes are reassigned, configuration and context classes get new
    field defaults. Prompts with no such place (string literals in a function, ``gg.prompt``
    calls, files, instructions a probe run found nowhere in the code) go into
    ``graph.config``, which LangGraph merges into every run of this graph object; a wrapper
    that is not a compiled graph has no such config (use ``with_prompts``). Store prompts
    (``store_prompts``) are written into ``store`` when one is given (only the items whose
    text changes), else carried in ``graph.config`` like the others.
    """
    boundary.install()
    graph = ensure_compiled(graph)
    written: dict[str, str] = {}
    if store is not None:
        written.update(in_store.write(store, prompts))
        prompts = {n: t for n, t in prompts.items() if in_store.StorePrompt.parse(n) is None}
    slots = _slots_of(graph, declared, observed)
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
        if not isinstance(graph, Pregel):
            raise WrongType(
                f"prompt(s) {sorted(carried)} have no place in the code of this "
                f"{type(graph).__name__} to write them; run with_prompts(graph, prompts) instead"
            )
        graph.config = _with_substitution(graph.config, slots, carried)
    return written


def export(
    slots: Mapping[str, PromptSlot], prompts: Mapping[str, str], directory: Any
) -> dict[str, str]:
    """Write the text of each file-based prompt in ``prompts`` to a file of the same name
    under ``directory`` (created); module -> the path written. The user's files stay as they
    are: copy the ones you want over them."""
    target = pathlib.Path(directory)
    written: dict[str, str] = {}
    for name, text in prompts.items():
        slot = slots.get(name)
        if slot is None or not isinstance(slot.leaf, FileLeaf):
            continue
        target.mkdir(parents=True, exist_ok=True)
        path = target / slot.leaf.path.name
        path.write_text(text, encoding="utf-8")
        written[name] = str(path)
    return written
