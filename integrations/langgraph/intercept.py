"""The interception layer: every path by which an agent reaches a model, rewritten and recorded.

``install()`` (idempotent) wraps the LangChain model entry points
(``_internals.langchain_models``) and the provider SDK calls (``_internals.sdk``: LiteLLM, the
OpenAI SDK's chat completions and responses). Outside a run that carries a
``boundary.Substitution`` in its config each wrapper only calls through. Inside one -- a
rollout, a probe, a graph from ``with_prompts``; found through LangChain's context variable for
the running runnable's config, so concurrent runs in threads and tasks never see each other's,
and carried into the thread pools and threads a run starts
(``_internals.run_context.propagate_context``) -- the outermost wrapper a call goes through
rewrites its messages with the Substitution, and nested calls (ChatOpenAI calling the OpenAI
SDK) pass through. LangChain calls are recorded by the run's ``TraceCollector`` as callbacks;
an SDK call is recorded by the wrapper itself, in the same shapes (an ``llm`` record and an
ObservedCall).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from langchain_core.prompt_values import PromptValue

from gepa_graph.integrations.langgraph import boundary
from gepa_graph.integrations.langgraph._internals import (
    langchain_models,
    patching,
    run_context,
    sdk,
)
from gepa_graph.integrations.langgraph.tracing import TraceCollector

_disabled = False


def install() -> None:
    """Put the rewrite and the recording on every model call path (idempotent)."""
    if _disabled:
        return
    langchain_models.install_input_hook(_rewrite_langchain_input)
    sdk.install_sdk_hook(_sdk_call)
    run_context.propagate_context(_in_run)


def _in_run() -> bool:
    """Whether the running runnable belongs to a run whose model calls are rewritten."""
    return boundary.active() is not None


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Every patched method put back, and ``install`` a no-op, while inside (benchmarks time
    a rollout without the layer); installed again on the way out."""
    global _disabled
    patching.unpatch_all()
    _disabled = True
    try:
        yield
    finally:
        _disabled = False
        install()


def _rewrite_langchain_input(
    value: PromptValue, configurable: Mapping[str, Any]
) -> PromptValue | None:
    substitution = boundary.active(configurable)
    return None if substitution is None else substitution.rewrite(value)


def _sdk_call(
    entry: str, kind: str, kwargs: dict[str, Any], *, rewrite: bool
) -> tuple[dict[str, Any], sdk.Finish | None]:
    config = run_context.current_config()
    substitution = boundary.active(config.get("configurable") or {})
    if substitution is None:
        return kwargs, None
    if rewrite:
        kwargs = sdk.rewrite_request(kind, kwargs, substitution.rewrite_text)
    collector = next(
        (h for h in run_context.config_handlers(config) if isinstance(h, TraceCollector)), None
    )
    if collector is None:  # a with_prompts run: rewritten, nothing to record into
        return kwargs, None
    model = kwargs.get("model")
    finish = collector.record_sdk_call(
        entry,
        sdk.request_messages(kind, kwargs),
        model=model if isinstance(model, str) else None,
        metadata=config.get("metadata"),
        parent_run_id=run_context.config_parent_run_id(config),
    )

    def done(result: Any, error: BaseException | None) -> None:
        if error is not None or kwargs.get("stream"):
            finish(None, None, None, error)
            return
        finish(
            sdk.response_message(kind, result),
            sdk.response_usage(result),
            sdk.response_model(result),
            None,
        )

    return kwargs, done
