"""Turn rollout outputs and traces into plain JSON values, with secrets masked.

Everything the engine keeps about a rollout goes through here once, right after the rollout,
so a live run and a resumed run (which reads the journal) see byte-identical data, and no
API key that leaked into a trace reaches the journal, the checkpoint or a listener.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from gepa_graph.redact import MASK, clip, env_secrets, is_secret_key, redact_text

_MAX_DEPTH = 24
# Longest string kept: reflection shows at most max_chars_per_field of it anyway, and a huge
# output must not multiply into the journal, the checkpoint and every listener.
MAX_STORED_CHARS = 20_000


_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def _message(value: Any, depth: int, secrets: list[str]) -> dict[str, Any] | None:
    """LangChain-style messages as chat dicts (duck-typed: the core does not import LangChain)."""
    kind = getattr(value, "type", None)
    if not isinstance(kind, str) or not hasattr(value, "content"):
        return None
    out: dict[str, Any] = {
        "role": _ROLES.get(kind, kind),
        "content": _convert(value.content, depth + 1, secrets),
    }
    calls = getattr(value, "tool_calls", None)
    if calls:
        out["tool_calls"] = [
            {
                "name": c.get("name"),
                "args": _convert(c.get("args"), depth + 2, secrets),
                "id": c.get("id"),
            }
            for c in calls
        ]
    if getattr(value, "tool_call_id", None):
        out["tool_call_id"] = value.tool_call_id
    status = getattr(value, "status", None)
    if isinstance(status, str) and status != "success":
        out["status"] = status
    if getattr(value, "name", None):
        out["name"] = value.name
    return out


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON (dicts, lists, str, numbers), secrets masked: the one form
    in which a rollout's output and trace are kept."""
    return _convert(value, 0, env_secrets())


def _text(value: str, secrets: list[str]) -> str:
    return clip(redact_text(value, secrets), MAX_STORED_CHARS)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__} whose repr() raised>"


def _convert(value: Any, _depth: int, secrets: list[str]) -> Any:
    """Never raises: a value that resists conversion (a property that raises, a broken
    ``__eq__``) is kept as its repr."""
    try:
        return _convert_unsafe(value, _depth, secrets)
    except Exception:
        return _text(_repr(value), secrets)


def _key(key: Any, value: Any, secrets: list[str]) -> tuple[str, bool]:
    name = _text(key if isinstance(key, str) else _repr(key), secrets)
    empty = value is None or value is False or (isinstance(value, str) and not value)
    secret = is_secret_key(name) and not empty
    return name, secret


def _convert_unsafe(value: Any, _depth: int, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return _text(value, secrets)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, enum.Enum):
        return _convert(value.value, _depth + 1, secrets)
    if _depth > _MAX_DEPTH:
        return _text(_repr(value), secrets)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            name, secret = _key(k, v, secrets)
            out[name] = MASK if secret else _convert(v, _depth + 1, secrets)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=_repr) if isinstance(value, (set, frozenset)) else value
        return [_convert(v, _depth + 1, secrets) for v in items]
    message = _message(value, _depth, secrets)
    if message is not None:
        return message
    if isinstance(value, BaseModel):
        return _convert(value.model_dump(mode="python"), _depth + 1, secrets)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _convert(dataclasses.asdict(value), _depth + 1, secrets)
    if isinstance(value, bytes):
        return _text(value.decode("utf-8", errors="replace"), secrets)
    return _text(_repr(value), secrets)
