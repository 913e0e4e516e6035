"""The config of the runnable now running (LangChain keeps it in a context variable), its
callback handlers, and that context carried into the thread pools and threads a run starts.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import threading
import typing
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables.config import var_child_runnable_config

from gepa_graph.integrations.langgraph._internals.patching import patch

# Set while ``ThreadPoolExecutor.submit`` runs: the worker threads it starts serve every later
# submission too, so they keep the context they would have had (see ``propagate_context``).
_IN_SUBMIT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "gepa_graph_in_submit", default=False
)


def propagate_context(inside: typing.Callable[[], bool]) -> None:
    """Run work handed to other threads inside a run in a copy of the handing thread's context
    (once), as LangChain's own executor does: a function given to a
    ``concurrent.futures.ThreadPoolExecutor`` (``submit``, hence ``map`` and
    ``loop.run_in_executor``) or a ``threading.Thread`` started while ``inside()`` holds
    (the running runnable's config carries a run whose calls are rewritten) sees that config,
    so the model calls it makes are rewritten and recorded. Elsewhere nothing changes; a pool's
    worker threads never keep a run's context (each submission brings its own)."""

    def submit(method: Any) -> Any:
        @functools.wraps(method)
        def entry(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            if _IN_SUBMIT.get() or not inside():
                return method(self, fn, *args, **kwargs)
            context = contextvars.copy_context()
            token = _IN_SUBMIT.set(True)
            try:
                return method(self, context.run, fn, *args, **kwargs)
            finally:
                _IN_SUBMIT.reset(token)

        return entry

    def start(method: Any) -> Any:
        @functools.wraps(method)
        def entry(self: Any) -> Any:
            if not _IN_SUBMIT.get() and inside():
                # An instance attribute: a subclass's own ``run`` is reached too.
                self.run = functools.partial(contextvars.copy_context().run, self.run)
            return method(self)

        return entry

    patch(concurrent.futures.ThreadPoolExecutor, "submit", submit)
    patch(threading.Thread, "start", start)


def current_config() -> Mapping[str, Any]:
    """The config of the runnable now running (node, tool, edge...), {} outside one.

    LangChain keeps the running runnable's config in a context variable that threads and tasks
    inherit; a model called inside a node function, a tool or a function they call sees it.
    """
    return var_child_runnable_config.get() or {}


def current_configurable() -> Mapping[str, Any]:
    """The ``configurable`` of the runnable now running, {} outside one."""
    return current_config().get("configurable") or {}


def config_handlers(config: Mapping[str, Any]) -> list[Any]:
    """The callback handlers of a run config (a list, or a callback manager's handlers)."""
    callbacks = config.get("callbacks")
    if isinstance(callbacks, list):
        return callbacks
    return list(getattr(callbacks, "handlers", None) or ())


def config_parent_run_id(config: Mapping[str, Any]) -> Any:
    """The run id of the runnable a config belongs to (its callback manager's parent run)."""
    return getattr(config.get("callbacks"), "parent_run_id", None)
