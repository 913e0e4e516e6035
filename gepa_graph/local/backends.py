"""The runtimes that can serve the GGUF file, behind one small interface.

``xllamacpp`` (the default, a prebuilt wheel: nothing to compile) runs llama.cpp's server engine
in-process: it applies the GGUF's chat template, honours the OpenAI sampling fields and decodes up
to ``slots`` requests together in one batch. ``llama-cpp-python`` (``GEPA_GRAPH_LOCAL_BACKEND=
llama-cpp``, for users who already have it built) serves one request at a time.

Settings that matter on a small shared CPU, for both: threads never busy-wait for work (polling
off; busy-waiting threads collapsed generation to a few tokens/s whenever another process wanted
the cores), and the prompt cache is off for every request, because re-using part of an earlier
prompt's evaluation changes the floating-point sums and so the sample: with it off, the same
prompt and seed give the same reply. xllamacpp also keeps no RAM cache of past prompts, logs
nothing, and its HTTP port (llama.cpp's server always opens one, on 127.0.0.1) answers only
requests carrying a random key that never leaves this process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any, Protocol

from gepa_graph.errors import LocalModelError

ENV_BACKEND = "GEPA_GRAPH_LOCAL_BACKEND"
ENV_N_CTX = "GEPA_GRAPH_LOCAL_N_CTX"
ENV_THREADS = "GEPA_GRAPH_LOCAL_THREADS"
ENV_SLOTS = "GEPA_GRAPH_LOCAL_SLOTS"
DEFAULT_BACKEND = "xllamacpp"


class Backend(Protocol):
    """One loaded model. ``chat`` takes an OpenAI-style chat request (``messages``, optional
    ``tools``, sampling fields such as ``temperature``, ``seed``, ``stop``, ``max_tokens``) and
    returns an OpenAI chat completion dict; it may be called from several threads at once."""

    name: str
    slots: int
    """How many requests it decodes at once (1: the engine serialises its callers)."""

    def chat(self, request: dict[str, Any]) -> dict[str, Any]:
        """One chat completion for ``request``."""
        ...

    def close(self) -> None:
        """Free the model's memory."""
        ...


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise LocalModelError(f"{name}={value!r} is not an integer") from None


