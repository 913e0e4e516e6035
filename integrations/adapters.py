"""The adapter of each integrated framework (``gepa_graph.adapters.Adapter``), which the
composition root registers so the core can take a framework's objects: a compiled LangGraph
graph today. Importing this module imports no framework; each method loads its integration."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gepa_graph.adapters import Adapter
from gepa_graph.system import BaseSystem


class LangGraphAdapter:
    """LangGraph graphs (compiled, a StateGraph, an entrypoint, any LangChain Runnable)."""

    kind = "a compiled LangGraph graph"

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is a graph the LangGraph integration runs."""
        from gepa_graph.integrations.langgraph import is_langgraph

        return is_langgraph(value)

    def system(self, value: Any) -> BaseSystem:
        """``LangGraphSystem(value)``, its options at their defaults."""
        from gepa_graph.integrations.langgraph import LangGraphSystem

        return LangGraphSystem(value)

    def apply(
        self, target: Any, prompts: Mapping[str, str], seeds: Mapping[str, str], store: Any
    ) -> dict[str, str]:
        """Write ``prompts`` into the graph where they live; a module its code scan cannot see
        (a ``prompts=`` default given to LangGraphSystem) is declared with its seed text;
        prompts that live in a store item go into ``store`` when one is given."""
        from gepa_graph.integrations.langgraph import apply
        from gepa_graph.integrations.langgraph.discover import ensure_compiled, find_slots

        graph = ensure_compiled(target)
        found = find_slots(graph)
        declared = {
            name: seeds.get(name, text) for name, text in prompts.items() if name not in found
        }
        return apply(graph, prompts, declared, store=store)

    def export(
        self,
        target: Any | None,
        directory: str | Path,
        prompts: Mapping[str, str],
        seeds: Mapping[str, str],
    ) -> dict[str, str]:
        """Copies of the prompt files of ``target``, or with None of the graphs probed in this
        process whose prompt of that name has the seed text."""
        from gepa_graph.integrations.langgraph import export
        from gepa_graph.integrations.langgraph.discover import find_slots
        from gepa_graph.integrations.langgraph.probe import probed_slots

        if target is None:
            slots = {n: s for n, s in probed_slots().items() if seeds.get(n) == s.text}
            return export(slots, prompts, directory)
        return export({**find_slots(target), **probed_slots(target)}, prompts, directory)

    def with_prompts(self, target: Any, prompts: Mapping[str, str]) -> Any:
        """``with_prompts(graph, prompts)``: a copy of the graph running them."""
        from gepa_graph.integrations.langgraph import with_prompts

        return with_prompts(target, prompts)


ADAPTERS: tuple[Adapter, ...] = (LangGraphAdapter(),)
"""Every integrated framework's adapter, in the order they are asked."""
