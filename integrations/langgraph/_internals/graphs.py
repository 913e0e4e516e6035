"""What a compiled LangGraph graph holds: its nodes' runnables, conditional edges, tool nodes,
Functional API tasks and interrupts, the node a callback event ran in, and a shallow copy.

None of these has a public accessor in LangGraph; each is pinned by
``tests/test_langgraph_internals.py``.
"""

from __future__ import annotations

import copy
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


def copy_graph(graph: Pregel, **attributes: Any) -> Pregel:
    """A shallow copy of ``graph`` with some attributes replaced (``config``, ``checkpointer``,
    ``interrupt_before_nodes``...).

    ``Pregel.copy`` re-runs the constructor and drops attributes set after it (a compiled
    StateGraph's output mappers), so the copy is shallow: nodes, channels, builder and everything
    else are shared with the original, which is never modified.
    """
    clone = copy.copy(graph)
    for name, value in attributes.items():
        setattr(clone, name, value)
    return clone


def interrupt_nodes(graph: Runnable) -> list[str]:
    """The nodes a graph was compiled to interrupt before or after (``compile(interrupt_*=)``)."""
    names: list[str] = []
    for attribute in ("interrupt_before_nodes", "interrupt_after_nodes"):
        value = getattr(graph, attribute, None)
        if value == "*":
            return ["*"]
        names.extend(value or ())
    return names


_INTERRUPT_KEY = "__interrupt__"  # where invoke() puts the interrupts a run stopped at


def pending_interrupts(output: Any) -> list[Any]:
    """The values of the ``interrupt()`` calls an ``invoke`` result stopped at ([] if none)."""
    if not isinstance(output, Mapping):
        return []
    return [getattr(item, "value", item) for item in output.get(_INTERRUPT_KEY) or ()]


def branch_runnables(graph: Pregel) -> list[tuple[str, Runnable]]:
    """(source node, the path function's runnable) of each conditional edge of a StateGraph,
    those leaving ``START`` (a router that picks the first node) included."""
    branches = getattr(getattr(graph, "builder", None), "branches", None) or {}
    return [(source, spec.path) for source, specs in branches.items() for spec in specs.values()]


def node_tools(runnable: Any) -> list[Any] | None:
    """The tools of a prebuilt ``ToolNode``, or None for other runnables."""
    tools = getattr(type(runnable), "tools_by_name", None)
    if not isinstance(tools, property):
        return None
    return list(runnable.tools_by_name.values())


def tool_functions(tool: Any) -> list[Any]:
    """The functions a LangChain tool runs (``@tool`` and ``StructuredTool`` keep them here)."""
    return [f for f in (getattr(tool, "func", None), getattr(tool, "coroutine", None)) if f]


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


def task_function(value: Any) -> tuple[str, Any] | None:
    """(name, function) of a Functional API ``@task`` (``langgraph.func``'s private
    ``_TaskFunction``: its function in ``func``), or None for anything else."""
    if type(value).__module__ != "langgraph.func" or not callable(getattr(value, "func", None)):
        return None
    return getattr(value, "__name__", None) or value.func.__name__, value.func


def graphs_inside(runnable: Any) -> list[Pregel]:
    """The compiled graphs a wrapper runnable holds (sequence steps, bindings, parallel
    branches, fallbacks), depth first; not those a node calls from inside a function."""
    found: list[Pregel] = []
    stack = [runnable]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, Pregel):
            found.append(current)
            continue
        for attribute in ("steps", "bound", "runnable", "fallbacks", "steps__"):
            value = getattr(current, attribute, None)
            if isinstance(value, Mapping):
                stack.extend(value.values())
            elif isinstance(value, (list, tuple)):
                stack.extend(value)
            elif isinstance(value, Runnable):
                stack.append(value)
    return found
