"""Reflection LM calls: a LiteLLM model string or a plain callable, with retries, timeouts,
a concurrency limit and a token/cost count."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from gepa_graph.system import Usage

log = logging.getLogger("gepa_graph")

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch prices at import


class LMResponse(BaseModel):
    text: str
    finish_reason: str | None = None
    usage: Usage = Usage()


class LMCallFailed(Exception):
    """Every retry of a transient failure was used up (rate limit, timeout, connection)."""


class LMConfigError(ValueError):
    """The LM cannot work at all: unknown model, bad credentials, bad request."""


# Exception class names that mean "try again later" across LiteLLM, OpenAI, Anthropic and
# httpx, matched anywhere in the class hierarchy so no provider SDK needs importing.
_TRANSIENT_NAMES = frozenset({
    "RateLimitError", "Timeout", "APITimeoutError", "TimeoutException", "APIConnectionError",
    "ServiceUnavailableError", "InternalServerError", "OverloadedError", "ConnectError",
    "ReadTimeout", "RemoteProtocolError",
})


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: rate limits, timeouts, dropped connections, 5xx."""
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)


class EmptyReply(Exception):
    """The LM answered with nothing: treated like a transient failure and retried."""


def check_model_string(model: str) -> None:
    """Fail before any call when LiteLLM cannot route ``model`` (typo, unknown provider)."""
    import litellm

    litellm.suppress_debug_info = True  # no "Give Feedback" banners on every retried error
    if model.startswith("local/"):  # the embedded model registers its provider on first use
        from gepa_graph.local import register

        register()
    try:
        litellm.get_llm_provider(model)
    except Exception as exc:
        raise LMConfigError(
            f"unknown LiteLLM model {model!r}: use 'provider/model', e.g. 'openai/gpt-4.1-mini' "
            f"({type(exc).__name__})"
        ) from None


class ReflectionLM:
    """Calls the reflection LM. ``lm`` is a LiteLLM model string or ``callable(prompt) -> str``
    (sync or async)."""

    def __init__(
        self,
        lm: str | Callable[[str], Any],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 6,
        backoff_s: float = 1.0,
        concurrency: int = 4,
        litellm_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(lm, str):
            check_model_string(lm)
        elif not callable(lm):
            raise TypeError(
                f"reflection_lm must be a LiteLLM model string or a callable, got {type(lm).__name__}"
            )
        self.lm = lm
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.litellm_kwargs = dict(litellm_kwargs or {})
        self._semaphore = asyncio.Semaphore(concurrency)
        self.retries = 0
        self.failures = 0
        self._jitter = random.Random(0)  # backoff jitter only; never touches the search

    @property
    def name(self) -> str:
        if isinstance(self.lm, str):
            return self.lm
        return getattr(self.lm, "__qualname__", None) or type(self.lm).__name__

    async def __call__(self, prompt: str) -> LMResponse:
        async with self._semaphore:
            for attempt in range(self.max_retries + 1):
                try:
                    response = await asyncio.wait_for(self._call_once(prompt), self.timeout_s)
                    if not response.text.strip() and response.finish_reason != "length":
                        raise EmptyReply("the reflection LM returned an empty reply")
                    return response
                except Exception as exc:
                    if not (isinstance(exc, EmptyReply) or is_transient(exc)):
                        raise
                    if attempt == self.max_retries:
                        self.failures += 1
                        raise LMCallFailed(
                            f"reflection LM failed after {attempt + 1} attempts: "
                            f"{type(exc).__name__}: {exc}"
                        ) from exc
                    self.retries += 1
                    delay = self.backoff_s * (2**attempt) * (0.5 + self._jitter.random())
                    log.info("reflection LM %s (%s); retry %d in %.1fs",
                             type(exc).__name__, exc, attempt + 1, delay)
                    await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _call_once(self, prompt: str) -> LMResponse:
        if not isinstance(self.lm, str):
            if inspect.iscoroutinefunction(self.lm):
                reply = await self.lm(prompt)
            else:
                loop = asyncio.get_running_loop()
                reply = await loop.run_in_executor(None, self.lm, prompt)
            if isinstance(reply, LMResponse):
                return reply
            return LMResponse(text="" if reply is None else str(reply))
        return await self._call_litellm(prompt)

    async def _call_litellm(self, prompt: str) -> LMResponse:
        import litellm

        kwargs: dict[str, Any] = dict(self.litellm_kwargs)
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        try:
            response = await litellm.acompletion(
                model=self.lm,
                messages=[{"role": "user", "content": prompt}],
                timeout=self.timeout_s,
                num_retries=0,
                **kwargs,
            )
        except (litellm.AuthenticationError, litellm.NotFoundError, litellm.BadRequestError) as exc:
            raise LMConfigError(f"reflection LM {self.lm!r}: {type(exc).__name__}: {exc}") from None
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        try:
            cost = litellm.completion_cost(completion_response=response)
        except Exception:
            cost = None  # LiteLLM has no price for this model
        return LMResponse(
            text=choice.message.content or "",
            finish_reason=getattr(choice, "finish_reason", None),
            usage=Usage(
                prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                cost_usd=cost,
            ),
        )