def default_threads() -> int:
    """CPU threads the model decodes with: ``GEPA_GRAPH_LOCAL_THREADS``, else every core this
    process may use."""
    if os.environ.get(ENV_THREADS):
        return _env_int(ENV_THREADS, 1)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class XllamacppBackend:
    """llama.cpp's server engine in-process (``pip install xllamacpp``, prebuilt)."""

    name = "xllamacpp"
    module = "xllamacpp"

    def __init__(self, path: Path, *, n_ctx: int, threads: int, slots: int, poll: int = 0) -> None:
        """``poll``: how busily idle threads wait for work, 0-100 (llama.cpp's default: 50)."""
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx
        params.n_parallel = slots
        params.kv_unified = True  # the slots share the whole context instead of n_ctx / slots each
        for cpu in (params.cpuparams, params.cpuparams_batch):
            cpu.n_threads = threads
            cpu.poll = poll  # 0: sleep, never busy-wait, between batches
        params.cache_ram_mib = 0  # no RAM cache of earlier prompts (default: up to 8 GB)
        params.verbosity = -1
        params.api_keys = [secrets.token_hex(16)]  # the 127.0.0.1 port it opens refuses strangers
        try:
            self._server = xllamacpp.Server(params)
        except RuntimeError as exc:
            raise LocalModelError(f"xllamacpp could not load {path}: {exc}") from None
        self.slots = slots
        self._in_flight = 0
        self._idle = threading.Condition()

    def chat(self, request: dict[str, Any]) -> dict[str, Any]:
        """One chat completion; counted in flight so ``close`` can wait for it."""
        with self._idle:
            self._in_flight += 1
        try:
            response = self._server.handle_chat_completions({**request, "cache_prompt": False})
        except ValueError as exc:  # a request the server refused
            raise LocalModelError(f"the local model refused the request: {exc}") from None
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()
        if "choices" not in response:
            error = response.get("error", response)
            message = error.get("message", error) if isinstance(error, dict) else error
            raise LocalModelError(f"the local model failed: {message}")
        return response

    def close(self, wait_s: float = 30.0) -> None:
        """Free the model once no request is decoding. A call cut off by a time limit may still
        be running on an abandoned thread: freeing the model under it crashes the process, so
        wait for it (``wait_s`` at most) and otherwise leave the model to the process's exit."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout=wait_s):
                return
        del self._server  # its destructor stops the server's threads and frees the model


class LlamaCppBackend:
    """``llama_cpp.Llama`` (llama-cpp-python, built from source): one request at a time."""

    name = "llama-cpp"
    module = "llama_cpp"
    slots = 1

    def __init__(self, path: Path, *, n_ctx: int, threads: int, slots: int) -> None:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no busy-waiting (read at load)
        from llama_cpp import Llama

        self._llama = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=512,
            verbose=False,
        )

    def chat(self, request: dict[str, Any]) -> dict[str, Any]:
        """One chat completion, the prompt evaluated afresh (same prompt and seed, same reply)."""
        messages = [_object_arguments(m) for m in request["messages"]]
        self._llama.reset()  # evaluate the whole prompt afresh: no reuse of the last one's prefix
        return self._llama.create_chat_completion(**{**request, "messages": messages})

    def close(self) -> None:
        """Free the model."""
        self._llama.close()


def _object_arguments(message: dict[str, Any]) -> dict[str, Any]:
    """Tool-call arguments as objects, as llama-cpp-python's rendering of the Qwen template
    wants them (it JSON-encodes them itself; xllamacpp takes the OpenAI strings)."""
    if not message.get("tool_calls"):
        return message
    calls = []
    for call in message["tool_calls"]:
        function = dict(call.get("function") or {})
        if isinstance(function.get("arguments"), str):
            try:
                function["arguments"] = json.loads(function["arguments"])
            except ValueError:
                pass
        calls.append({**call, "function": function})
    return {**message, "tool_calls": calls}


BACKENDS: dict[str, type[XllamacppBackend] | type[LlamaCppBackend]] = {
    "xllamacpp": XllamacppBackend,
    "llama-cpp": LlamaCppBackend,
}
INSTALL = {
    "xllamacpp": 'pip install ".[local]" (a prebuilt wheel)',
    "llama-cpp": "pip install llama-cpp-python (it builds from source, about 12 minutes on 2 "
    f"cores), or unset {ENV_BACKEND} to use xllamacpp",
}


def backend_name() -> str:
    """The backend chosen by ``$GEPA_GRAPH_LOCAL_BACKEND`` (default ``xllamacpp``)."""
    name = os.environ.get(ENV_BACKEND) or DEFAULT_BACKEND
    if name not in BACKENDS:
        raise LocalModelError(
            f"{ENV_BACKEND}={name!r} is not a local backend: use one of {', '.join(BACKENDS)}"
        )
    return name


def installed(name: str) -> bool:
    """Whether backend ``name``'s runtime package can be imported."""
    return importlib.util.find_spec(BACKENDS[name].module) is not None


def runtime_problem(name: str | None = None) -> str | None:
    """None when the backend ``name`` (default: the chosen one) is installed, else why not."""
    try:
        name = name or backend_name()
    except LocalModelError as exc:
        return str(exc)
    if installed(name):
        return None
    return f"{BACKENDS[name].module} is not installed: {INSTALL[name]}"


def open_backend(path: Path, name: str | None = None) -> Backend:
    """Load ``path`` with the backend ``name`` (default: the chosen one). Context length
    ``$GEPA_GRAPH_LOCAL_N_CTX`` (8192), threads ``$GEPA_GRAPH_LOCAL_THREADS`` (the usable cores),
    parallel slots ``$GEPA_GRAPH_LOCAL_SLOTS`` (4; llama-cpp always has 1)."""
    name = name or backend_name()
    problem = runtime_problem(name)
    if problem:
        raise LocalModelError(problem)
    slots = max(1, _env_int(ENV_SLOTS, 4))
    return BACKENDS[name](
        path, n_ctx=_env_int(ENV_N_CTX, 8192), threads=default_threads(), slots=slots
    )
