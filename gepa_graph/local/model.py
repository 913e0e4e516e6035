"""The process's one local model: loaded on first use, sampling defaults, text tool calls parsed.

Sampling defaults suit this small model (greedy decoding loops on it): temperature 0.7, top_p 0.8,
top_k 20, repeat_penalty 1.1, and a fixed per-call seed, so the same prompt gets the same reply
when it runs alone (``seed=None`` in a call's kwargs samples freshly). Requests that overlap are
decoded together in the backend's parallel slots; batching changes the floating-point sums, so an
overlapping request's reply may differ from the one it gets alone.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from gepa_graph.local.backends import Backend, open_backend
from gepa_graph.local.model_file import model_path
from gepa_graph.local.tool_calls import with_parsed_tool_calls

SAMPLING_DEFAULTS: dict[str, Any] = {
    "temperature": 0.7,
    "top_p": 0.8,
    "top_k": 20,
    "repeat_penalty": 1.1,
    "max_tokens": 512,
    "seed": 0,
}
"""Per-call defaults; any of them can be overridden by the call (LiteLLM kwargs)."""

_PASSED_THROUGH = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "max_tokens",
    "stop",
    "seed",
    "response_format",
)


class LocalEngine:
    """One backend, loaded on first use. ``chat`` may be called from many threads: a backend
    with one slot serves them one at a time, one with several decodes them together.

    ``factory(path) -> Backend`` loads the model (default: the backend ``$GEPA_GRAPH_LOCAL_BACKEND``
    names); ``path() -> Path`` finds the GGUF file. Tests pass fakes for both.
    """

    def __init__(
        self,
        factory: Callable[[Path], Backend] | None = None,
        path: Callable[[], Path] | None = None,
    ) -> None:
        self._factory = factory or open_backend
        self._path = path or model_path
        self._backend: Backend | None = None
        self._load_lock = threading.Lock()
        self._serial = threading.Lock()

    def backend(self) -> Backend:
        """The loaded backend (loading it on the first call)."""
        with self._load_lock:
            if self._backend is None:
                self._backend = self._factory(self._path())
                atexit.register(self.close)  # free it before interpreter teardown
            return self._backend

    def close(self) -> None:
        """Free the model (it is loaded again on the next call)."""
        with self._load_lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        **params: Any,
    ) -> dict[str, Any]:
        """One chat completion (OpenAI dict); tool calls written as text are parsed."""
        request = {**SAMPLING_DEFAULTS, **{k: v for k, v in params.items() if k in _PASSED_THROUGH}}
        if request.get("seed") is None:
            request.pop("seed", None)
        if request.get("max_tokens") is None:
            request["max_tokens"] = SAMPLING_DEFAULTS["max_tokens"]
        offered = tools if tools and tool_choice != "none" else None
        request["messages"] = [_message_for_template(m) for m in messages]
        if offered:
            request["tools"] = offered
        backend = self.backend()
        with self._serial if backend.slots <= 1 else nullcontext():
            response = backend.chat(request)
        if offered:
            response = with_parsed_tool_calls(
                response, {t["function"]["name"] for t in offered if "function" in t}
            )
        return response


def _message_for_template(message: dict[str, Any]) -> dict[str, Any]:
    """OpenAI message -> text content (content blocks keep their text; None becomes "")."""
    message = dict(message)
    content = message.get("content")
    if isinstance(content, list):
        message["content"] = "".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    elif content is None:
        message["content"] = ""
    return message


_engine: LocalEngine | None = None
_engine_lock = threading.Lock()


def engine() -> LocalEngine:
    """The process's one local engine (created on first use, loaded on first call)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = LocalEngine()
        return _engine


def set_engine(new: LocalEngine | None) -> LocalEngine | None:
    """Swap the process's engine (tests pass one with a fake backend); returns the old one."""
    global _engine
    with _engine_lock:
        old, _engine = _engine, new
        return old
