"""ScriptedChatModel: a LangChain chat model that replies from a script and records its inputs.

LangChain's own fake chat models do not support ``bind_tools``, so agents built with
``create_agent`` or ``create_react_agent`` cannot use them. This one can::

    model = ScriptedChatModel(script=[
        AIMessage("", tool_calls=[{"name": "search", "args": {"q": "x"}, "id": "c1"}]),
        "The answer is 4.",
    ])
    # or: ScriptedChatModel(script=lambda messages: "echo: " + messages[-1].text)

Every call is recorded (thread-safe, sync and async alike): ``model.calls`` holds the message
list each call received and ``model.call_tools`` the names of the tools bound for it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, PrivateAttr

Reply = AIMessage | str


class ScriptExhausted(RuntimeError):
    """A list script was asked for more replies than it holds."""


class ScriptedChatModel(BaseChatModel):
    """Replies from ``script`` (a list consumed in order, or a function of the messages).

    Replies without ``usage_metadata`` get a deterministic one (whitespace-separated words
    counted as tokens) so usage accounting can be tested. Tool calls without an id get
    ``call_<n>``. ``model_name`` is reported in the LLM output, so set it to a model LiteLLM
    knows when a test needs a cost. ``latency_s`` is slept on every call (async-aware), to
    test concurrency and time limits against a slow model.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: Any
    model_name: str = "scripted"
    latency_s: float = 0.0

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _call_tools: list[list[str]] = PrivateAttr(default_factory=list)
    _cursor: int = PrivateAttr(default=0)

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (sent to another process, e.g. a Ray worker): the lock is left behind
        and a new one made on arrival."""
        state = super().__getstate__()
        private = dict(state.get("__pydantic_private__") or {})
        private.pop("_lock", None)
        return {**state, "__pydantic_private__": private}

    def __setstate__(self, state: dict[str, Any]) -> None:
        private = {**(state.get("__pydantic_private__") or {}), "_lock": threading.Lock()}
        super().__setstate__({**state, "__pydantic_private__": private})

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The message list of every call so far, in call order."""
        with self._lock:
            return [list(messages) for messages in self._calls]

    @property
    def call_tools(self) -> list[list[str]]:
        """For every call, the names of the tools bound to the model (empty when none)."""
        with self._lock:
            return [list(names) for names in self._call_tools]

    def reset(self) -> None:
        """Forget recorded calls and restart a list script from its first reply."""
        with self._lock:
            self._calls.clear()
            self._call_tools.clear()
            self._cursor = 0

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:
        """Bind tools the way provider models do: as OpenAI tool schemas in the call kwargs."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def _next_reply(self, messages: list[BaseMessage], tools: list[str]) -> AIMessage:
        with self._lock:
            index = len(self._calls)
            self._calls.append(list(messages))
            self._call_tools.append(tools)
            if callable(self.script):
                reply: Reply | None = None
            elif self._cursor < len(self.script):
                reply = self.script[self._cursor]
                self._cursor += 1
            else:
                raise ScriptExhausted(
                    f"ScriptedChatModel script has {len(self.script)} replies; call "
                    f"{index + 1} asked for another"
                )
        if reply is None:  # a function script runs outside the lock: it may be slow
            reply = self.script(list(messages))
        return _as_ai_message(reply, messages, index)

    def _result(self, message: AIMessage) -> ChatResult:
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"model_name": self.model_name},
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_s:
            time.sleep(self.latency_s)
        return self._result(self._next_reply(messages, _tool_names(kwargs)))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self._result(self._next_reply(messages, _tool_names(kwargs)))


def _tool_names(kwargs: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in kwargs.get("tools") or []]


def _word_count(messages: Sequence[BaseMessage]) -> int:
    return sum(len(message.text.split()) for message in messages)


def _as_ai_message(reply: Reply, messages: list[BaseMessage], index: int) -> AIMessage:
    if isinstance(reply, str):
        message = AIMessage(content=reply)
    elif isinstance(reply, AIMessage):
        message = reply.model_copy(deep=True)  # a reused script entry must not share state
    else:
        raise TypeError(f"a script reply must be an AIMessage or str, got {type(reply).__name__}")
    if message.tool_calls:
        message.tool_calls = [
            {**call, "id": call.get("id") or f"call_{index}_{n}"}
            for n, call in enumerate(message.tool_calls)
        ]
    if message.usage_metadata is None:
        prompt_tokens = _word_count(messages)
        completion_tokens = _word_count([message])
        message.usage_metadata = {
            "input_tokens": prompt_tokens,
            "output_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    return message
