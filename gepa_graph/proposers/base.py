"""What the engine asks of a way of making children, and what they share.

A proposer plans one piece of work in the engine's main task (every random draw there, so a run
stays reproducible) and hands back the coroutine that runs it; the engine runs it as a task
beside the others in flight. Proposers act on the search only through what ``Search`` (the
engine) offers: ``evaluate`` (rollouts, then a journaled turn), ``admit`` (validation and the
pool), ``reject``, ``emit``, ``finished``. Two exist: reflective mutation (mutation.py) and
merge (merge.py).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from gepa_graph.engine import Engine


@runtime_checkable
class Proposer(Protocol):
    """One way of making children (a mutation, a merge)."""

    def start(
        self, search: Engine, room: int | None, alone: bool
    ) -> Coroutine[Any, Any, None] | None:
        """Plan one piece of work now and return the coroutine that runs it, or None when
        nothing worth starting fits: ``room`` is the rollouts work may still plan on (None:
        no rollout budget), ``alone`` whether nothing else is in flight."""


def shown(texts: dict[str, str]) -> str | None:
    """A proposal's text as a rejection records it: the module's text, or for a joint
    proposal each module's text under its name."""
    if not texts:
        return None
    if len(texts) == 1:
        return next(iter(texts.values()))
    return "\n\n".join(f"[{module}]\n{text}" for module, text in texts.items())
