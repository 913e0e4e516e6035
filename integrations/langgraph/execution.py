"""Run the graph the way it runs: async (``ainvoke``), or sync (``invoke``) where a part of it
supports only that.

Rollouts use ``ainvoke``. A graph with a part that implements only the sync path -- a
``create_agent`` middleware with ``wrap_model_call`` and no ``awrap_model_call``, a store with no
``abatch`` -- works under ``invoke`` yet fails every async run with ``NotImplementedError``.
``LangGraphSystem(execution="auto")`` (the default) sees that failure on the first rollout (the
probe, when there is one), runs the rollout again with ``invoke`` on a worker thread, and keeps
doing so; ``execution="sync"`` chooses it up front. A graph that supports neither fails with an
error naming the part that refused each path.
"""

from __future__ import annotations

import re

from gepa_graph.errors import InvalidInput
from gepa_graph.usercode import describe

MODES = ("auto", "async", "sync")
_NO_SYNC_FUNCTION = "No synchronous function provided"  # LangGraph, an async-only node
_TASK_NOTE = re.compile(r"During task with name '([^']+)'")  # LangGraph's note on a node error


def execution_mode(value: str) -> str:
    """``LangGraphSystem(execution=...)``, checked."""
    if value not in MODES:
        raise InvalidInput(f"execution must be one of {list(MODES)}, got {value!r}")
    return value


def cannot_run_async(failure: BaseException | None) -> bool:
    """Whether a run failed because a part of the graph has no async implementation."""
    return isinstance(_unsupported(failure), NotImplementedError)


def cannot_run_sync(failure: BaseException | None) -> bool:
    """Whether a run failed because a part of the graph has no sync implementation."""
    cause = _unsupported(failure)
    return isinstance(cause, NotImplementedError) or (
        isinstance(cause, TypeError) and str(cause).startswith(_NO_SYNC_FUNCTION)
    )


def component(failure: BaseException) -> str:
    """The part of the graph that raised ``failure``: the object whose method raised it
    (``Redact.awrap_model_call``) and the node it ran in, else the error itself."""
    cause = _unsupported(failure) or failure
    tb = cause.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    name = None
    if tb is not None and (owner := tb.tb_frame.f_locals.get("self")) is not None:
        name = f"{type(owner).__name__}.{tb.tb_frame.f_code.co_name}"
    notes = [
        m.group(1) for note in getattr(cause, "__notes__", ()) if (m := _TASK_NOTE.search(note))
    ]
    where = f" in node {notes[-1]!r}" if notes else ""
    if name is None:
        return f"{describe(cause).splitlines()[0][:160]}{where}"
    return f"{name}{where}"


def switched_message(failure: BaseException) -> str:
    """What the user is told once when rollouts move to ``invoke``."""
    return (
        f"{component(failure)} has no async implementation; rollouts run the graph with "
        'invoke() on worker threads (LangGraphSystem(graph, execution="sync") says so up front)'
    )


def neither_message(async_failure: BaseException, sync_failure: BaseException) -> str | None:
    """The rollout error of a graph that runs neither async nor sync; None when the same part
    raised both times (a plain error of the graph's, not a missing implementation)."""
    if component(async_failure) == component(sync_failure):
        return None
    return (
        f"the graph runs neither with ainvoke() ({component(async_failure)} has no async "
        f"implementation) nor with invoke() ({component(sync_failure)} has no sync one)"
    )


def _unsupported(failure: BaseException | None) -> BaseException | None:
    """``failure`` or the exception it was raised from: a NotImplementedError or TypeError."""
    seen = 0
    while failure is not None and seen < 10:
        if isinstance(failure, NotImplementedError | TypeError):
            return failure
        failure = failure.__cause__ or failure.__context__
        seen += 1
    return None
