"""Tool calls a model wrote as text, turned into OpenAI ``tool_calls``.

The local model writes its tool calls as JSON text (``<tool_call>{...}</tool_call>``, a fenced or a
bare object) whatever the runtime; parsing them here lets LangChain agents see ordinary tool calls.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _json_values(text: str) -> Iterator[Any]:
    """Every JSON value that starts at a '{' or '[' in ``text``, left to right, not nested."""
    decoder = json.JSONDecoder()
    index = 0
    while index < len(text):
        starts = [i for i in (text.find("{", index), text.find("[", index)) if i >= 0]
        if not starts:
            return
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            index = start + 1
            continue
        yield value
        index = end


def _as_call(value: Any, known: set[str]) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):  # {"type": "function", "function": {...}}
        value = value["function"]
    name = value.get("name")
    if not isinstance(name, str) or (known and name not in known):
        return None
    arguments = value.get("arguments", value.get("parameters", value.get("args", {})))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return {"name": name, "arguments": arguments}


def parse_tool_calls(text: str, known: set[str] | None = None) -> list[dict[str, Any]]:
    """Tool calls a model wrote as text: ``<tool_call>{"name":..,"arguments":{..}}</tool_call>``
    blocks, a fenced or bare JSON object (or list of them). Only names in ``known`` (when given)
    count. Returns ``[{"name", "arguments": dict}]``, empty when the text holds none."""
    known = set(known or ())
    chunks = _TAGGED.findall(text) or _FENCED.findall(text) or [text]
    calls = []
    for chunk in chunks:
        for value in _json_values(chunk):
            for item in value if isinstance(value, list) else [value]:
                call = _as_call(item, known)
                if call is not None:
                    calls.append(call)
    return calls


def with_parsed_tool_calls(response: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """A chat completion whose text tool calls became OpenAI ``tool_calls``."""
    choice = response["choices"][0]
    message = choice.get("message") or {}
    if message.get("tool_calls"):
        return response
    text = message.get("content") or ""
    calls = parse_tool_calls(text, known)
    if not calls:
        return response
    message = {
        **message,
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
            }
            for c in calls
        ],
    }
    return {**response, "choices": [{**choice, "message": message, "finish_reason": "tool_calls"}]}
