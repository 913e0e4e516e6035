"""Scripted providers reached without LangChain's chat path: a LiteLLM custom provider, an OpenAI SDK
client whose HTTP goes to an in-process ``httpx.MockTransport``, and a LangChain completion LLM
(``ScriptedLLM``, text in and out). Each records what it received like
``ScriptedChatModel`` does (``calls``: LangChain messages per call; ``reset()``), so the corpus
tests read every model call the same way whichever path it took.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
from langchain_core.language_models import LLM
from langchain_core.messages import BaseMessage, HumanMessage, convert_to_messages


class _Recorder:
    def __init__(self, script: Callable[[list[BaseMessage]], str]) -> None:
        self.script = script
        self._calls: list[list[BaseMessage]] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The messages of every call so far, in call order."""
        with self._lock:
            return [list(call) for call in self._calls]

    def reset(self) -> None:
        """Forget recorded calls."""
        with self._lock:
            self._calls.clear()

    def _reply(self, messages: list[dict[str, Any]]) -> str:
        converted = convert_to_messages(messages)
        with self._lock:
            self._calls.append(converted)
        return self.script(converted)


class LiteLLMScript(_Recorder):
    """A LiteLLM custom provider: ``litellm.completion(model=self.model, ...)`` answers with
    ``script(messages)``, in-process."""

    def __init__(self, script: Callable[[list[BaseMessage]], str], provider: str) -> None:
        super().__init__(script)
        self.provider = provider
        self.model = f"{provider}/scripted"

    def register(self) -> LiteLLMScript:
        """Make LiteLLM route ``self.model`` here (replacing an earlier registration)."""
        import litellm
        from litellm import CustomLLM, ModelResponse

        outer = self

        class _Handler(CustomLLM):
            def completion(self, model: str, messages: list, *args: Any, **kwargs: Any):
                return outer._response(ModelResponse, messages)

            async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any):
                return outer._response(ModelResponse, messages)

        litellm.custom_provider_map = [
            item for item in litellm.custom_provider_map if item["provider"] != self.provider
        ] + [{"provider": self.provider, "custom_handler": _Handler()}]
        litellm.utils.custom_llm_setup()
        return self

    def _response(self, response_type: Any, messages: list) -> Any:
        text = self._reply(messages)
        return response_type(
            model=self.model,
            choices=[{"index": 0, "finish_reason": "stop", "message": _assistant(text)}],
            usage=_usage(messages, text),
        )


class OpenAIStub(_Recorder):
    """An ``openai.OpenAI`` client (``self.client``) whose chat completions are answered by
    ``script(messages)`` through an in-process HTTP transport: no network."""

    def __init__(self, script: Callable[[list[BaseMessage]], str]) -> None:
        import openai

        super().__init__(script)
        transport = httpx.MockTransport(self._handle)
        self.client = openai.OpenAI(
            api_key="not-a-key",
            base_url="http://openai.stub/v1",
            http_client=httpx.Client(transport=transport),
            max_retries=0,
        )

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/chat/completions"):
            return httpx.Response(404, json={"error": {"message": f"no {request.url.path}"}})
        body = json.loads(request.content)
        text = self._reply(body["messages"])
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": _assistant(text)}],
                "usage": _usage(body["messages"], text),
            },
        )


def _assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def _usage(messages: list, text: str) -> dict[str, int]:
    prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
    completion = len(text.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class ScriptedLLM(LLM):
    """A LangChain *completion* LLM (text in, text out: ``on_llm_start``, not chat) answering with
    ``script(prompt)``; ``calls`` holds each prompt as one human message."""

    script: Any

    @property
    def _llm_type(self) -> str:
        return "scripted-completion"

    def _call(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
        self._calls().append([HumanMessage(prompt)])
        return self.script(prompt)

    def _calls(self) -> list[list[BaseMessage]]:
        return self.__dict__.setdefault("_recorded", [])

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The prompt of every call so far, as one human message each."""
        return list(self._calls())

    def reset(self) -> None:
        """Forget recorded calls."""
        self._calls().clear()
