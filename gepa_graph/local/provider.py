"""The LiteLLM provider ``local``: every ``"local/<name>"`` model string is answered in-process by
the one local engine (async calls run in a thread), priced at $0, so both roles can use it."""

from __future__ import annotations

import asyncio
from typing import Any

from gepa_graph.errors import LocalModelError
from gepa_graph.local.model import SAMPLING_DEFAULTS, engine

PROVIDER = "local"
MODEL_NAME = "qwen2.5-coder-1.5b"
DEFAULT_MODEL = f"{PROVIDER}/{MODEL_NAME}"


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
            response = engine().chat(list(messages), tools=tools, tool_choice=tool_choice, **params)
            return _model_response(litellm, model, response)

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
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
        choices=[
            {"index": 0, "finish_reason": choice.get("finish_reason") or "stop", "message": message}
        ],
        usage={
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "completion_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0),
        },
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
            {
                "id": calls[0].id,
                "type": "function",
                "function": {
                    "name": calls[0].function.name,
                    "arguments": calls[0].function.arguments,
                },
                "index": 0,
            }
            if calls
            else None
        ),
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    }


_registered = False


def register() -> str:
    """Make ``"local/<name>"`` a LiteLLM model answered by the embedded model (priced at $0).
    Idempotent; loads nothing until the first call. Returns DEFAULT_MODEL."""
    global _registered
    import litellm

    if _registered and any(
        item.get("provider") == PROVIDER for item in litellm.custom_provider_map
    ):
        return DEFAULT_MODEL
    litellm.custom_provider_map = [
        item for item in litellm.custom_provider_map if item.get("provider") != PROVIDER
    ] + [{"provider": PROVIDER, "custom_handler": _handler_class()()}]
    litellm.utils.custom_llm_setup()
    try:
        litellm.register_model(
            {
                DEFAULT_MODEL: {
                    "input_cost_per_token": 0.0,
                    "output_cost_per_token": 0.0,
                    "cache_creation_input_token_cost": 0.0,
                    "cache_read_input_token_cost": 0.0,
                    "litellm_provider": PROVIDER,
                    "mode": "chat",
                    "max_tokens": 8192,
                    "max_input_tokens": 8192,
                    "max_output_tokens": 8192,
                },
            }
        )
    except Exception:  # a price entry is a nicety; the provider works without it
        pass
    _registered = True
    return DEFAULT_MODEL


def is_local(model: Any) -> bool:
    """Whether ``model`` names the embedded model (``local/...``), which must be registered
    with LiteLLM before use."""
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
        raise LocalModelError("langchain-litellm is not installed: pip install .") from None
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
