"""Reflection LM calls: a LiteLLM model string or a plain callable, with retries, timeouts,
a concurrency limit and a token/cost count."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from gepa_graph.budget import call_limit
from gepa_graph.errors import LMConfigError, WrongType
from gepa_graph.failures import class_names, is_config_error, is_transient
from gepa_graph.redact import clip, redact_text
from gepa_graph.system import Usage
from gepa_graph.usercode import call_user, describe, run_bounded

log = logging.getLogger("gepa_graph")

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch prices at import


class LMResponse(BaseModel):
    """One reflection reply as the engine uses it: ``text``, ``finish_reason`` ("length" means
    the reply was cut at the token limit) and ``usage`` (tokens and cost, for the budget)."""

    text: str
    finish_reason: str | None = None
    usage: Usage = Usage()


class LMCallFailed(Exception):
    """This reflection call failed for good (retries used up, a content-policy refusal, an
    error of the user's callable): the proposal is rejected, the run goes on."""


class PromptTooLong(LMCallFailed):
    """The reflection prompt exceeds the model's context window: retry with a shorter one."""


def _one_line(text: str, limit: int = 400) -> str:
    """An LM error as stored and shown: one line, secrets masked, bounded."""
    return clip(redact_text(" ".join(text.split())), limit)


class EmptyReply(Exception):
    """The LM answered with nothing: treated like a transient failure and retried."""


# Our own timeout of a reflection call is retried once, not lm_max_retries times: a model
# that hangs usually hangs again, and the worst case for one call stays 2 x timeout_s.
_OWN_TIMEOUT_ATTEMPTS = 2
# A reply longer than this is shortened before it is parsed or stored, keeping what the parse
# reads (``gepa_graph.reflection.stored_reply``); no prompt is this long.
MAX_REPLY_CHARS = 100_000


def check_model_string(model: str) -> None:
    """Fail before any call when LiteLLM cannot route ``model`` (typo, unknown provider)."""
    import litellm

    litellm.suppress_debug_info = True  # no "Give Feedback" banners on every retried error
    try:
        litellm.get_llm_provider(model)
    except Exception as exc:
        raise LMConfigError(
            f"unknown LiteLLM model {model!r}: use 'provider/model', e.g. 'openai/gpt-4.1-mini' "
            f"({type(exc).__name__})"
        ) from None


_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")


def check_credentials(model: str, role: str = "reflection LM", api_key: Any = None) -> None:
    """Fail before any call when the environment lacks a credential LiteLLM needs for
    ``model`` (``litellm.validate_environment``), instead of at the first call, after a run
    has paid for rollouts. Settings that have defaults (an API base) are not required; a key
    given as ``api_key`` or set on ``litellm.api_key`` counts as present."""
    import litellm

    if api_key or getattr(litellm, "api_key", None):
        return
    try:
        found = litellm.validate_environment(model=model)
    except Exception:  # LiteLLM cannot tell for this provider: its first call will
        return
    missing = [
        name
        for name in found.get("missing_keys") or []
        if any(word in name.upper() for word in _SECRET_WORDS)
    ]
    if missing:
        raise LMConfigError(
            f"{role} {model!r} needs {' and '.join(missing)}, which is not set: export it (or "
            "pass api_key in litellm_kwargs) before the run"
        )


class ReflectionLM:
    """Calls the reflection LM. ``lm`` is a LiteLLM model string or ``callable(prompt)``
    returning str, bytes or an LMResponse (sync, async, or returning an awaitable)."""

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
        deadline: Callable[[], float | None] | None = None,
    ) -> None:
        """``deadline`` returns the run's seconds left (None: no time budget); a call is cut
        off there so ``max_seconds`` holds."""
        if isinstance(lm, str):
            check_model_string(lm)
        elif not callable(lm):
            raise WrongType(
                f"reflection_lm must be a LiteLLM model string or a callable, got {type(lm).__name__}"
            )
        self.lm = lm
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.litellm_kwargs = dict(litellm_kwargs or {})
        self.deadline = deadline
        self._semaphore = asyncio.Semaphore(concurrency)
        self.retries = 0
        self.failures = 0
        # The run's Budget (set by optimize): retries and failures are counted in its ledger too.
        self.budget: Any = None
        self._jitter = random.Random(0)  # backoff jitter only; never touches the search

    def check_credentials(self) -> None:
        """For a LiteLLM model string: LMConfigError now, before any paid call, when a key
        it needs is not set (see ``check_credentials``)."""
        if isinstance(self.lm, str):
            check_credentials(self.lm, api_key=self.litellm_kwargs.get("api_key"))

    @property
    def name(self) -> str:
        """The model string, or the callable's name: how logs, the journal and resume checks
        name it."""
        if isinstance(self.lm, str):
            return self.lm
        return getattr(self.lm, "__qualname__", None) or type(self.lm).__name__

    async def __call__(self, prompt: str) -> LMResponse:
        """One reply, after retrying transient failures. Raises LMConfigError (the run cannot
        go on), PromptTooLong, or LMCallFailed (reject this proposal)."""
        async with self._semaphore:
            spent = Usage()  # empty replies cost tokens too
            timeouts = 0
            for attempt in range(self.max_retries + 1):
                left = self.deadline() if self.deadline is not None else None
                limit, by_deadline = call_limit(self.timeout_s, left)
                task = await run_bounded(self._call_once(prompt), limit)
                try:
                    if task is None:
                        timeouts += 1
                        if by_deadline:
                            raise LMCallFailed("reflection LM cut off: the run reached max_seconds")
                        raise TimeoutError(f"no reply after {limit:g}s (reflection_timeout_s)")
                    if task.cancelled():
                        raise LMCallFailed("reflection LM failed: it raised CancelledError")
                    response: LMResponse = task.result()
                    spent = spent + response.usage
                    if not response.text.strip() and response.finish_reason != "length":
                        raise EmptyReply("the reflection LM returned an empty reply")
                    return response.model_copy(update={"usage": spent})
                except LMCallFailed:
                    self._failed()
                    raise
                except Exception as exc:
                    self._classify(exc)
                    if attempt == self.max_retries or timeouts >= _OWN_TIMEOUT_ATTEMPTS:
                        self._failed()
                        raise LMCallFailed(
                            _one_line(
                                f"reflection LM failed after {attempt + 1} attempts: {describe(exc)}"
                            )
                        ) from exc
                    self._retried()
                    delay = self.backoff_s * (2**attempt) * (0.5 + self._jitter.random())
                    log.info(
                        "reflection LM %s; retry %d in %.1fs",
                        _one_line(describe(exc)),
                        attempt + 1,
                        delay,
                    )
                    await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _retried(self) -> None:
        self.retries += 1
        if self.budget is not None:
            self.budget.add_lm_retry()

    def _failed(self) -> None:
        self.failures += 1
        if self.budget is not None:
            self.budget.add_lm_failure()

    def _classify(self, exc: Exception) -> None:
        """Return for a failure worth retrying; raise what a retry cannot fix."""
        if isinstance(exc, EmptyReply):
            return
        names = class_names(exc)
        if "ContextWindowExceededError" in names:
            self._failed()
            raise PromptTooLong(_one_line(f"reflection prompt too long: {describe(exc)}")) from exc
        bad_request = "BadRequestError" in names and "ContentPolicyViolationError" not in names
        if is_config_error(exc) or bad_request:
            raise LMConfigError(
                _one_line(f"reflection LM {self.name!r}: {describe(exc)}")
            ) from None
        if not is_transient(exc):  # a refusal, an error of the user's callable: reject this one
            self._failed()
            raise LMCallFailed(_one_line(f"reflection LM failed: {describe(exc)}")) from exc

    async def _call_once(self, prompt: str) -> LMResponse:
        if isinstance(self.lm, str):
            response = await self._call_litellm(prompt)
        else:
            reply = await call_user(self.lm, prompt)
            if isinstance(reply, LMResponse):
                response = reply
            elif isinstance(reply, (bytes, bytearray)):
                response = LMResponse(text=bytes(reply).decode("utf-8", errors="replace"))
            else:
                response = LMResponse(text="" if reply is None else str(reply))
        # The one boundary every reply crosses: nothing downstream sees a key it held. Its
        # length is bounded where it is parsed (ReflectionReplay): cut here, a long reasoning
        # reply would lose the fenced prompt at its end.
        return response.model_copy(update={"text": redact_text(response.text)})

    async def _call_litellm(self, prompt: str) -> LMResponse:
        import litellm

        kwargs: dict[str, Any] = dict(self.litellm_kwargs)
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        response = await litellm.acompletion(
            model=self.lm,
            messages=[{"role": "user", "content": prompt}],
            timeout=self.timeout_s,
            num_retries=0,
            **kwargs,
        )
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
