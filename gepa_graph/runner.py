"""The steady-state scheduler: keeps rollout slots busy with work, one task per piece.

Instead of rounds that wait for their slowest member, the runner keeps up to ``concurrency``
rollouts in flight: whenever a slot frees it asks for the next work (the engine asks its
proposers, from the pool as it is at that moment) and runs it as a task that settles on its own.
Each start takes a journaled turn (``plan.0``, ``plan.1``, ...), so a resumed run starts the same
work at the same points; it knows nothing of what the work does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from gepa_graph.config import OptimizeConfig
from gepa_graph.evaluation import Evaluator
from gepa_graph.turns import Turns

# A proposal starts beside others already in flight only once they have run this long without
# ending: work that finishes fast (a quick system, a cached minibatch) then goes one proposal
# at a time, each seeing the last one's outcome, as sequential GEPA does; slow rollouts (a
# remote LLM) fill the free slots after this short wait.
OVERLAP_AFTER_S = 0.1

Task = Coroutine[Any, Any, None]
# Given whether nothing else is in flight: the next work's name and coroutine, or None.
NextWork = Callable[[bool], "tuple[str, Task] | None"]


class Runner:
    """Runs work in flight for one run: ``next_work`` plans it, ``stop_reason`` ends the run."""

    def __init__(
        self,
        config: OptimizeConfig,
        evaluator: Evaluator,
        turns: Turns,
        next_work: NextWork,
        stop_reason: Callable[[], str | None],
    ) -> None:
        self.concurrency = config.concurrency
        self.evaluator = evaluator
        self.turns = turns
        self._next_work = next_work
        self._stop_reason = stop_reason
        # Proposals in flight at most: by default enough for half the slots to run minibatches
        # while the rest validate (benchmarks/concurrency_quality.py: more in flight buys wall
        # time with rollouts, since proposals from a pool about to change repeat each other);
        # 1 is the sequential GEPA loop.
        self.cap = config.parallel_proposals or max(
            1, math.ceil(config.concurrency / (2 * config.minibatch_size))
        )
        self._plans = 0  # planning steps taken (their turns are plan.0, plan.1, ...)
        self._slot_waiters: list[asyncio.Future[None]] = []
        evaluator.on_rollout_done.append(self._on_rollout_done)

    async def run(self) -> str:
        """Keep up to ``concurrency`` rollouts in flight: start work whenever a slot is free
        and fewer than ``cap`` are running; work that ended is replaced at once, and work
        starts beside others only once they outlast OVERLAP_AFTER_S. Returns why the run
        stopped."""
        tasks: dict[asyncio.Task[None], str] = {}
        blocked = False  # nothing worth starting fit: wait for work in flight to end
        owed = 0  # work that ended and is not yet replaced
        burst = False  # work in flight outlasted OVERLAP_AFTER_S: fill the free slots now
        last_start = -math.inf
        clock = asyncio.get_running_loop()
        try:
            while True:
                ended = _reap(tasks)
                if ended:
                    blocked, owed = False, owed + ended
                label = f"plan.{self._plans}"
                if self.turns.replaying:
                    if self.turns.next == label:
                        await self._start_next(tasks, label)
                    elif self.turns.next_owner not in tasks.values():
                        self.turns.diverge(
                            f"the journal's step {self.turns.next} belongs to no work in flight"
                        )
                    else:
                        await _first_of(tasks, self.turns.changed())
                    continue
                stop = self._stop_reason()
                wait = None
                if stop is not None:
                    if not tasks:
                        return stop
                elif (
                    not blocked
                    and len(tasks) < self.cap
                    and self.evaluator.pending < self.concurrency
                ):
                    overlap = bool(tasks) and (
                        burst or clock.time() - last_start >= OVERLAP_AFTER_S
                    )
                    if not tasks or owed or overlap:
                        if await self._start_next(tasks, label):
                            last_start = clock.time()
                            burst, owed = overlap and not owed, max(owed - 1, 0)
                            continue
                        if not tasks:
                            return "max_rollouts"
                        blocked = True
                    else:
                        # At least a nanosecond: a wait the clock cannot resolve (float
                        # rounding on a virtual clock) would wake the loop without time moving.
                        wait = max(OVERLAP_AFTER_S - (clock.time() - last_start), 1e-9)
                burst = False
                await _first_of(tasks, self._slot_freed(), wait)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _start_next(self, tasks: dict[asyncio.Task[None], str], label: str) -> bool:
        """Take the planning turn and start the next work as a task under its name; False if
        there is none that fits."""
        await self.turns.take(label)
        self._plans += 1
        work = self._next_work(not tasks)
        if work is None:
            return False
        name, coroutine = work
        tasks[asyncio.create_task(coroutine)] = name
        return True

    def _slot_freed(self) -> asyncio.Future[None]:
        """A future done when the next rollout frees its slot."""
        future = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(future)
        return future

    def _on_rollout_done(self) -> None:
        waiters, self._slot_waiters = self._slot_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)


def _reap(tasks: dict[asyncio.Task[None], str]) -> int:
    """Forget finished work (how many ended); an error in one (a bug, an interrupt) stops
    the run."""
    done = [t for t in tasks if t.done()]
    for task in done:
        del tasks[task]
        if not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error
    return len(done)


async def _first_of(
    tasks: dict[asyncio.Task[None], str],
    signal: Awaitable[None],
    timeout: float | None = None,
) -> None:
    """Wait until some work in flight finishes or ``signal`` fires (or ``timeout`` passes)."""
    waiter = asyncio.ensure_future(signal)
    try:
        await asyncio.wait([*tasks, waiter], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
