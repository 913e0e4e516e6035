"""Scripted reflection LMs: deterministic stand-ins for a real reflection model."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_MODULE = re.compile(r"belongs to the module `([^`]+)`")
_CURRENT = re.compile(
    r"(?:exactly as the module uses it now|more than the limit of \d+):\n\n(`{3,4})\n(.*?)\n\1\n",
    re.S,
)


def current_prompt(reflection_prompt: str) -> str:
    """The prompt being improved, as shown in a gepa_graph reflection prompt (or, in a
    request to shorten a proposal over ``max_prompt_chars``, the proposal)."""
    match = _CURRENT.search(reflection_prompt)
    if match is None:
        raise ValueError("not a gepa_graph reflection prompt")
    return match.group(2)


def module_name(reflection_prompt: str) -> str:
    """The module a gepa_graph reflection prompt asks to improve."""
    match = _MODULE.search(reflection_prompt)
    if match is None:
        raise ValueError("not a gepa_graph reflection prompt")
    return match.group(1)


def fenced(text: str) -> str:
    """``text`` as a reflection reply: a fenced block after a line of prose, as real models
    answer."""
    return f"Here is the improved instruction.\n\n```\n{text}\n```\n"


class ScriptedReflectionLM:
    """Calls ``rewrite(current_prompt, reflection_prompt) -> new prompt`` and replies with it in
    a fenced block, recording every prompt it was shown (``calls``)."""

    def __init__(self, rewrite: Callable[[str, str], str]) -> None:
        self.rewrite = rewrite
        self.calls: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.calls.append(prompt)
        return fenced(self.rewrite(current_prompt(prompt), prompt))


class ScriptedLiteLLM:
    """A LiteLLM custom provider: ``register()`` makes ``"<provider>/<anything>"`` answer with
    ``reply(prompt) -> str`` in-process. ``reply`` may raise (e.g. ``litellm.RateLimitError``)
    to exercise retries."""

    def __init__(self, reply: Callable[[str], str], provider: str = "scripted") -> None:
        self.reply = reply
        self.provider = provider
        self.calls = 0

    def register(self) -> str:
        """Register the provider with LiteLLM and return a model string it serves."""
        import litellm
        from litellm import CustomLLM, ModelResponse

        outer = self

        class _Handler(CustomLLM):
            def completion(self, model: str, messages: list, *args: Any, **kwargs: Any):
                return outer._respond(ModelResponse, messages)

            async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any):
                return outer._respond(ModelResponse, messages)

        litellm.custom_provider_map = [
            item for item in litellm.custom_provider_map if item["provider"] != self.provider
        ] + [{"provider": self.provider, "custom_handler": _Handler()}]
        litellm.utils.custom_llm_setup()
        return f"{self.provider}/model"

    def _respond(self, response_type: Any, messages: list) -> Any:
        self.calls += 1
        prompt = "\n".join(str(m.get("content", "")) for m in messages)
        text = self.reply(prompt)
        return response_type(
            model=f"{self.provider}/model",
            choices=[
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
            usage={
                "prompt_tokens": len(prompt) // 4,
                "completion_tokens": len(text) // 4,
                "total_tokens": (len(prompt) + len(text)) // 4,
            },
        )
