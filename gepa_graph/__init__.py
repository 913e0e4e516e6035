"""gepa_graph: GEPA reflective prompt evolution for LangGraph agents."""

from typing import Any

from gepa_graph.api import aoptimize, load_result, optimize
from gepa_graph.candidate import Candidate
from gepa_graph.config import OptimizeConfig
from gepa_graph.errors import GepaGraphError
from gepa_graph.example import Example
from gepa_graph.executor import Executor, LocalExecutor
from gepa_graph.metric import Score
from gepa_graph.result import CandidateRecord, Result
from gepa_graph.system import (
    BaseSystem,
    FunctionSystem,
    Rollout,
    System,
    Trace,
    TraceRecord,
    Usage,
)

__all__ = [
    "BaseSystem",
    "Candidate",
    "CandidateRecord",
    "Example",
    "Executor",
    "FunctionSystem",
    "GepaGraphError",
    "LocalExecutor",
    "OptimizeConfig",
    "RayExecutor",
    "Result",
    "Rollout",
    "Score",
    "System",
    "Trace",
    "TraceRecord",
    "Usage",
    "aoptimize",
    "load_result",
    "optimize",
    "prompt",
    "tracking",
    "integrations",
]


def __getattr__(name: str) -> Any:
    # Integrations and tracking load on first use: `import gepa_graph` stays free of MLflow,
    # LangGraph and Ray imports, and the core never imports them.
    import importlib

    if name in ("tracking", "integrations"):
        return importlib.import_module(f"gepa_graph.{name}")
    if name == "RayExecutor":  # pip install "gepa-graph[ray]"
        return importlib.import_module("gepa_graph.integrations.ray").RayExecutor
    if name == "prompt":
        return importlib.import_module("gepa_graph.integrations.langgraph").prompt
    raise AttributeError(f"module 'gepa_graph' has no attribute {name!r}")
