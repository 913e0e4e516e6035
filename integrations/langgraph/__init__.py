"""LangGraph integration: optimize the prompts of a compiled graph without changing its code.

``discover(graph)`` finds the prompts, ``describe(graph)`` explains what it found,
``LangGraphSystem(graph)`` runs the graph with candidate prompts (substituted where they reach a
model, ``boundary``) and traces attributed by prompt, ``with_prompts(graph, prompts)`` returns a
copy running other prompts, ``export`` writes file-based prompts to copies of their files, and
``prompt(name, default)`` (``gg.prompt``) marks a prompt
discovery cannot see.
"""

from typing import Any

from langchain_core.runnables import Runnable
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from gepa_graph.errors import NoPromptsFound
from gepa_graph.integrations.langgraph.declared import prompt
from gepa_graph.integrations.langgraph.discover import PromptSlot, discover
from gepa_graph.integrations.langgraph.probe import ProbeReport
from gepa_graph.integrations.langgraph.production import apply, export, with_prompts
from gepa_graph.integrations.langgraph.system import LangGraphSystem, describe
from gepa_graph.integrations.langgraph.tracing import TraceCollector


def is_langgraph(obj: Any) -> bool:
    """Whether ``obj`` is an agent this integration runs: a LangGraph graph (compiled, or a
    StateGraph still to compile), a Functional API entrypoint, or any LangChain Runnable (a
    chain wrapping a graph)."""
    return isinstance(obj, (Pregel, StateGraph, Runnable))


__all__ = [
    "LangGraphSystem",
    "NoPromptsFound",
    "ProbeReport",
    "PromptSlot",
    "apply",
    "TraceCollector",
    "describe",
    "discover",
    "export",
    "is_langgraph",
    "prompt",
    "with_prompts",
]
