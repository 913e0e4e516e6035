"""Calling user code that may misbehave: raise anything, never return, return a coroutine.

A thread cannot be killed, so a sync call that blocks forever is abandoned rather than joined:
it runs on a daemon thread of ``DaemonExecutor``, and a time limit stops the wait, not the
thread; past ``MAX_ABANDONED_CALLS`` such threads the run stops (``HungThreads``) before the
process runs out of threads. Async code that blocks (``time.sleep`` in an ``async def``) blocks
the event loop, and with it every time limit: ``run_watched`` runs the loop on a thread of its
own and watches it from the caller's, stopping the run (``LoopBlocked``, naming the function)
once the loop misses a deadline it must enforce; the caller's thread also takes Ctrl-C, which
cancels the run so it checkpoints. Exceptions that cannot cross an asyncio Future (``StopIteration``) or that would pass
for a cancellation or an exit (``CancelledError``, ``SystemExit``) become a plain
``UserCodeError`` so the caller can score them like any other failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import inspect
import queue
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from gepa_graph.errors import HungThreads, LoopBlocked

# Calls of user code abandoned at their time limit that may still hold a thread, at most: one
# more and the run stops with HungThreads (a process has a thread limit; 100 is not rare).
MAX_ABANDONED_CALLS = 32
# How long past a time limit it must enforce the event loop may stay unresponsive before the
# run stops with LoopBlocked (generous: a busy machine delays a loop, it does not stop it).
LOOP_GRACE_S = 5.0
# After Ctrl-C the run cancels its work and checkpoints, however long that takes on a busy
# machine; the caller stops waiting only once the loop has not answered for this long (it is
# blocked), or at a second Ctrl-C.
INTERRUPT_GRACE_S = 10.0


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


def _guarded(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """In any executor: what cannot cross a Future (StopIteration) arrives as UserCodeError."""
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        tamed = _tame(exc)
        if tamed is exc:
            raise
        raise tamed from None


class _Call(concurrent.futures.Future[Any]):
    """A call's future that remembers a cancel: asyncio cancels it when the awaiting side gave
    up (a time limit), which for a running call means its thread is abandoned."""

    abandoned = False

    def cancel(self) -> bool:
        self.abandoned = True
        return super().cancel()


# A call handed to a DaemonExecutor's thread: its future, the function and its arguments.
_Work = tuple[_Call, Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def _run(
    future: _Call, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
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
    that never returns cannot hang ``optimize()`` or the interpreter's exit.

    Calls abandoned at their time limit keep their threads; once more than ``max_abandoned``
    are still running, or a thread cannot be started, ``failure`` says why and ``check``
    (``check_threads`` in a run) raises HungThreads, so the run stops in one line."""

    def __init__(
        self, name: str = "gepa-graph", idle_s: float = 5.0, max_abandoned: int | None = None
    ) -> None:
        super().__init__(max_workers=1, thread_name_prefix=name)  # its own pool stays unused
        self._name = name
        self._idle_s = idle_s
        self._idle: list[tuple[queue.SimpleQueue[_Work | None], threading.Thread]] = []
        self._guard = threading.Lock()
        self._closed = False
        self._started = 0
        self._running: set[_Call] = set()
        self.max_abandoned = MAX_ABANDONED_CALLS if max_abandoned is None else max_abandoned
        self.failure: str | None = None

    def abandoned(self) -> int:
        """Calls given up on (cancelled at a time limit) whose threads still run them."""
        return sum(1 for call in list(self._running) if call.abandoned)

    def check(self) -> None:
        """Raise HungThreads once too many abandoned calls hold threads (see the class)."""
        if self.failure is None and self.abandoned() > self.max_abandoned:
            self.failure = (
                f"{self.abandoned()} calls of user code never returned after their time limit "
                f"(more than {self.max_abandoned}); their threads cannot be stopped, so the run "
                "stops before the process runs out of threads: fix the call that blocks (see "
                "the RolloutTimeout errors in the journal), then resume"
            )
        if self.failure is not None:
            raise HungThreads(self.failure)

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        self.check()
        future = _Call()
        work: _Work = (future, fn, args, kwargs)
        with self._guard:
            if self._closed:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._running.add(future)
            if self._idle:
                self._idle.pop()[0].put(work)
                return future
            self._started += 1
            name = f"{self._name}-{self._started}"
        inbox: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        inbox.put(work)
        try:
            threading.Thread(target=self._work, args=(inbox,), name=name, daemon=True).start()
        except RuntimeError as exc:  # "can't start new thread": the process's limit
            self._running.discard(future)
            self.failure = (
                f"cannot start a thread ({exc}) with {self.abandoned()} held by calls of user "
                "code that never returned after their time limit: fix the call that blocks "
                "(see the RolloutTimeout errors in the journal), then resume"
            )
            raise HungThreads(self.failure) from None
        return future

    def _work(self, inbox: queue.SimpleQueue[_Work | None]) -> None:
        me = (inbox, threading.current_thread())
        work = inbox.get()
        while work is not None:
            _run(*work)
            self._running.discard(work[0])
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


def _abandon(task: asyncio.Future[Any]) -> None:
    task.cancel()
    # An abandoned call's late failure is not an "exception never retrieved".
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


_T = TypeVar("_T")


