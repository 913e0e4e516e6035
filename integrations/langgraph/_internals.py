"""Every place this integration leans on LangGraph details that are not a documented API.

LangGraph has no public way to swap the runnable of a compiled node, to read the function a
node wraps, or to name the node a callback event belongs to inside a subgraph. Those few
touch points live here and nowhere else; ``tests/test_langgraph_internals.py`` checks each one
against the installed LangGraph so an upgrade that moves them fails loudly instead of
silently optimizing nothing.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import copy
import dataclasses
import functools
import inspect
import threading
import types
import typing
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLLM
from langchain_core.prompt_values import PromptValue, StringPromptValue
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

InputHook = typing.Callable[[PromptValue, Mapping[str, Any]], PromptValue | None]
"""(a model's input, the run's ``configurable``) -> the input to send; None outside a run
whose calls are rewritten (then the call is left exactly as it was)."""

# (id(place), name) -> how to put it back
_PATCHES: dict[tuple[int, str], typing.Callable[[], None]] = {}
_PATCH_LOCK = threading.Lock()


def patch(owner: Any, name: str, wrap: typing.Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` (a class's method) with ``wrap(current)``, once: patching the
    same place again does nothing (thread-safe)."""
    with _PATCH_LOCK:
        if (id(owner), name) in _PATCHES:
            return
        current = getattr(owner, name)
        if name in vars(owner):
            _PATCHES[(id(owner), name)] = functools.partial(setattr, owner, name, current)
        else:  # inherited: inherited again once put back
            _PATCHES[(id(owner), name)] = functools.partial(delattr, owner, name)
        setattr(owner, name, wrap(current))


def _trampoline(*args: Any, _gepa_graph_target: Any = None, **kwargs: Any) -> Any:
    return _gepa_graph_target(*args, **kwargs)


async def _async_trampoline(*args: Any, _gepa_graph_target: Any = None, **kwargs: Any) -> Any:
    return await _gepa_graph_target(*args, **kwargs)


def patch_function(function: types.FunctionType, wrap: typing.Callable[[Any], Any]) -> None:
    """Make ``function`` itself run ``wrap(a copy of the original)``, once: its code becomes a
    trampoline to the wrapper, so every name bound to it (``from litellm import completion``
    made before the patch included) is reached. For functions without a closure (TypeError)."""
    with _PATCH_LOCK:
        if (id(function), "__code__") in _PATCHES:
            return
        if not isinstance(function, types.FunctionType) or function.__code__.co_freevars:
            raise TypeError(f"cannot patch {function!r} in place")
        original = types.FunctionType(
            function.__code__, function.__globals__, function.__name__, function.__defaults__
        )
        original.__kwdefaults__ = function.__kwdefaults__
        original.__qualname__ = function.__qualname__
        saved = (function.__code__, function.__defaults__, function.__kwdefaults__)
        target = wrap(original)
        async_ = inspect.iscoroutinefunction(function)
        function.__code__ = (_async_trampoline if async_ else _trampoline).__code__
        function.__defaults__ = None
        function.__kwdefaults__ = {"_gepa_graph_target": target}

        def restore() -> None:
            function.__code__, function.__defaults__, function.__kwdefaults__ = saved

        _PATCHES[(id(function), "__code__")] = restore


def unpatch_all() -> None:
    """Put back everything ``patch`` and ``patch_function`` replaced."""
    with _PATCH_LOCK:
        for restore in _PATCHES.values():
            restore()
        _PATCHES.clear()


# Set while a model call that was already intercepted runs: the calls it makes in turn (a
# chat model's ``stream`` falling back to ``invoke``, ``batch`` calling ``invoke`` per input,
# ChatOpenAI or ChatLiteLLM calling their SDK) carry text already rewritten and recorded.
_IN_MODEL_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "gepa_graph_in_model_call", default=False
)


@contextlib.contextmanager
def model_call() -> typing.Iterator[None]:
    """Mark the code inside as running in a model call the boundary already intercepted."""
    token = _IN_MODEL_CALL.set(True)
    try:
        yield
    finally:
        _IN_MODEL_CALL.reset(token)


def in_model_call() -> bool:
    """Whether an intercepted model call is running around this code (see ``model_call``)."""
    return _IN_MODEL_CALL.get()


def install_input_hook(hook: InputHook) -> None:
    """Pass the prompt of every LangChain chat model or LLM call through ``hook`` (once).

    Every public entry point of ``BaseChatModel`` and ``BaseLLM`` is wrapped (``ENTRY_POINTS``:
    invoke/ainvoke/stream/astream one input, batch/abatch a list, generate/agenerate message
    lists or strings, generate_prompt/agenerate_prompt prompt values). The outermost one a call
    goes through hands each input to ``hook`` as a ``PromptValue``, with the run's
    ``configurable`` (the explicit config's over that of the runnable now running); the entry
    points it reaches in turn (``invoke`` calls ``generate``) pass their input on untouched.
    ``hook`` returns None outside an optimization run.
    """
    for cls in (BaseChatModel, BaseLLM):
        for name, rewrite in ENTRY_POINTS.items():
            step = functools.partial(rewrite, hook)
            patch(cls, name, lambda method, step=step: hooked(method, step))


