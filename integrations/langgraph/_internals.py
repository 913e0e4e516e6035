"""Every place this integration leans on LangGraph details that are not a documented API.

LangGraph has no public way to swap the runnable of a compiled node, to read the function a
node wraps, or to name the node a callback event belongs to inside a subgraph. Those few
touch points live here and nowhere else; ``tests/test_langgraph_internals.py`` checks each one
against the installed LangGraph so an upgrade that moves them fails loudly instead of
silently optimizing nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import Runnable
from langgraph.constants import START
from langgraph.pregel import Pregel

# Metadata LangGraph attaches to every run inside a node's task.
NODE_METADATA_KEY = "langgraph_node"
NAMESPACE_METADATA_KEY = "langgraph_checkpoint_ns"
_NAMESPACE_SEPARATOR = "|"  # between nested graph levels: "parent:<task id>|child:<task id>"
_TASK_ID_SEPARATOR = ":"


def node_runnables(graph: Pregel) -> dict[str, Runnable]:
    """The runnable each node of a compiled graph executes (``PregelNode.bound``), by node name."""
    return {name: node.bound for name, node in graph.nodes.items() if name != START}


def copy_graph(
    graph: Pregel,
    runnables: Mapping[str, Runnable] | None = None,
    config: dict[str, Any] | None = None,
) -> Pregel:
    """A copy of ``graph`` whose nodes in ``runnables`` run the given runnables instead.

    ``Pregel.copy`` re-runs the constructor and drops attributes set after it (a compiled
    StateGraph's output mappers), so the copy is shallow: channels, builder, checkpointer and
    every other node are shared with the original, which is never modified.
    """
    clone = copy.copy(graph)
    nodes = dict(graph.nodes)
    for name, runnable in (runnables or {}).items():
        # subgraphs=None makes PregelNode find the (possibly replaced) subgraph again.
        nodes[name] = nodes[name].copy({"bound": runnable, "subgraphs": None})
    clone.nodes = nodes
    if config is not None:
        clone.config = config
    return clone


def function_parts(runnable: Any) -> dict[str, Any] | None:
    """The sync and async functions of a function-backed runnable, or None for other runnables.

    Covers ``RunnableLambda`` and LangGraph's private ``RunnableCallable`` (what ``add_node``
    wraps a plain function in), which both keep them in ``func`` and/or ``afunc``.
    """
    if not isinstance(runnable, Runnable):
        return None
    parts = {
        attribute: getattr(runnable, attribute)
        for attribute in ("func", "afunc")
        if callable(getattr(runnable, attribute, None))
    }
    return parts or None


def with_function_parts(runnable: Any, parts: Mapping[str, Any]) -> Any:
    clone = copy.copy(runnable)
    clone.__dict__.pop("deps", None)  # RunnableLambda caches the runnables its function uses
    for attribute, function in parts.items():
        setattr(clone, attribute, function)
    return clone


def node_path_of(metadata: Mapping[str, Any] | None) -> str | None:
    """The node a callback event belongs to, as "node" or "parent/child" inside subgraphs.

    The checkpoint namespace names every graph level ("research:<id>|model:<id>"); the plain
    ``langgraph_node`` key names only the innermost node.
    """
    if not metadata:
        return None
    namespace = metadata.get(NAMESPACE_METADATA_KEY)
    if isinstance(namespace, str) and namespace:
        parts = [
            part.split(_TASK_ID_SEPARATOR, 1)[0] for part in namespace.split(_NAMESPACE_SEPARATOR)
        ]
        parts = [part for part in parts if part]
        if parts:
            return "/".join(parts)
    node = metadata.get(NODE_METADATA_KEY)
    return node if isinstance(node, str) and node else None


def input_fields(graph: Pregel) -> tuple[list[str], list[str]] | None:
    """(all input fields, required ones) of a compiled StateGraph, or None when unknown.

    Fields are required only when the graph declares a separate ``input_schema``: a graph whose
    input is its whole state accepts any subset of it.
    """
    builder = getattr(graph, "builder", None)
    schema = getattr(builder, "input_schema", None)
    if schema is None:
        return None
    try:
        fields = list(typing.get_type_hints(schema))
    except Exception:
        return None
    if schema is getattr(builder, "state_schema", None):
        return fields, []
    required_keys = getattr(schema, "__required_keys__", None)  # TypedDict
    if required_keys is not None:
        required = [name for name in fields if name in required_keys]
    elif dataclasses.is_dataclass(schema):
        required = [
            f.name
            for f in dataclasses.fields(schema)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
    elif hasattr(schema, "model_fields"):  # pydantic
        required = [name for name, info in schema.model_fields.items() if info.is_required()]
    else:
        required = []
    return fields, required