async def run_bounded(awaitable: Awaitable[_T], timeout: float | None) -> asyncio.Future[_T] | None:
    """Run ``awaitable`` for at most ``timeout`` seconds. Returns the finished task (read its
    ``cancelled()``, ``exception()``, ``result()``), or None when time ran out: the task is then
    cancelled and abandoned, never awaited, since code that ignores cancellation (or a thread
    behind it) may never return. If the caller itself is cancelled, so is the task. Under
    ``run_watched`` the deadline is registered, so a loop too blocked to keep it is noticed."""
    task = asyncio.ensure_future(awaitable)
    watch = _WATCH.get()
    if watch is not None and timeout is not None:
        watch.deadlines[id(task)] = time.monotonic() + timeout
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:
        _abandon(task)
        raise
    finally:
        if watch is not None:
            watch.deadlines.pop(id(task), None)
    if not done:
        _abandon(task)
        return None
    return task


@contextlib.contextmanager
def loop_deadline(seconds: float | None) -> Iterator[None]:
    """Under ``run_watched``, a time limit the loop must stay responsive to while the block
    runs, without cutting the block off: a loop blocked past it stops the run (LoopBlocked)."""
    watch = _WATCH.get()
    if watch is None or seconds is None:
        yield
        return
    key = object()
    watch.deadlines[id(key)] = time.monotonic() + seconds
    try:
        yield
    finally:
        watch.deadlines.pop(id(key), None)


def check_threads() -> None:
    """Raise HungThreads when the run's DaemonExecutor has too many abandoned calls (a no-op
    outside ``run_watched``)."""
    watch = _WATCH.get()
    if watch is not None:
        watch.threads.check()


class _Watch:
    """What the caller's thread knows of the loop it watches: when the loop last answered, the
    deadlines of the bounded calls in flight, the run's task and its DaemonExecutor."""

    def __init__(self, name: str) -> None:
        self.answered = time.monotonic()
        self.deadlines: dict[int, float] = {}
        self.threads = DaemonExecutor(name)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.thread: threading.Thread | None = None

    def ping(self) -> None:
        """Ask the loop to answer (a no-op once it is closed)."""
        if self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._answer)
            except RuntimeError:
                pass

    def _answer(self) -> None:
        self.answered = time.monotonic()

    def cancel(self) -> None:
        """Cancel the run's task from the caller's thread."""
        if self.loop is not None and self.task is not None:
            try:
                self.loop.call_soon_threadsafe(self.task.cancel)
            except RuntimeError:
                pass

    def blocked(self) -> str | None:
        """Why the run must stop when the loop is unresponsive past a deadline, else None."""
        now = time.monotonic()
        deadline = min(list(self.deadlines.values()), default=None)
        silent = now - self.answered
        if deadline is None or silent <= LOOP_GRACE_S or now - deadline <= LOOP_GRACE_S:
            return None
        return (
            f"the event loop has been blocked for {silent:.0f}s, past a time limit it must "
            f"enforce, by {_blocking_function(self.thread)}: an async function that makes a "
            "blocking call (time.sleep, a sync HTTP client) stops every rollout; await the "
            "async form (asyncio.sleep, an async client) or make it a plain def, which runs on "
            "a thread where a time limit can cut it off"
        )


_WATCH: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar(
    "gepa_graph_watch", default=None
)


def _blocking_function(thread: threading.Thread | None) -> str:
    """The innermost async function on ``thread``'s stack: the one that made a blocking call."""
    frame = sys._current_frames().get(thread.ident) if thread and thread.ident else None
    while frame is not None:
        code = frame.f_code
        if code.co_flags & inspect.CO_COROUTINE:
            return f"{code.co_qualname} ({code.co_filename}:{frame.f_lineno})"
        frame = frame.f_back
    return "code on the event loop"


def run_watched(coroutine: Coroutine[Any, Any, Any], name: str = "gepa-graph") -> Any:
    """Run ``coroutine`` to its end on a new event loop in a daemon thread, while the calling
    thread watches: LoopBlocked when the loop stays blocked past a deadline of ``run_bounded``
    (the loop thread is then abandoned), KeyboardInterrupt after Ctrl-C once the coroutine,
    cancelled, has finished (or once the loop is unresponsive for INTERRUPT_GRACE_S, or at a
    second Ctrl-C). The loop's
    default executor is a DaemonExecutor (LangGraph runs sync nodes there), whose threads are
    never joined."""
    watch = _Watch(name)
    outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()

    async def owned() -> Any:
        _WATCH.set(watch)
        asyncio.get_running_loop().set_default_executor(watch.threads)
        watch.task = asyncio.current_task()
        return await coroutine

    def main() -> None:
        with asyncio.Runner() as runner:
            watch.loop = runner.get_loop()
            # The outcome is known before the runner closes: closing waits for abandoned
            # tasks to take their cancellation, which code that ignores it never does.
            try:
                outcome.set_result(runner.run(owned()))
            except BaseException as exc:
                outcome.set_exception(exc)

    watch.thread = threading.Thread(target=main, name=f"{name}-loop", daemon=True)
    watch.thread.start()
    interrupted: float | None = None
    while True:
        try:  # Ctrl-C lands anywhere in this loop
            try:
                return outcome.result(timeout=0.25)
            except concurrent.futures.TimeoutError:
                pass
            except (asyncio.CancelledError, concurrent.futures.CancelledError):
                if interrupted is None:
                    raise
                raise KeyboardInterrupt from None
            if interrupted is not None:
                if time.monotonic() - max(interrupted, watch.answered) > INTERRUPT_GRACE_S:
                    raise KeyboardInterrupt
            why = watch.blocked()
            if why is not None:
                raise LoopBlocked(why)
            watch.ping()
        except KeyboardInterrupt:
            if interrupted is not None:
                raise
            interrupted = time.monotonic()
            watch.cancel()
