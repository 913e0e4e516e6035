"""Metric protocol: (example, prediction, trace) -> float | Score, and its validation."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from gepa_graph.errors import WrongType
from gepa_graph.system import Trace
from gepa_graph.usercode import call_user


class Score(BaseModel):
    """A metric's verdict on one rollout.

    ``value`` is what the search compares (within ``score_range``); ``feedback`` is text the
    reflection LM reads; ``module_feedback`` targets single modules (e.g. ``{"planner": "the
    plan skipped step 2"}``) and is preferred over ``feedback`` when a module's prompt is being
    rewritten.
    """

    value: float
    feedback: str = ""
    module_feedback: dict[str, str] | None = None

    def __init__(
        self, value: float, feedback: str = "", module_feedback: dict[str, str] | None = None
    ) -> None:
        real = _real(value)  # numpy scalars, Decimal, Fraction: any real number
        super().__init__(
            value=value if real is None else real,
            feedback=feedback,
            module_feedback=module_feedback,
        )

    def feedback_for(self, module: str) -> str:
        """The feedback a reflection on ``module`` reads: its own, else the general one."""
        if self.module_feedback and module in self.module_feedback:
            return self.module_feedback[module]
        return self.feedback


class MetricError(Exception):
    """The metric raised or returned something that is not a usable score."""


Metric = Callable[..., Any]


def metric_arity(metric: Metric) -> int:
    """How many positional arguments to pass: 2 (example, prediction) or 3 (+ trace).

    Raises WrongType (a TypeError) with a clear message for anything else, before any LM call is made.
    """
    if not callable(metric):
        raise WrongType(f"metric must be callable, got {type(metric).__name__}")
    try:
        signature = inspect.signature(metric)
    except (TypeError, ValueError):
        return 3
    params = list(signature.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 3
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    keyword_only = [p for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if len(required) > 3 or len(positional) < 2 or keyword_only:
        raise WrongType(
            f"metric {getattr(metric, '__name__', metric)!r} must accept "
            f"(example, prediction[, trace]); its signature is {signature}"
        )
    return 3 if len(positional) >= 3 else 2


def _real(value: Any) -> float | None:
    """Any real number as a float (numpy scalars, Decimal, Fraction, bool), else None."""
    if isinstance(value, (str, bytes, complex)) or not hasattr(value, "__float__"):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def to_score(value: Any) -> Score:
    """Validate a metric's return value; anything unusable is a MetricError, never a silent 0."""
    real = _real(value)
    if isinstance(value, Score):
        score = value
    elif real is not None:
        score = Score(value=real)
    elif isinstance(value, dict) and "value" in value and _real(value["value"]) is not None:
        score = Score(**{**value, "value": _real(value["value"])})
    else:
        try:
            shown = repr(value)[:80]
        except Exception:
            shown = "(unprintable)"
        raise MetricError(
            f"metric returned {type(value).__name__} {shown}; expected a number or gg.Score"
        )
    if not math.isfinite(score.value):
        raise MetricError(f"metric returned a non-finite score ({score.value})")
    return score


async def call_metric(metric: Metric, arity: int, example: Any, output: Any, trace: Trace) -> Score:
    """Call the metric; a sync metric runs on a worker thread so a slow one (an LLM judge,
    say) does not stall the other rollouts."""
    return to_score(await call_user(metric, *(example, output, trace)[:arity]))