def _configurable(config: Any) -> Mapping[str, Any]:
    explicit = (config or {}).get("configurable") if isinstance(config, Mapping) else None
    current = current_configurable()
    return {**current, **explicit} if explicit else current


def _argument(args: tuple, kwargs: dict, position: int, name: str) -> tuple[bool, Any]:
    if len(args) > position:
        return True, args[position]
    return name in kwargs, kwargs.get(name)


def _replace(args: tuple, kwargs: dict, position: int, name: str, value: Any) -> tuple:
    if len(args) > position:
        return (*args[:position], value, *args[position + 1 :]), kwargs
    return args, {**kwargs, name: value}


Arguments = tuple[tuple, dict]


def _rewrite_one(hook: InputHook, model: Any, args: tuple, kwargs: dict) -> Arguments | None:
    """invoke/ainvoke/stream/astream(input, config)."""
    given, model_input = _argument(args, kwargs, 0, "input")
    configurable = _configurable(_argument(args, kwargs, 1, "config")[1])
    if not given or not configurable:
        return None
    value = hook(model._convert_input(model_input), configurable)
    return None if value is None else _replace(args, kwargs, 0, "input", value)


def _rewrite_many(hook: InputHook, model: Any, args: tuple, kwargs: dict) -> Arguments | None:
    """batch/abatch(inputs, config or one config per input)."""
    given, inputs = _argument(args, kwargs, 0, "inputs")
    config = _argument(args, kwargs, 1, "config")[1]
    if not given or not isinstance(inputs, list):
        return None
    configs = config if isinstance(config, list) else [config] * len(inputs)
    values = []
    for model_input, item_config in zip(inputs, configs, strict=False):
        configurable = _configurable(item_config)
        values.append(
            hook(model._convert_input(model_input), configurable) if configurable else None
        )
    if all(value is None for value in values):
        return None
    rewritten = [i if v is None else v for i, v in zip(inputs, values, strict=False)]
    rewritten += inputs[len(rewritten) :]
    return _replace(args, kwargs, 0, "inputs", rewritten)


def _rewrite_generate(hook: InputHook, model: Any, args: tuple, kwargs: dict) -> Arguments | None:
    """generate/agenerate(message lists) of a chat model, (strings) of an LLM."""
    name = "messages" if isinstance(model, BaseChatModel) else "prompts"
    given, batch = _argument(args, kwargs, 0, name)
    configurable = current_configurable()
    if not given or not configurable or not isinstance(batch, list) or not batch:
        return None
    if name == "prompts":
        values = [hook(StringPromptValue(text=p), configurable) for p in batch]
    else:
        values = [hook(model._convert_input(m), configurable) for m in batch]
    if values[0] is None:
        return None
    if name == "prompts":
        rewritten: list = [v.to_string() for v in values]
    else:
        rewritten = [v.to_messages() for v in values]
    return _with_run_callbacks(*_replace(args, kwargs, 0, name, rewritten))


def _rewrite_prompts(hook: InputHook, model: Any, args: tuple, kwargs: dict) -> Arguments | None:
    """generate_prompt/agenerate_prompt(prompt values)."""
    given, prompts = _argument(args, kwargs, 0, "prompts")
    configurable = current_configurable()
    if not given or not configurable or not isinstance(prompts, list) or not prompts:
        return None
    rewritten = [hook(p, configurable) for p in prompts]
    if rewritten[0] is None:
        return None
    return _with_run_callbacks(*_replace(args, kwargs, 0, "prompts", rewritten))


def _with_run_callbacks(args: tuple, kwargs: dict) -> Arguments:
    """``generate(...)`` takes no config, and LangChain gives a call without ``callbacks``
    none: inside a rewritten run, the running runnable's callbacks record it (as ``invoke``
    would), so the run's trace sees it."""
    if _argument(args, kwargs, 2, "callbacks")[1] is None:
        callbacks = current_config().get("callbacks")
        if callbacks is not None:
            args, kwargs = _replace(args, kwargs, 2, "callbacks", callbacks)
    return args, kwargs


ENTRY_POINTS = {
    "invoke": _rewrite_one,
    "ainvoke": _rewrite_one,
    "stream": _rewrite_one,
    "astream": _rewrite_one,
    "batch": _rewrite_many,
    "abatch": _rewrite_many,
    "generate": _rewrite_generate,
    "agenerate": _rewrite_generate,
    "generate_prompt": _rewrite_prompts,
    "agenerate_prompt": _rewrite_prompts,
}
"""The LangChain model methods wrapped, and how each one's input is found and replaced."""


