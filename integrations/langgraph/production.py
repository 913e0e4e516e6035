"""Prompts used outside optimization: a copy of a graph running other prompts
(``with_prompts``), prompts written into a graph and the objects it uses (``apply``), and
file-based prompts written to copies of their files (``export``).

Each works from the prompts the graph's code holds and what a probe run in this process made of
the graph (``probe.probed_slots``), or what the caller's system saw (``observed``).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any, cast

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.pregel import Pregel

from gepa_graph.errors import UnknownName, WrongType
from gepa_graph.integrations.langgraph import boundary, intercept
from gepa_graph.integrations.langgraph import store_prompts as in_store
from gepa_graph.integrations.langgraph._internals import graphs
from gepa_graph.integrations.langgraph.discover import PromptSlot, ensure_compiled, find_slots
from gepa_graph.integrations.langgraph.leaves import CannotWriteInPlace, FileLeaf
from gepa_graph.integrations.langgraph.probe import probed_slots


def _check_names(slots: Mapping[str, PromptSlot], prompts: Mapping[str, str]) -> None:
    unknown = sorted(set(prompts) - set(slots))
    if unknown:
        raise UnknownName(f"unknown prompt module(s) {unknown}; the graph has {sorted(slots)}")
    for name, text in prompts.items():
        if not isinstance(text, str):
            raise WrongType(f"prompt {name!r} must be a str, got {type(text).__name__}")


def _with_substitution(
    config: Mapping[str, Any] | None, slots: Mapping[str, PromptSlot], prompts: Mapping[str, str]
) -> RunnableConfig:
    """``config`` with a Substitution for ``prompts`` added to the one it may carry."""
    config = dict(config or {})
    configurable = dict(config.get("configurable") or {})
    previous = configurable.get(boundary.CONFIG_KEY)
    texts = dict(previous.prompts) if isinstance(previous, boundary.Substitution) else {}
    texts.update(prompts)
    specs = {name: slots[name].spec for name in texts if name in slots}
    configurable[boundary.CONFIG_KEY] = boundary.Substitution(specs, texts)
    config["configurable"] = configurable
    return cast(RunnableConfig, config)


def _slots_of(
    graph: Runnable,
    declared: Mapping[str, str] | None,
    observed: Mapping[str, PromptSlot] | None,
) -> dict[str, PromptSlot]:
    """The prompts of ``graph`` its code holds, and what a probe run of it (this process's,
    or ``observed``) made of them: the names it gave, and instructions found nowhere in it."""
    slots = find_slots(graph, declared)
    return {**slots, **probed_slots(graph), **(observed or {})}


def with_prompts(
    graph: Runnable,
    prompts: Mapping[str, str],
    declared: Mapping[str, str] | None = None,
    observed: Mapping[str, PromptSlot] | None = None,
) -> Runnable:
    """A copy of ``graph`` that runs ``prompts`` (module -> text); the original is left alone.

    Works for every kind of prompt, exactly as rollouts substitute them: the copy's config
    carries the texts, which reach every model call the copy's runs make. ``observed``: the
    modules a probe run found with no home in the code (``LangGraphSystem``'s).
    """
    intercept.install()
    graph = ensure_compiled(graph)
    slots = _slots_of(graph, declared, observed)
    _check_names(slots, prompts)
    if isinstance(graph, Pregel):
        return graphs.copy_graph(graph, config=_with_substitution(graph.config, slots, prompts))
    return graph.with_config(_with_substitution(None, slots, prompts))


def apply(
    graph: Runnable,
    prompts: Mapping[str, str],
    declared: Mapping[str, str] | None = None,
    observed: Mapping[str, PromptSlot] | None = None,
    store: Any = None,
) -> dict[str, str]:
    """Write ``prompts`` into ``graph`` and the objects it uses, in place; module -> where.

    Templates and messages change where they are, closure variables, module constants and
    attributes and object attributes are reassigned, configuration and context classes get new
    field defaults. Prompts with no such place (string literals in a function, ``gg.prompt``
    calls, files, instructions a probe run found nowhere in the code) go into
    ``graph.config``, which LangGraph merges into every run of this graph object; a wrapper
    that is not a compiled graph has no such config (use ``with_prompts``). Store prompts
    (``store_prompts``) are written into ``store`` when one is given (only the items whose
    text changes), else carried in ``graph.config`` like the others.
    """
    intercept.install()
    graph = ensure_compiled(graph)
    written: dict[str, str] = {}
    if store is not None:
        written.update(in_store.write(store, prompts))
        prompts = {n: t for n, t in prompts.items() if in_store.StorePrompt.parse(n) is None}
    slots = _slots_of(graph, declared, observed)
    _check_names(slots, prompts)
    carried: dict[str, str] = {}
    for name, text in prompts.items():
        slot = slots[name]
        if text == slot.text:
            continue
        try:
            slot.leaf.write(text)
            written[name] = slot.where
        except CannotWriteInPlace:
            carried[name] = text
            written[name] = "graph.config (no place in the code to write it)"
    if carried:
        if not isinstance(graph, Pregel):
            raise WrongType(
                f"prompt(s) {sorted(carried)} have no place in the code of this "
                f"{type(graph).__name__} to write them; run with_prompts(graph, prompts) instead"
            )
        graph.config = _with_substitution(graph.config, slots, carried)
    return written


def export(
    slots: Mapping[str, PromptSlot], prompts: Mapping[str, str], directory: Any
) -> dict[str, str]:
    """Write the text of each file-based prompt in ``prompts`` to a file of the same name
    under ``directory`` (created); module -> the path written. The user's files stay as they
    are: copy the ones you want over them."""
    target = pathlib.Path(directory)
    written: dict[str, str] = {}
    for name, text in prompts.items():
        slot = slots.get(name)
        if slot is None or not isinstance(slot.leaf, FileLeaf):
            continue
        target.mkdir(parents=True, exist_ok=True)
        path = target / slot.leaf.path.name
        path.write_text(text, encoding="utf-8")
        written[name] = str(path)
    return written
