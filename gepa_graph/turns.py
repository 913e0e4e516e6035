"""The order in which the engine's concurrent steps acted, journaled so a resumed run replays it.

The steady-state engine keeps many proposals in flight. Each one acts on the search (reads the
pool, draws a reflection, admits a child) when its rollouts come back, so the trajectory depends
on completion order, which depends on timing. Every such step first takes a *turn*, named by
its owner and step number (``"7.2"``: proposal 7, its third step). A live run appends each turn
to the journal as it is taken. A resumed run makes each step wait until the journal says it is
its turn: the killed run's interleaving comes back exactly while its rollouts and reflections
come from the journal, and the run goes on live from the state it had.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from gepa_graph.journal import Journal

log = logging.getLogger("gepa_graph")


@dataclass
class _Owner:
    name: str
    steps: int = 0


_owner: contextvars.ContextVar[_Owner | None] = contextvars.ContextVar(
    "gepa_graph_turn_owner", default=None
)


class Turns:
    """The turn order of one run: in a live run it journals each step's label as the step
    takes its turn; in a resumed run it holds back each step until the journaled order
    (``journaled``, the killed run's turn labels) reaches it, then goes on live."""

    def __init__(self, journal: Journal, journaled: Iterable[str] = ()) -> None:
        self._journal = journal
        self._log = deque(journaled)
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def replaying(self) -> bool:
        """True while the journal still holds steps of the killed run to replay."""
        return bool(self._log)

    @property
    def next_owner(self) -> str | None:
        """Who takes the next journaled step (a proposal's iteration, ``plan``, ``seed``)."""
        return _owner_of(self._log[0]) if self._log else None

    @property
    def next(self) -> str | None:
        """The label of the journaled step due next in a replay (e.g. ``"plan.3"``, ``"7.2"``);
        None once the replay is over or in a live run."""
        return self._log[0] if self._log else None

    @staticmethod
    def own(name: str) -> None:
        """Name the steps the current task (and what it awaits) takes from now on."""
        _owner.set(_Owner(name))

    def label(self, name: str | None = None) -> str:
        """The current task's next step label (or ``name`` itself for a one-off step)."""
        if name is not None:
            return name
        owner = _owner.get()
        if owner is None:
            raise RuntimeError("a step was taken outside any named task")
        label = f"{owner.name}.{owner.steps}"
        owner.steps += 1
        return label

    async def take(self, name: str | None = None) -> None:
        """Wait for this step's turn (replay) or record it (live)."""
        label = self.label(name)
        while self._log and self._log[0] != label:
            if _owner_of(self._log[0]) == _owner_of(label):
                self.diverge(f"step {label} came where the journal has {self._log[0]}")
                break
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        if self._log:
            self._log.popleft()
            self._wake()
        else:
            self._journal.record_turn(label)

    def diverge(self, why: str) -> None:
        """Stop replaying: this run no longer takes the killed run's steps (a budget or other
        setting changed on resume). Journaled rollouts and reflections are still reused; only
        the order of steps is no longer the killed run's."""
        log.warning(
            "resumed run leaves the journal's order of steps (%s); it goes on live, "
            "reusing every rollout and reflection already paid for",
            why,
        )
        self._log.clear()
        self._wake()

    def changed(self) -> asyncio.Future[None]:
        """A future done when the replay moves on by one step (registered now, so a step
        taken before the caller awaits it is not missed)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _owner_of(label: str) -> str:
    return label.rsplit(".", 1)[0]
