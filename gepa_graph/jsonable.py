"""Turn rollout outputs and traces into plain JSON values.

Everything the engine keeps about a rollout goes through here once, right after the rollout,
so a live run and a resumed run (which reads the journal) see byte-identical data.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

_MAX_DEPTH = 24


def _message(value: Any) -> dict[str, Any] | None:
    """LangChain-style messages (duck-typed: the core does not import LangChain)."""
    kind = getattr(value, "type", None)
    if not isinstance(kind, str) or not hasattr(value, "content"):
        return None
    out: dict[str, Any] = {"role": kind, "content": to_jsonable(value.content)}
    for attr in ("name", "tool_calls", "tool_call_id", "status"):
        item = getattr(value, attr, None)
        if item:
            out[attr] = to_jsonable(item)
    return out


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _depth > _MAX_DEPTH:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_jsonable(v, _depth + 1) for v in items]
    message = _message(value)
    if message is not None:
        return message
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump(mode="python"), _depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value), _depth + 1)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return repr(value)
