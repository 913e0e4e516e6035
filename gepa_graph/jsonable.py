"""Turn rollout outputs and traces into plain JSON values, with secrets masked.

Everything the engine keeps about a rollout goes through here once, right after the rollout,
so a live run and a resumed run (which reads the journal) see byte-identical data, and no
API key that leaked into a trace reaches the journal, the checkpoint or a listener.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from gepa_graph.redact import MASK, env_secrets, is_secret_key, redact_text

_MAX_DEPTH = 24


def _message(value: Any, depth: int, secrets: list[str]) -> dict[str, Any] | None:
    """LangChain-style messages (duck-typed: the core does not import LangChain)."""
    kind = getattr(value, "type", None)
    if not isinstance(kind, str) or not hasattr(value, "content"):
        return None
    out: dict[str, Any] = {"role": kind, "content": _convert(value.content, depth + 1, secrets)}
    for attr in ("name", "tool_calls", "tool_call_id", "status"):
        item = getattr(value, attr, None)
        if item:
            out[attr] = _convert(item, depth + 1, secrets)
    return out


def to_jsonable(value: Any) -> Any:
    return _convert(value, 0, env_secrets())


def _convert(value: Any, _depth: int, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _depth > _MAX_DEPTH:
        return redact_text(repr(value), secrets)
    if isinstance(value, Mapping):
        return {
            str(k): MASK if is_secret_key(str(k)) and v else _convert(v, _depth + 1, secrets)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_convert(v, _depth + 1, secrets) for v in items]
    message = _message(value, _depth, secrets)
    if message is not None:
        return message
    if isinstance(value, BaseModel):
        return _convert(value.model_dump(mode="python"), _depth + 1, secrets)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _convert(dataclasses.asdict(value), _depth + 1, secrets)
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", errors="replace"), secrets)
    return redact_text(repr(value), secrets)
