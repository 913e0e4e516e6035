"""LangGraph integration: optimize the prompts of a compiled graph without changing its code.

``discover(graph)`` finds the prompts, ``describe(graph)`` explains what it found,
``LangGraphSystem(graph)`` runs the graph with candidate prompts (substituted where they reach a
model, ``boundary``) and traces attributed by prompt, ``with_prompts(graph, prompts)`` returns a
copy running other prompts, and ``prompt(name, default)`` (``gg.prompt``) marks a prompt
discovery cannot see.
"""

from typing import Any

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from gepa_graph.integrations.langgraph.declared import prompt
from gepa_graph.integrations.langgraph.discover import (
    NoPromptsFound,
    PromptSlot,
    discover,
)
from gepa_graph.integrations.langgraph.system import (
    LangGraphSystem,
    ProbeReport,
    apply,
    describe,
    with_prompts,
)
from gepa_graph.integrations.langgraph.tracing import TraceCollector


def is_langgraph(obj: Any) -> bool:
    """Whether ``obj`` is a LangGraph graph (compiled, or a StateGraph still to compile)."""
    return isinstance(obj, (Pregel, StateGraph))


__all__ = [
    "LangGraphSystem",
    "NoPromptsFound",
    "ProbeReport",
    "PromptSlot",
    "apply",
    "TraceCollector",
    "describe",
    "discover",
    "is_langgraph",
    "prompt",
    "with_prompts",
]
