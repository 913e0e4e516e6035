"""A deterministic clock for tests of concurrent optimizations.

``run_on_virtual_clock(coroutine)`` runs it on an event loop whose clock only moves when every
task is waiting on a timer: ``asyncio.sleep(0.5)`` returns at once, yet in the order real time
would give, so rollouts with different latencies finish in a fixed order and a concurrent run
is reproducible to the event. It holds for code that waits only through asyncio (async systems,
metrics and reflection LMs); work running in a thread finishes in real time, which this clock
does not see.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _VirtualSelector(selectors.DefaultSelector):
    """Never blocks while a timer is due: it moves the loop's clock to it instead."""

    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list:
        events = super().select(0)
        if events or timeout is None:
            return events or super().select(timeout)
        self._loop.now += max(timeout, 0.0)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time (seconds from 0), advanced only by waiting on timers."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_VirtualSelector(self))

    def time(self) -> float:
        return self.now


def run_on_virtual_clock(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion on a fresh VirtualClockLoop and close it."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
