"""Every place this integration leans on LangGraph details that are not a documented API.

LangGraph has no public way to swap the runnable of a compiled node, to read the function a
node wraps, or to name the node a callback event belongs to inside a subgraph. Those few
touch points live here and nowhere else; ``tests/test_langgraph_internals.py`` checks each one
against the installed LangGraph so an upgrade that moves them fails loudly instead of
silently optimizing nothing.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import inspect
import threading
import typing
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLLM
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable
from langchain_core.runnables.config import var_child_runnable_config
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


def interrupt_nodes(graph: Pregel) -> list[str]:
    """The nodes a graph was compiled to interrupt before or after (``compile(interrupt_*=)``)."""
    names = []
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


def instance_attributes(obj: Any) -> dict[str, Any]:
    """An object's own attributes (``__dict__``, pydantic private attributes left out)."""
    attributes = getattr(obj, "__dict__", None)
    return dict(attributes) if isinstance(attributes, dict) else {}


def context_schema(graph: Pregel) -> type | None:
    """The graph's ``context_schema`` (also what the deprecated ``config_schema`` becomes)."""
    schema = getattr(getattr(graph, "builder", None), "context_schema", None)
    return schema if isinstance(schema, type) else None


def field_defaults(schema: Any) -> dict[str, Any]:
    """Field name -> default of a dataclass or pydantic model class ({} for other classes)."""
    if dataclasses.is_dataclass(schema):
        return {
            f.name: f.default
            for f in dataclasses.fields(schema)
            if f.default is not dataclasses.MISSING
        }
    fields = getattr(schema, "model_fields", None)
    if isinstance(fields, dict):
        return {name: info.default for name, info in fields.items()}
    return {}


def set_field_default(schema: type, name: str, value: Any) -> None:
    """Change a field's default in place: what ``schema()`` and ``Configuration`` readers see."""
    if dataclasses.is_dataclass(schema):
        schema.__dataclass_fields__[name].default = value
        setattr(schema, name, value)
        init = schema.__init__
        if name in (init.__kwdefaults__ or {}):
            init.__kwdefaults__[name] = value
        else:  # positional defaults belong to the last parameters of the signature
            parameters = [
                p
                for p in inspect.signature(init).parameters.values()
                if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
                and p.default is not inspect.Parameter.empty
            ]
            defaults = list(init.__defaults__ or ())
            defaults[[p.name for p in parameters].index(name)] = value
            init.__defaults__ = tuple(defaults)
        return
    schema.model_fields[name].default = value
    schema.model_rebuild(force=True)


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


# ----------------------------------------------------------------------------- the model boundary

_HOOKED = "_gepa_graph_input_hook"
_ENTRY_POINTS = ("invoke", "ainvoke", "stream", "astream")


def install_input_hook(
    hook: typing.Callable[[PromptValue, Mapping[str, Any]], PromptValue],
) -> None:
    """Pass the prompt of every LangChain chat model or LLM call through ``hook`` (once).

    ``invoke``, ``ainvoke``, ``stream`` and ``astream`` (``batch`` goes through ``invoke``) are
    where a model receives its input and the run's config, before callbacks record the messages
    and the provider gets them; the input is handed to ``hook`` as a ``PromptValue`` together
    with the config's ``configurable`` (the explicit config's, else that of the runnable now
    running). ``hook`` returns its argument unchanged outside an optimization rollout.
    """
    for cls in (BaseChatModel, BaseLLM):
        if getattr(cls, _HOOKED, False):
            continue
        for name in _ENTRY_POINTS:
            setattr(cls, name, _hooked(getattr(cls, name), hook))
        setattr(cls, _HOOKED, True)


# Prompts the hook already rewrote, by id (held, so no id is reused while listed): a model
# whose ``stream`` falls back to ``invoke`` hands the same object on and must not get it twice.
_REWRITTEN: collections.OrderedDict[int, Any] = collections.OrderedDict()
_REWRITTEN_LOCK = threading.Lock()


def _hooked(method: Any, hook: Any) -> Any:
    def entry(self: Any, model_input: Any, config: Any = None, **kwargs: Any) -> Any:
        configurable = (config or {}).get("configurable") or current_configurable()
        with _REWRITTEN_LOCK:
            seen = _REWRITTEN.get(id(model_input)) is model_input
        if configurable and not seen:
            value = self._convert_input(model_input)
            model_input = hook(value, configurable)
            if model_input is not value:
                with _REWRITTEN_LOCK:
                    _REWRITTEN[id(model_input)] = model_input
                    while len(_REWRITTEN) > 1024:
                        _REWRITTEN.popitem(last=False)
        return method(self, model_input, config, **kwargs)

    entry.__name__, entry.__qualname__, entry.__doc__ = (
        method.__name__,
        method.__qualname__,
        method.__doc__,
    )
    return entry


def current_configurable() -> Mapping[str, Any]:
    """The ``configurable`` of the runnable now running (node, tool, edge...), {} outside one.

    LangChain keeps the running runnable's config in a context variable that threads and tasks
    inherit; a model called inside a node function, a tool or a function they call sees it.
    """
    config = var_child_runnable_config.get()
    return (config or {}).get("configurable") or {}


# ----------------------------------------------------------------------------- discovery helpers


def task_function(value: Any) -> tuple[str, Any] | None:
    """(name, function) of a Functional API ``@task`` (``langgraph.func``'s private
    ``_TaskFunction``: its function in ``func``), or None for anything else."""
    if type(value).__module__ != "langgraph.func" or not callable(getattr(value, "func", None)):
        return None
    return getattr(value, "__name__", None) or value.func.__name__, value.func
