"""Run a graph with other prompts: an isolated copy per candidate, or an explicit in-place write.

``substituted`` never mutates the user's graph: structural prompts (templates, messages, closure
and module strings) are replaced in a copy made by ``walk.Walker`` (only the objects on the way
to a changed prompt are copied), and ``gg.prompt`` prompts travel in the copy's config, which
LangGraph merges into every run. ``apply`` is the one in-place write (``Result.apply``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from gepa_graph.integrations.langgraph import _internals
from gepa_graph.integrations.langgraph.declared import CONFIG_KEY
from gepa_graph.integrations.langgraph.discover import PromptSlot, discover
from gepa_graph.integrations.langgraph.walk import Walker
from langgraph.pregel import Pregel


def _check_names(slots: Mapping[str, PromptSlot], prompts: Mapping[str, str]) -> None:
    unknown = sorted(set(prompts) - set(slots))
    if unknown:
        raise KeyError(f"unknown prompt module(s) {unknown}; the graph has {sorted(slots)}")
    for name, text in prompts.items():
        if not isinstance(text, str):
            raise TypeError(f"prompt {name!r} must be a str, got {type(text).__name__}")


def _with_declared(config: Mapping[str, Any] | None, declared: Mapping[str, str]) -> dict[str, Any]:
    """``config`` with ``declared`` added to the gg.prompt texts it already carries."""
    config = dict(config or {})
    configurable = dict(config.get("configurable") or {})
    configurable[CONFIG_KEY] = {**(configurable.get(CONFIG_KEY) or {}), **declared}
    config["configurable"] = configurable
    return config


def substituted(
    graph: Pregel, slots: Mapping[str, PromptSlot], prompts: Mapping[str, str]
) -> Pregel:
    """``graph`` running ``prompts`` (module -> text; missing modules keep their text).

    ``slots`` must come from ``discover(graph)``: leaves are identified by the objects that
    hold them. Returns ``graph`` itself when no prompt differs.
    """
    _check_names(slots, prompts)
    structural: dict[Hashable, str] = {}
    declared: dict[str, str] = {}
    for name, text in prompts.items():
        slot = slots[name]
        if slot.kind == "declared":
            declared[name] = text
        elif text != slot.text:
            structural[slot.key] = text
    result = Walker(structural).walk(graph) if structural else graph
    if declared:
        result = _internals.copy_graph(result, config=_with_declared(result.config, declared))
    return result


def with_prompts(
    graph: Pregel, prompts: Mapping[str, str], declared: Mapping[str, str] | None = None
) -> Pregel:
    """A copy of ``graph`` that runs ``prompts``; the original is left as it is.

    ``declared``: ``gg.prompt`` names the scan cannot see (as for ``discover``).
    """
    result = substituted(graph, discover(graph, declared), prompts)
    return _internals.copy_graph(graph) if result is graph else result


def apply(
    graph: Pregel, prompts: Mapping[str, str], declared: Mapping[str, str] | None = None
) -> None:
    """Write ``prompts`` into ``graph`` and the objects it uses, in place.

    Templates and messages are changed where they are, closure variables and module constants
    are reassigned (so everything else reading that constant sees the new text too), and
    ``gg.prompt`` texts are stored in ``graph.config``, which LangGraph merges into every run.
    """
    slots = discover(graph, declared)
    _check_names(slots, prompts)
    declared_texts = {}
    for name, text in prompts.items():
        slot = slots[name]
        if slot.kind == "declared":
            declared_texts[name] = text
        elif text != slot.text:
            slot.leaf.write(text)
    if declared_texts:
        graph.config = _with_declared(graph.config, declared_texts)
