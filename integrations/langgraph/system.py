"""LangGraphSystem: a compiled LangGraph graph (or any LangChain Runnable) as a ``gepa_graph.System``.

Modules are what reaches a model: ``probe`` runs the seed on a few examples and keeps every
instruction its calls carried (``probe``, ``observe``), named and homed where the code keeps it
(``discover``); before a probe, the prompts found in the code stand in. A rollout runs the
user's own graph with the candidate substituted where it reaches a model (``rollouts``); a
``TraceCollector`` records one record per node step, model call and tool call, each model call
attributed to the modules whose prompt it carried, which is what a module's reflection reads.
How an example becomes the graph's input is ``graph_input``'s; prompts used outside
optimization (``with_prompts``, ``apply``, ``export``) are ``production``'s.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.pregel import Pregel

from gepa_graph.errors import InvalidInput, UnknownName
from gepa_graph.integrations.langgraph import boundary, isolation
from gepa_graph.integrations.langgraph import graph_input as inputs
from gepa_graph.integrations.langgraph import store_prompts as in_store
from gepa_graph.integrations.langgraph._internals import graphs, schemas
from gepa_graph.integrations.langgraph.discover import (
    NoPromptsFound,
    PromptSlot,
    ensure_compiled,
    no_prompts_message,
    scan,
    table,
)
from gepa_graph.integrations.langgraph.execution import execution_mode
from gepa_graph.integrations.langgraph.probe import ProbeReport, conclude, remember
from gepa_graph.integrations.langgraph.production import apply, export
from gepa_graph.integrations.langgraph.rollouts import Rollouts, check_context
from gepa_graph.integrations.langgraph.tracing import error_text
from gepa_graph.system import BaseSystem, Rollout


class LangGraphSystem(Rollouts, BaseSystem):
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
        check_context(context)
        self._context = context
        self._context_schema = schemas.context_schema(self.graph)
        self._fields = schemas.input_fields(self.graph)
        self._run_graph = self._graph_for_rollouts()

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
        inputs.check_example(example, self._fields, self._input_fn, self.graph_input)

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
        outcome = conclude(
            found, examples, outcomes, self.graph_input, self._packages, self._excluded
        )
        self._excluded, self._found = outcome.excluded, outcome.found
        self.probe_report = outcome.report
        if self.probe_report.unreached:
            warnings.warn(
                f"prompt(s) {self.probe_report.unreached} found in the code reached no model in "
                f"{len(examples)} probe run(s) of the seed; they are left out of the optimization",
                stacklevel=2,
            )
        self._select({n for n in self._found if self._wanted(n)})
        remember(self.graph, self._found)
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

    def graph_input(self, example: Any) -> Any:
        """The graph input for ``example`` (the convention is ``graph_input``'s docstring)."""
        return inputs.graph_input(example, self._input_fn, self._fields)

    def _run_field(self, example: Any, name: str) -> Any:
        return inputs.run_field(example, name, self._fields)

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


def describe(graph: Any, declared: Mapping[str, str] | None = None, probe: Any = None) -> str:
    """A table of ``graph``'s prompts; with ``probe`` (an example or a list), after probe runs
    of the seed."""
    system = LangGraphSystem(graph, prompts=declared)
    if probe is not None:
        system.probe(probe)
    return system.describe()
