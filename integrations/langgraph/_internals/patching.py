"""Replacing library functions in place: once, thread-safe, and reversibly (``unpatch_all``);
and the mark that an intercepted model call is running, so the calls it makes in turn (a chat
model's ``stream`` falling back to ``invoke``, ChatOpenAI calling its SDK) pass through.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import threading
import types
import typing
from typing import Any

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
IN_MODEL_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "gepa_graph_in_model_call", default=False
)


@contextlib.contextmanager
def model_call() -> typing.Iterator[None]:
    """Mark the code inside as running in a model call the boundary already intercepted."""
    token = IN_MODEL_CALL.set(True)
    try:
        yield
    finally:
        IN_MODEL_CALL.reset(token)


def in_model_call() -> bool:
    """Whether an intercepted model call is running around this code (see ``model_call``)."""
    return IN_MODEL_CALL.get()
