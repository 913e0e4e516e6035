"""How gepa_graph's values become MLflow's: params clipped to MLflow's length limit, a config
flattened to dotted names, scores rounded for the UI's columns, and batches within
``log_batch``'s limit of 1000 items."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypeVar

from mlflow.entities import Param

PARAM_MAX_CHARS = 6000
BATCH_MAX = 1000  # items per log_batch call

T = TypeVar("T")


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def param(key: str, value: Any) -> Param:
    """An MLflow param: strings as they are, anything else as JSON, clipped to the limit."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return Param(key, text[:PARAM_MAX_CHARS])


def chunks(items: list[T], size: int = BATCH_MAX) -> Iterable[list[T]]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def rounded(value: float) -> float:
    """A mean of scores without float noise in the UI's columns (0.3875, not 0.38749999...)."""
    return round(float(value), 6)
