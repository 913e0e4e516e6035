"""Tracking: MLflow runs (``gepa_graph.tracking.mlflow``), the Prompt Registry
(``gepa_graph.tracking.registry``), the promotion gate (``gate``), prompt-trace links
(``trace_link``), plots (``plots``), every MLflow name in one place (``schema``), MLflow's console
output (``console``) and a local ``mlflow server`` (``server``).

Importing this package does not import mlflow (slow); ``MLflowTracker`` loads it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gepa_graph.tracking.mlflow import MLflowTracker

__all__ = ["MLflowTracker"]


def __getattr__(name: str) -> Any:
    if name == "MLflowTracker":
        from gepa_graph.tracking.mlflow import MLflowTracker

        return MLflowTracker
    raise AttributeError(f"module 'gepa_graph.tracking' has no attribute {name!r}")
