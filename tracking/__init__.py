"""Tracking: MLflow runs (``gepa_graph.tracking.mlflow``, read back by ``reader``), the Prompt
Registry (``gepa_graph.tracking.registry``), the promotion gate (``gate``, its statistics ``stats``),
datasets from production traces (``traces``) and metrics from their feedback
(``feedback_metrics``), prompt-trace links (``trace_link``), plots (``plots``), every MLflow
name in one place (``schema``), MLflow's console output (``console``) and a local ``mlflow
server`` (``server``).

Importing this package does not import mlflow (slow); each name below loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gepa_graph.tracking.feedback_metrics import expectation_metric, judge_metric
    from gepa_graph.tracking.mlflow import MLflowTracker
    from gepa_graph.tracking.traces import dataset_from_traces, split

_LAZY = {
    "MLflowTracker": "gepa_graph.tracking.mlflow",
    "dataset_from_traces": "gepa_graph.tracking.traces",
    "split": "gepa_graph.tracking.traces",
    "expectation_metric": "gepa_graph.tracking.feedback_metrics",
    "judge_metric": "gepa_graph.tracking.feedback_metrics",
}

__all__ = [
    "MLflowTracker",
    "dataset_from_traces",
    "expectation_metric",
    "judge_metric",
    "split",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gepa_graph.tracking' has no attribute {name!r}")
