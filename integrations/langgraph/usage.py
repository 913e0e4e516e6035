"""Token usage and cost of a model call, from a LangChain response or a provider SDK's counts.

Prices are LiteLLM's table (None for a model it does not know); the model's name comes from the
response where it says it, else from the call's start. Separate from the trace collector: it
reads LangChain's and LiteLLM's data shapes, not the run's structure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.outputs import LLMResult

from gepa_graph.system import Usage


def usage_of(response: LLMResult, model: str | None) -> Usage | None:
    """Token usage of an LLM response and its cost where LiteLLM knows the model's price."""
    prompt_tokens: int | None = None
    completion_tokens = 0  # set with prompt_tokens
    generations = response.generations[0] if response.generations else []
    message = getattr(generations[0], "message", None) if generations else None
    usage_metadata = getattr(message, "usage_metadata", None)
    if usage_metadata:
        prompt_tokens = usage_metadata.get("input_tokens", 0)
        completion_tokens = usage_metadata.get("output_tokens", 0)
    else:
        token_usage = (response.llm_output or {}).get("token_usage") or {}
        if token_usage:
            prompt_tokens = token_usage.get("prompt_tokens", 0)
            completion_tokens = token_usage.get("completion_tokens", 0)
    if prompt_tokens is None:
        return None
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost(model, prompt_tokens, completion_tokens),
    )


def cost(model: str | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    """The price of a call in USD where LiteLLM knows the model's price, else None."""
    if not model:
        return None
    import litellm  # lazily: importing it is slow and most runs never need a price

    # Look the model up first: asking LiteLLM about an unknown model prints a provider list.
    known = next((m for m in (model, model.split("/", 1)[-1]) if m in litellm.model_cost), None)
    if known is None:
        return None
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=known, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:  # a price entry LiteLLM cannot use
        return None
    return float(prompt_cost + completion_cost)


def model_name(response: LLMResult, start_model: str | None) -> str | None:
    """The model a LangChain response says answered, else the one its call started with."""
    name = (response.llm_output or {}).get("model_name")
    if not name and response.generations and response.generations[0]:
        message = getattr(response.generations[0][0], "message", None)
        name = (getattr(message, "response_metadata", None) or {}).get("model_name")
    return name or start_model


def start_model(kwargs: Mapping[str, Any], metadata: Mapping[str, Any] | None) -> str | None:
    """The model a LangChain model call starts with, from its invocation parameters."""
    params = kwargs.get("invocation_params") or {}
    name = params.get("model") or params.get("model_name")
    if not name and metadata:
        name = metadata.get("ls_model_name")
    return name if isinstance(name, str) else None


def model_identity(model: str | None, serialized: Mapping[str, Any] | None) -> str:
    """The model's name, else the class name LangChain serialized it under."""
    if model:
        return model
    path = (serialized or {}).get("id")
    return str(path[-1]) if isinstance(path, list) and path else ""
