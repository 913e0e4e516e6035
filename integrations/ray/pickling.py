"""Pickling systems for other processes, and finding the part that does not pickle.

``dumps``/``loads``: cloudpickle, except that sentinels -- bare ``object()`` instances kept in a
module's globals, which libraries compare by identity (LangGraph's ``PASSTHROUGH``, ``MISSING``)
-- travel as references to where they live, so the receiving process compares against its own
and not against a copy that matches nothing.

Which part of an object does not pickle: the one-line answer a user needs to fix it.

``cloudpickle`` reports only the type that failed (``cannot pickle '_thread.lock' object``), not
where it sits inside a system of graphs, nodes, models and closures. ``unpicklable_part`` walks
down from the object, at each level into the first child that fails on its own (attributes,
pydantic private attributes, items, closure variables, globals a function uses), and returns the
path to the innermost one, such as ``system.graph.nodes['writer'].bound.last._lock``.
"""

from __future__ import annotations

import functools
import importlib
import io
import pickle
import sys
import types
from typing import Any

from ray import cloudpickle

MAX_DEPTH = 40

_SENTINELS: dict[int, tuple[str, str]] = {}
_SCANNED_MODULES = -1


def _sentinels() -> dict[int, tuple[str, str]]:
    """id -> (module, attribute) of every bare ``object()`` in a loaded module's globals."""
    global _SCANNED_MODULES
    if len(sys.modules) != _SCANNED_MODULES:
        found: dict[int, tuple[str, str]] = {}
        for name, module in list(sys.modules.items()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict) or getattr(module, "__name__", None) != name:
                continue
            for attribute, value in list(namespace.items()):
                if type(value) is object:
                    found.setdefault(id(value), (name, attribute))
        _SENTINELS.clear()
        _SENTINELS.update(found)
        _SCANNED_MODULES = len(sys.modules)
    return _SENTINELS


class _Pickler(cloudpickle.CloudPickler):
    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._known = _sentinels()

    def persistent_id(self, obj: Any) -> Any:
        return self._known.get(id(obj)) if type(obj) is object else None


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        module, attribute = pid
        return getattr(importlib.import_module(module), attribute)


def dumps(value: Any) -> bytes:
    """cloudpickle bytes of ``value``, module-level sentinels by reference."""
    buffer = io.BytesIO()
    _Pickler(buffer).dump(value)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    """The value ``dumps`` pickled, its sentinels this process's own."""
    return _Unpickler(io.BytesIO(data)).load()


def pickles(value: Any) -> BaseException | None:
    """None when ``value`` pickles (``dumps``), else the error it raised."""
    try:
        dumps(value)
    except Exception as exc:  # TypeError, PicklingError, AttributeError, RecursionError...
        return exc
    return None


def unpicklable_part(value: Any, name: str = "system") -> tuple[str, Any, BaseException] | None:
    """``(path, part, error)`` of the innermost part of ``value`` that does not pickle, or None
    when ``value`` pickles."""
    error = pickles(value)
    if error is None:
        return None
    path, seen = name, {id(value)}
    for _ in range(MAX_DEPTH):
        for label, child in _children(value):
            if id(child) in seen:
                continue
            child_error = pickles(child)
            if child_error is not None:
                seen.add(id(child))
                path, value, error = path + label, child, child_error
                break
        else:
            break  # every child pickles alone: the culprit is this object itself
    return path, value, error


def _children(value: Any) -> list[tuple[str, Any]]:
    """The parts pickling ``value`` pickles, each with the label that extends a path to it."""
    if isinstance(value, dict):
        return [(f"[{key!r}]", item) for key, item in value.items()]
    if isinstance(value, (list, tuple)):
        return [(f"[{index}]", item) for index, item in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return [(f"<item {index}>", item) for index, item in enumerate(value)]
    if isinstance(value, types.FunctionType):
        return _function_parts(value)
    if isinstance(value, types.MethodType):
        return [(".__self__", value.__self__), (".__func__", value.__func__)]
    if isinstance(value, functools.partial):
        return [(".func", value.func), (".args", value.args), (".keywords", value.keywords)]
    try:
        reduced = value.__reduce_ex__(4)
    except Exception:  # the object refuses to pickle itself: it is the culprit
        return []
    if isinstance(reduced, str) or not isinstance(reduced, tuple):
        return []
    parts: list[tuple[str, Any]] = []
    args = reduced[1] if len(reduced) > 1 else ()
    for index, arg in enumerate(args if isinstance(args, tuple) else ()):
        if not isinstance(arg, type):
            parts.append((f"<argument {index}>", arg))
    state = reduced[2] if len(reduced) > 2 else None
    parts += _state_parts(state)
    if len(reduced) > 3 and reduced[3] is not None:
        parts += [(f"[{index}]", item) for index, item in enumerate(list(reduced[3]))]
    if len(reduced) > 4 and reduced[4] is not None:
        parts += [(f"[{key!r}]", item) for key, item in list(reduced[4])]
    return parts


def _state_parts(state: Any) -> list[tuple[str, Any]]:
    if isinstance(state, tuple) and len(state) == 2:  # (__dict__, slots)
        return _state_parts(state[0]) + _state_parts(state[1])
    if not isinstance(state, dict):
        return [] if state is None else [("<state>", state)]
    parts = []
    for key, item in state.items():
        if key in ("__dict__", "__pydantic_private__") and isinstance(item, dict):
            parts += [(f".{name}", inner) for name, inner in item.items()]
        elif key not in ("__pydantic_fields_set__", "__pydantic_extra__") or item:
            parts.append((f".{key}", item))
    return parts


def _function_parts(fn: types.FunctionType) -> list[tuple[str, Any]]:
    """A function pickled by value carries its closure, defaults and the globals it uses."""
    parts: list[tuple[str, Any]] = []
    for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            parts.append((f".<closure variable {var}>", cell.cell_contents))
        except ValueError:  # an empty cell
            continue
    for default in fn.__defaults__ or ():
        parts.append((".<default>", default))
    for key, default in (fn.__kwdefaults__ or {}).items():
        parts.append((f".<default {key}>", default))
    for global_name in _global_names(fn.__code__):
        if global_name in fn.__globals__:
            parts.append((f".<global {global_name}>", fn.__globals__[global_name]))
    return parts


def _global_names(code: types.CodeType) -> list[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _global_names(const)
    return list(dict.fromkeys(names))
