"""LangGraph integration: optimize the prompts of a compiled graph without changing its code.

``discover(graph)`` finds the prompts, ``describe(graph)`` explains what it found,
``LangGraphSystem(graph)`` runs the graph with candidate prompts and per-node traces,
``with_prompts(graph, prompts)`` returns an optimized copy, and ``prompt(name, default)``
(``gg.prompt``) marks a prompt discovery cannot see.
"""

from typing import Any

from gepa_graph.integrations.langgraph.declared import prompt
from gepa_graph.integrations.langgraph.discover import (
    NoPromptsFound,
    PromptSlot,
    describe,
    discover,
)
from gepa_graph.integrations.langgraph.substitute import with_prompts
from gepa_graph.integrations.langgraph.system import LangGraphSystem
from gepa_graph.integrations.langgraph.tracing import TraceCollector
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel


def is_langgraph(obj: Any) -> bool:
    """Whether ``obj`` is a LangGraph graph (compiled, or a StateGraph still to compile)."""
    return isinstance(obj, (Pregel, StateGraph))


__all__ = [
    "LangGraphSystem",
    "NoPromptsFound",
    "PromptSlot",
    "TraceCollector",
    "describe",
    "discover",
    "is_langgraph",
    "prompt",
    "with_prompts",
]
