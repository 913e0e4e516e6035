"""Adapters: what a user passes (a System, a framework's object such as a compiled LangGraph
graph, an import path to either) becomes a ``BaseSystem`` here, and optimized prompts go back
into such an object here.

The core imports no framework: the composition root (``gepa_graph.api``) registers one
``Adapter`` per integrated framework when it is imported, and everything that resolves a
system -- ``optimize``, the Ray workers, the promotion gate, ``Result.apply`` -- comes here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from gepa_graph.errors import ConfigError, WrongType
from gepa_graph.executor import import_object
from gepa_graph.system import HOOKS, BaseSystem, Rollout, System


class Adapter(Protocol):
    """How gepa_graph reaches into one framework's objects (``kind`` names them in messages,
    e.g. "a compiled LangGraph graph")."""

    kind: str

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is one of this framework's objects."""
        ...

    def system(self, value: Any) -> BaseSystem:
        """The System that optimizes ``value``'s prompts."""
        ...

    def apply(
        self, target: Any, prompts: Mapping[str, str], seeds: Mapping[str, str], store: Any
    ) -> dict[str, str]:
        """Write ``prompts`` into ``target`` in place (``seeds``: the run's seed texts, for
        prompts the target's code does not show); module -> where it was written."""
        ...

    def export(
        self,
        target: Any | None,
        directory: str | Path,
        prompts: Mapping[str, str],
        seeds: Mapping[str, str],
    ) -> dict[str, str]:
        """Write the file-based prompts of ``prompts`` to copies under ``directory``; the files
        of ``target``, or with None of the objects probed in this process; module -> path."""
        ...

    def with_prompts(self, target: Any, prompts: Mapping[str, str]) -> Any:
        """A copy of ``target`` that runs ``prompts``; the original is left alone."""
        ...


_ADAPTERS: list[Adapter] = []


def register(adapter: Adapter) -> None:
    """Make ``adapter``'s framework one that ``as_system`` and ``Result.apply`` accept (once)."""
    if adapter not in _ADAPTERS:
        _ADAPTERS.append(adapter)


def adapter_for(value: object) -> Adapter | None:
    """The registered adapter that accepts ``value``, if any."""
    return next((adapter for adapter in _ADAPTERS if adapter.accepts(value)), None)


def _kinds() -> str:
    return ", ".join(adapter.kind for adapter in _ADAPTERS) or "no framework's object"


class _WithDefaults(BaseSystem):
    """A ``gg.System`` that does not subclass BaseSystem, given the hooks' defaults."""

    def __init__(self, system: System) -> None:
        self.system = system

    def modules(self) -> dict[str, str]:
        """The wrapped system's."""
        return self.system.modules()

    async def arun(self, candidate: Mapping[str, str], example: Any) -> Rollout:
        """The wrapped system's."""
        return await self.system.arun(candidate, example)


def as_system(value: Any) -> BaseSystem:
    """A BaseSystem as is; any other gg.System with the hooks' defaults; a framework's object
    adapted (a compiled LangGraph graph); anything else a one-line WrongType."""
    if isinstance(value, BaseSystem):
        return value
    if isinstance(value, System):
        hooks = [name for name in HOOKS if hasattr(value, name)]
        if hooks:
            raise WrongType(
                f"{type(value).__name__} defines {', '.join(hooks)} but does not subclass "
                "gg.BaseSystem, so they would never be called: subclass it"
            )
        return _WithDefaults(value)
    adapter = adapter_for(value)
    if adapter is not None:
        return adapter.system(value)
    raise WrongType(
        f"cannot optimize a {type(value).__name__}: pass {_kinds()}, a gg.System, or wrap a "
        "function with gg.FunctionSystem(modules=..., fn=...)"
    )


def system_from_path(path: str) -> BaseSystem:
    """The system at import path ``"package.module:attribute"``: a System or a framework's
    object, or a factory called with no arguments that returns one (so what does not pickle is
    built in each process that imports it). One-line GepaGraphError when it names nothing."""
    value = import_object(path)
    if callable(value) and not isinstance(value, System) and adapter_for(value) is None:
        try:
            value = value()
        except Exception as exc:
            text = " ".join(str(exc).split())
            raise ConfigError(
                f"the system factory {path!r} raised {type(exc).__name__}: {text}"
            ) from None
    try:
        return as_system(value)
    except TypeError as exc:
        raise ConfigError(f"{path!r}: {exc}") from None


def apply_prompts(
    target: Any,
    prompts: Mapping[str, str],
    seeds: Mapping[str, str] | None = None,
    store: Any = None,
) -> dict[str, str]:
    """Write ``prompts`` into ``target`` in place through its framework's adapter (what
    ``Result.apply`` does without a System); module -> where it was written."""
    adapter = adapter_for(target)
    if adapter is None:
        raise WrongType(
            f"cannot write prompts into a {type(target).__name__}: pass {_kinds()}, or the "
            "System that ran the optimization (result.apply(target, system=...)), or use "
            "result.best_candidate directly"
        )
    return adapter.apply(target, prompts, seeds or {}, store)


def export_prompts(
    target: Any | None,
    directory: str | Path,
    prompts: Mapping[str, str],
    seeds: Mapping[str, str],
) -> dict[str, str]:
    """Write the file-based prompts of ``prompts`` to copies of their files under
    ``directory`` (``Result.export`` without a System); module -> path written. The files are
    ``target``'s, or with None those of every object probed in this process whose prompt of
    that name has the seed text ``seeds`` gives."""
    if target is None:
        written: dict[str, str] = {}
        for adapter in _ADAPTERS:
            written.update(adapter.export(None, directory, prompts, seeds))
        return written
    owner = adapter_for(target)
    if owner is None:
        raise WrongType(
            f"cannot find the prompt files of a {type(target).__name__}: pass the graph or the "
            "System that ran the optimization"
        )
    return owner.export(target, directory, prompts, seeds)


def with_prompts(target: Any, prompts: Mapping[str, str]) -> Any:
    """A copy of ``target`` (a framework's object) that runs ``prompts``."""
    adapter = adapter_for(target)
    if adapter is None:
        raise WrongType(f"cannot run a {type(target).__name__} with other prompts: pass {_kinds()}")
    return adapter.with_prompts(target, prompts)
