"""Every public entry point of LangChain's ``BaseChatModel`` and ``BaseLLM``, its input passed
through one hook: how each finds its input and config, and how a wrapped method (plain, async,
generator or async generator) marks the call as intercepted while it runs.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLLM
from langchain_core.prompt_values import PromptValue, StringPromptValue

from gepa_graph.integrations.langgraph._internals.patching import (
    IN_MODEL_CALL,
    in_model_call,
    patch,
)
from gepa_graph.integrations.langgraph._internals.run_context import (
    current_config,
    current_configurable,
)

InputHook = typing.Callable[[PromptValue, Mapping[str, Any]], PromptValue | None]
"""(a model's input, the run's ``configurable``) -> the input to send; None outside a run
whose calls are rewritten (then the call is left exactly as it was)."""


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
            patch(cls, name, functools.partial(hooked, rewrite=step))


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
    values: list[Any]  # PromptValue, or None when the hook leaves the batch alone
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

        async def async_generator_entry(self: Any, *args: Any, **kwargs: Any) -> Any:
            arguments = None if in_model_call() else rewrite(self, args, kwargs)
            if arguments is None:
                async for item in method(self, *args, **kwargs):
                    yield item
                return
            stream = method(self, *arguments[0], **arguments[1])
            try:
                while True:
                    token = IN_MODEL_CALL.set(True)
                    try:
                        item = await stream.__anext__()
                    except StopAsyncIteration:
                        return
                    finally:
                        IN_MODEL_CALL.reset(token)
                    yield item
            finally:
                await stream.aclose()

        entry: typing.Callable[..., Any] = async_generator_entry

    elif inspect.isgeneratorfunction(method):

        def generator_entry(self: Any, *args: Any, **kwargs: Any) -> Any:
            arguments = None if in_model_call() else rewrite(self, args, kwargs)
            if arguments is None:
                yield from method(self, *args, **kwargs)
                return
            stream = method(self, *arguments[0], **arguments[1])
            try:
                while True:
                    token = IN_MODEL_CALL.set(True)
                    try:
                        item = next(stream)
                    except StopIteration:
                        return
                    finally:
                        IN_MODEL_CALL.reset(token)
                    yield item
            finally:
                stream.close()

        entry = generator_entry

    elif inspect.iscoroutinefunction(method):

        async def coroutine_entry(self: Any, *args: Any, **kwargs: Any) -> Any:
            arguments = None if in_model_call() else rewrite(self, args, kwargs)
            if arguments is None:
                return await method(self, *args, **kwargs)
            token = IN_MODEL_CALL.set(True)
            try:
                return await method(self, *arguments[0], **arguments[1])
            finally:
                IN_MODEL_CALL.reset(token)

        entry = coroutine_entry

    else:

        def function_entry(self: Any, *args: Any, **kwargs: Any) -> Any:
            arguments = None if in_model_call() else rewrite(self, args, kwargs)
            if arguments is None:
                return method(self, *args, **kwargs)
            token = IN_MODEL_CALL.set(True)
            try:
                return method(self, *arguments[0], **arguments[1])
            finally:
                IN_MODEL_CALL.reset(token)

        entry = function_entry

    functools.update_wrapper(entry, method)
    return entry
