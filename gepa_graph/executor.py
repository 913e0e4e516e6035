"""Where rollouts run: the seam between the evaluator and the process that runs a System.

The evaluator decides what runs, when, how often and for how long (concurrency, retries,
timeouts, the budget, the cache, the journal); an Executor only carries one rollout to where it
runs and its Rollout back. ``LocalExecutor`` runs it in this process, on the optimizer's own
event loop; ``gepa_graph.integrations.ray.RayExecutor`` runs it as a Ray task on a cluster.
Results do not depend on the executor, so it is no part of a run's resume fingerprint.

``import_object`` resolves a ``"package.module:attribute"`` path, the form in which a system
that does not pickle reaches other processes (each imports it itself).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from gepa_graph.errors import ImportPathError
from gepa_graph.system import Rollout, System


@runtime_checkable
class Executor(Protocol):
    """Runs one rollout of a System somewhere and returns its Rollout.

    ``prepare(system, source)`` is called once per system before any paid call: it raises a
    one-line GepaGraphError when the system cannot reach the place rollouts run (``source`` is
    the system's import path when it was given as one, else None). ``run`` may be cancelled
    (a rollout past its time limit): it then stops the remote work it started. ``close``
    releases what the executor holds; the optimizer calls it when the run ends.
    """

    def prepare(self, system: System, source: str | None = None) -> None:
        """Check, before any paid call, that ``system`` can run where rollouts run."""

    async def run(self, system: System, prompts: Mapping[str, str], example: Any) -> Rollout:
        """One rollout of ``system`` with ``prompts`` on ``example``."""

    def close(self) -> None:
        """Release workers and connections."""


class LocalExecutor:
    """Rollouts run in this process, on the optimizer's event loop (the default)."""

    def prepare(self, system: System, source: str | None = None) -> None:
        """Nothing to check: the system is already here."""

    async def run(self, system: System, prompts: Mapping[str, str], example: Any) -> Rollout:
        """``system.arun(prompts, example)``, awaited here."""
        return await system.arun(prompts, example)

    def close(self) -> None:
        """Nothing to release."""


def import_object(path: str) -> Any:
    """The object at ``"package.module:attribute"`` (the attribute may be dotted); one-line
    ImportPathError when the path is malformed, the module does not import or lacks it."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name.strip() or not attribute.strip() or ":" in attribute:
        raise ImportPathError(
            f"a system given as a string must be an import path 'package.module:attribute' "
            f"(e.g. 'my_pkg.agent:graph'), got {path!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ModuleNotFoundError, or the module itself raising
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise ImportPathError(
            f"cannot import module {module_name!r} of {path!r}: {type(exc).__name__}: {text}"
        ) from None
    try:
        return attribute_at(module, attribute)
    except AttributeError:
        raise ImportPathError(
            f"cannot import {path!r}: {module_name} has no attribute {attribute!r}"
        ) from None


def attribute_at(value: Any, dotted: str) -> Any:
    """``value.a.b`` for ``dotted`` "a.b"; AttributeError when a part is missing."""
    for part in dotted.split("."):
        value = getattr(value, part)
    return value
