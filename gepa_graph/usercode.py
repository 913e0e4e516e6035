"""Calling user code that may misbehave: raise anything, never return, return a coroutine.

A thread cannot be killed, so a sync call that blocks forever is abandoned rather than joined:
it runs on a daemon thread of ``DaemonExecutor``, and a time limit stops the wait, not the
thread. Exceptions that cannot cross an asyncio Future (``StopIteration``) or that would pass
for a cancellation or an exit (``CancelledError``, ``SystemExit``) become a plain
``UserCodeError`` so the caller can score them like any other failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any


class UserCodeError(RuntimeError):
    """User code raised something that is not an ordinary Exception (StopIteration,
    CancelledError, SystemExit, ...)."""


def describe(exc: BaseException) -> str:
    """``Type: message`` of any exception, even one whose ``str()`` raises."""
    try:
        text = str(exc)
    except Exception:
        text = "<its str() raised>"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _tame(exc: BaseException) -> BaseException:
    if isinstance(exc, StopIteration) or not isinstance(exc, Exception):
        return UserCodeError(f"{describe(exc)} (raised by user code)")
    return exc


def _guarded(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """In any executor: what cannot cross a Future (StopIteration) arrives as UserCodeError."""
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        tamed = _tame(exc)
        if tamed is exc:
            raise
        raise tamed from None


def _run(
    future: concurrent.futures.Future, fn: Callable[..., Any], args: tuple, kwargs: dict
) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = _guarded(fn, args, kwargs)
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)


class DaemonExecutor(concurrent.futures.ThreadPoolExecutor):
    """An executor whose every call runs on a daemon thread (idle threads are reused and exit
    after ``idle_s``). ``shutdown`` never waits for a call that is still running, so a call
    that never returns cannot hang ``optimize()`` or the interpreter's exit."""

    def __init__(self, name: str = "gepa-graph", idle_s: float = 5.0) -> None:
        super().__init__(max_workers=1, thread_name_prefix=name)  # its own pool stays unused
        self._name = name
        self._idle_s = idle_s
        self._idle: list[tuple[queue.SimpleQueue, threading.Thread]] = []
        self._guard = threading.Lock()
        self._closed = False
        self._started = 0

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        work = (future, fn, args, kwargs)
        with self._guard:
            if self._closed:
                raise RuntimeError("cannot schedule new calls after shutdown")
            if self._idle:
                self._idle.pop()[0].put(work)
                return future
            self._started += 1
            name = f"{self._name}-{self._started}"
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        inbox.put(work)
        threading.Thread(target=self._work, args=(inbox,), name=name, daemon=True).start()
        return future

    def _work(self, inbox: queue.SimpleQueue) -> None:
        me = (inbox, threading.current_thread())
        work = inbox.get()
        while work is not None:
            _run(*work)
            work = None  # nothing of a finished call stays alive
            with self._guard:
                if self._closed:
                    return
                self._idle.append(me)
            try:
                work = inbox.get(timeout=self._idle_s)
            except queue.Empty:
                with self._guard:
                    if me in self._idle:
                        self._idle.remove(me)
                        return
                work = inbox.get()  # handed work just as the wait ended

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Idle threads exit now (joined when ``wait``); running calls are never waited for:
        they finish, or hang, on their own daemon threads."""
        with self._guard:
            self._closed = True
            idle, self._idle = self._idle, []
        for inbox, _ in idle:
            inbox.put(None)
        if wait:
            for _, thread in idle:
                thread.join()
        super().shutdown(wait=False)


def is_async_callable(fn: Any) -> bool:
    """Whether calling ``fn`` gives a coroutine (an async function, or an object with an
    async ``__call__``), so it is awaited rather than run on a thread."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 (the method itself, not callable())
    )


async def call_user(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn(*args, **kwargs)``: awaited if it is async (a coroutine function or an object
    with an async ``__call__``), else run in the loop's default executor (``optimize()``
    installs a DaemonExecutor there); a coroutine or other awaitable it returns is awaited
    too."""
    if is_async_callable(fn):
        value = fn(*args, **kwargs)
    else:
        loop = asyncio.get_running_loop()
        value = await loop.run_in_executor(None, _guarded, fn, args, kwargs)
    while inspect.isawaitable(value):
        value = await value
    return value


def _abandon(task: asyncio.Future) -> None:
    task.cancel()
    # An abandoned call's late failure is not an "exception never retrieved".
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


async def run_bounded(awaitable: Awaitable[Any], timeout: float | None) -> asyncio.Future | None:
    """Run ``awaitable`` for at most ``timeout`` seconds. Returns the finished task (read its
    ``cancelled()``, ``exception()``, ``result()``), or None when time ran out: the task is then
    cancelled and abandoned, never awaited, since code that ignores cancellation (or a thread
    behind it) may never return. If the caller itself is cancelled, so is the task."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:
        _abandon(task)
        raise
    if not done:
        _abandon(task)
        return None
    return task