def hooked(method: Any, rewrite: typing.Callable[[Any, tuple, dict], Arguments | None]) -> Any:
    """``method`` (a function, coroutine function, generator or async generator function)
    with ``rewrite(self, args, kwargs)`` applied to its arguments when no intercepted model
    call runs around it: inside a rewritten run it returns the arguments to call with, and the
    call is marked (``model_call``) while it runs; outside one it returns None and the call
    goes through untouched."""
    if inspect.isasyncgenfunction(method):

        async def entry(self: Any, *args: Any, **kwargs: Any) -> Any:
            arguments = None if in_model_call() else rewrite(self, args, kwargs)
            if arguments is None:
                async for item in method(self, *args, **kwargs):
                    yield item
                return
            stream = method(self, *arguments[0], **arguments[1])
            try:
                while True:
                    token = _IN_MODEL_CALL.set(True)
                    try:
                        item = await stream.__anext__()
                    except StopAsyncIteration:
                        return
                    finally:
                        _IN_MODEL_CALL.reset(token)
                    yield item
            finally:
                await stream.aclose()

    elif inspect.isgeneratorfunction(method):

        def entry(self: Any, *args: Any, **kwargs: Any) -> Any:
            arguments = None if in_model_call() else rewrite(self, args, kwargs)
            if arguments is None:
                yield from method(self, *args, **kwargs)
                return
            stream = method(self, *arguments[0], **arguments[1])
            try:
                while True:
                    token = _IN_MODEL_CALL.set(True)
                    try:
                        item = next(stream)
                    except StopIteration:
                        return
                    finally:
                        _IN_MODEL_CALL.reset(token)
                    yield item
            finally:
                stream.close()

    elif inspect.iscoroutinefunction(method):

        async def entry(self: Any, *args: Any, **kwargs: Any) -> Any:
            arguments = None if in_model_call() else rewrite(self, args, kwargs)
            if arguments is None:
                return await method(self, *args, **kwargs)
            token = _IN_MODEL_CALL.set(True)
            try:
                return await method(self, *arguments[0], **arguments[1])
            finally:
                _IN_MODEL_CALL.reset(token)

    else:

        def entry(self: Any, *args: Any, **kwargs: Any) -> Any:
            arguments = None if in_model_call() else rewrite(self, args, kwargs)
            if arguments is None:
                return method(self, *args, **kwargs)
            token = _IN_MODEL_CALL.set(True)
            try:
                return method(self, *arguments[0], **arguments[1])
            finally:
                _IN_MODEL_CALL.reset(token)

    functools.update_wrapper(entry, method)
    return entry


# Set while ``ThreadPoolExecutor.submit`` runs: the worker threads it starts serve every later
# submission too, so they keep the context they would have had (see ``propagate_context``).
_IN_SUBMIT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "gepa_graph_in_submit", default=False
)


def propagate_context(inside: typing.Callable[[], bool]) -> None:
    """Run work handed to other threads inside a run in a copy of the handing thread's context
    (once), as LangChain's own executor does: a function given to a
    ``concurrent.futures.ThreadPoolExecutor`` (``submit``, hence ``map`` and
    ``loop.run_in_executor``) or a ``threading.Thread`` started while ``inside()`` holds
    (the running runnable's config carries a run whose calls are rewritten) sees that config,
    so the model calls it makes are rewritten and recorded. Elsewhere nothing changes; a pool's
    worker threads never keep a run's context (each submission brings its own)."""

    def submit(method: Any) -> Any:
        @functools.wraps(method)
        def entry(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            if _IN_SUBMIT.get() or not inside():
                return method(self, fn, *args, **kwargs)
            context = contextvars.copy_context()
            token = _IN_SUBMIT.set(True)
            try:
                return method(self, context.run, fn, *args, **kwargs)
            finally:
                _IN_SUBMIT.reset(token)

        return entry

    def start(method: Any) -> Any:
        @functools.wraps(method)
        def entry(self: Any) -> Any:
            if not _IN_SUBMIT.get() and inside():
                # An instance attribute: a subclass's own ``run`` is reached too.
                self.run = functools.partial(contextvars.copy_context().run, self.run)
            return method(self)

        return entry

    patch(concurrent.futures.ThreadPoolExecutor, "submit", submit)
    patch(threading.Thread, "start", start)


def current_config() -> Mapping[str, Any]:
    """The config of the runnable now running (node, tool, edge...), {} outside one.

    LangChain keeps the running runnable's config in a context variable that threads and tasks
    inherit; a model called inside a node function, a tool or a function they call sees it.
    """
    return var_child_runnable_config.get() or {}


def current_configurable() -> Mapping[str, Any]:
    """The ``configurable`` of the runnable now running, {} outside one."""
    return current_config().get("configurable") or {}


def config_handlers(config: Mapping[str, Any]) -> list[Any]:
    """The callback handlers of a run config (a list, or a callback manager's handlers)."""
    callbacks = config.get("callbacks")
    if isinstance(callbacks, list):
        return callbacks
    return list(getattr(callbacks, "handlers", None) or ())


def config_parent_run_id(config: Mapping[str, Any]) -> Any:
    """The run id of the runnable a config belongs to (its callback manager's parent run)."""
    return getattr(config.get("callbacks"), "parent_run_id", None)


# ----------------------------------------------------------------------------- discovery helpers


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
