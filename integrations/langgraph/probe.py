"""What the probe runs of the seed make of the modules, and what a probe in this process saw.

``LangGraphSystem.aprobe`` runs the seed on a few examples; ``conclude`` turns those runs into
the modules (``observe`` reads their model calls, ``derive`` matches them against the prompts
found in the code) and a ``ProbeReport``. Kept apart from the system because it is the one place
that decides which prompts are optimized; the system only runs the graph and keeps the result.
``probed_slots`` remembers, per graph object, what a probe made of it, for ``with_prompts``,
``apply`` and ``export`` on that graph (``production``).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.runnables import Runnable

from gepa_graph.errors import PromptNeverUsed
from gepa_graph.integrations.langgraph import derive, observe
from gepa_graph.integrations.langgraph.discover import PromptSlot
from gepa_graph.integrations.langgraph.library_texts import LibraryTexts
from gepa_graph.integrations.langgraph.tracing import TraceCollector
from gepa_graph.system import Rollout


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


@dataclasses.dataclass
class ProbeOutcome:
    """The modules a probe made (every prompt that reached a model, named and homed), the
    modules to leave out under their new names, and the report."""

    found: dict[str, PromptSlot]
    excluded: set[str]
    report: ProbeReport


def conclude(
    found: Mapping[str, PromptSlot],
    examples: Sequence[Any],
    outcomes: Sequence[tuple[Rollout, TraceCollector]],
    graph_input: Callable[[Any], Any],
    packages: set[str],
    excluded: set[str],
) -> ProbeOutcome:
    """What the probe runs (``outcomes``, one per example) make of the ``found`` prompts.

    Raises the first failed run's error as it is when every run failed, and PromptNeverUsed for
    a declared prompt that reached no model (see ``LangGraphSystem.aprobe``).
    """
    runs, failures, cost = [], [], 0.0
    for example, (rollout, collector) in zip(examples, outcomes, strict=True):
        if rollout.error is not None:
            failures.append((rollout.error, collector.failure))
        data = observe.input_strings(graph_input(example))
        earlier = observe.earlier_outputs(rollout.trace.records, len(collector.calls))
        runs.append((collector.calls, data, earlier))
        cost += rollout.trace.usage().cost_usd or 0.0
    if len(failures) == len(examples):
        error, exception = failures[0]
        if exception is not None:
            raise exception
        raise RuntimeError(error)
    library = LibraryTexts(packages)
    derived = derive.derive(found, observe.observe(runs), library)
    declared = [n for n, s in found.items() if s.kind == "declared"]
    never = [n for n in declared if n not in derived.renamed and n not in excluded]
    if never:
        raise PromptNeverUsed(
            f"declared prompt(s) {never} reached no model in {len(examples)} probe run(s) of "
            "the seed; check the name and default text (they must match what the code "
            "sends), or drop the declaration"
        )
    excluded = excluded | {derived.renamed[n] for n in excluded if n in derived.renamed}
    modules: dict[str, PromptSlot] = {}
    for name, slot in {**derived.kept, **derived.observed}.items():
        if not slot.library and slot.kind != "declared" and library.owns(slot.text):
            slot = dataclasses.replace(slot, library=True)
        modules[name] = slot
    report = ProbeReport(
        reached={
            **derived.reached,
            **{n: list(s.nodes) for n, s in derived.observed.items()},
        },
        confirmed=[derived.renamed[n] for n in derived.renamed if not found[n].strong],
        unreached=[
            n
            for n, slot in found.items()
            if slot.strong and n not in derived.renamed and n not in excluded
        ],
        unclaimed=derived.untemplated,
        error=failures[0][0] if failures else None,
        cost_usd=cost,
        observed=[n for n, s in modules.items() if s.kind == "observed" and not s.library],
        library=[n for n, s in modules.items() if s.library],
        rollouts=len(examples),
        failed=len(failures),
    )
    return ProbeOutcome(modules, excluded, report)


_PROBED: weakref.WeakKeyDictionary[Any, dict[str, PromptSlot]] = weakref.WeakKeyDictionary()
"""The modules a probe run made of each graph object in this process (names, homes and the
instructions with no home in the code), for ``with_prompts``, ``apply`` and ``export`` on it."""


def remember(graph: Runnable, slots: Mapping[str, PromptSlot]) -> None:
    """Keep what a probe made of ``graph`` for as long as the graph object lives."""
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
