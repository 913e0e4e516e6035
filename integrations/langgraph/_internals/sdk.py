"""Where provider SDK calls are intercepted, and how their requests and responses are read.

An agent may reach a model without LangChain: ``litellm.completion``/``acompletion``, or the
OpenAI SDK's ``chat.completions.create`` and ``responses.create`` (sync and async clients).
``install_sdk_hook`` wraps each of them once -- the OpenAI resource classes' ``create`` methods,
so clients made before and after are both reached, and LiteLLM's public functions, in place,
so a name bound by ``from litellm import completion`` before the patch is reached too -- and hands
each call's keyword arguments to a hook that may rewrite them and returns what to do with the
result. A call made inside a model call already intercepted (ChatOpenAI calling the OpenAI SDK,
LiteLLM calling it for an OpenAI model) passes through untouched.

The request and response shapes are the providers' public formats; where each patched
function lives is what ``tests/test_langgraph_internals.py`` pins.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from gepa_graph.integrations.langgraph._internals.patching import (
    in_model_call,
    model_call,
    patch,
    patch_function,
)

Finish = Callable[[Any, BaseException | None], None]
"""Called once with a call's result (or None and the error it raised)."""
SdkHook = Callable[..., tuple[dict[str, Any], Finish | None]]
"""``hook(entry, kind, kwargs, rewrite=bool)`` -> (the keyword arguments to call with, what to
do with the result). ``rewrite`` is False for a call whose request could not be read as
keywords: it is recorded as it went."""

CHAT = "chat"  # a request with chat ``messages``
RESPONSES = "responses"  # a Responses API request: ``instructions`` and ``input``

# (module, attribute path, entry point, request kind): functions on a module, methods on a class.
_CHAT_MODULE, _RESPONSES_MODULE = "openai.resources.chat.completions", "openai.resources.responses"
PATCH_POINTS = (
    ("litellm", "completion", "litellm.completion", CHAT),
    ("litellm", "acompletion", "litellm.completion", CHAT),
    *(
        (_CHAT_MODULE, f"{cls}.{method}", "openai.chat.completions", CHAT)
        for cls in ("Completions", "AsyncCompletions")
        for method in ("create", "parse")  # ``stream`` calls ``create`` when it starts
    ),
    *(
        (_RESPONSES_MODULE, f"{cls}.{method}", "openai.responses", RESPONSES)
        for cls in ("Responses", "AsyncResponses")
        for method in ("create", "parse")
    ),
)
_POSITIONAL = {"litellm.completion": ("model", "messages")}  # litellm.completion(model, messages)


def install_sdk_hook(hook: SdkHook) -> None:
    """Wrap the ``PATCH_POINTS`` of every SDK the process has imported (once each; cheap
    to call again, so a run can pick up an SDK imported since; ``patching.unpatch_all``
    puts them back). An SDK nobody imported is not imported here: LiteLLM takes seconds."""
    for module_name, path, entry, kind in PATCH_POINTS:
        if module_name.split(".", 1)[0] not in sys.modules:
            continue
        try:
            owner: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        if not hasattr(owner, name):  # an SDK version without it (``parse`` is recent)
            continue
        method = isinstance(owner, type)
        wrap = functools.partial(_intercepted, entry=entry, kind=kind, hook=hook, method=method)
        if method:  # a class attribute: every client, made before or after, looks it up
            patch(owner, name, wrap)
        else:  # a module's function: patched in place, so names bound to it are reached too
            try:
                patch_function(getattr(owner, name), wrap)
            except TypeError:  # not a plain function: the module attribute at least
                patch(owner, name, wrap)


def _intercepted(function: Any, entry: str, kind: str, hook: SdkHook, method: bool) -> Any:
    """``function`` with ``hook`` around each call made outside an intercepted model call."""
    names = _POSITIONAL.get(entry, ())
    skip = 1 if method else 0  # a method's ``self`` is not part of the request

    def prepare(args: tuple, kwargs: dict) -> tuple[tuple, dict, Finish | None]:
        if in_model_call():
            return args, kwargs, None
        head, rest = args[:skip], args[skip:]
        request = {**dict(zip(names, rest, strict=False)), **kwargs}
        if len(rest) > len(names):  # more positional arguments: recorded, not rewritten
            return args, kwargs, hook(entry, kind, request, rewrite=False)[1]
        request, finish = hook(entry, kind, request, rewrite=True)
        return head, request, finish

    if inspect.iscoroutinefunction(function):

        async def coroutine_wrapper(*args: Any, **kwargs: Any) -> Any:
            args, kwargs, finish = prepare(args, kwargs)
            try:
                with model_call():
                    result = await function(*args, **kwargs)
            except BaseException as error:
                if finish:
                    finish(None, error)
                raise
            if finish:
                finish(result, None)
            return result

        wrapper: Callable[..., Any] = coroutine_wrapper

    else:

        def function_wrapper(*args: Any, **kwargs: Any) -> Any:
            args, kwargs, finish = prepare(args, kwargs)
            try:
                with model_call():
                    result = function(*args, **kwargs)
            except BaseException as error:
                if finish:
                    finish(None, error)
                raise
            if finish:
                finish(result, None)
            return result

        wrapper = function_wrapper

    functools.update_wrapper(wrapper, function)
    return wrapper


# ----------------------------------------------------------------------------- requests


def request_messages(kind: str, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's messages as chat dicts (``role``, ``content``), in order; a Responses
    request's ``instructions`` first, as a system message."""
    if kind == CHAT:
        return [_as_dict(m) for m in kwargs.get("messages") or ()]
    out: list[dict[str, Any]] = []
    if isinstance(kwargs.get("instructions"), str):
        out.append({"role": "system", "content": kwargs["instructions"]})
    given = kwargs.get("input")
    if isinstance(given, str):
        out.append({"role": "user", "content": given})
    for item in given if isinstance(given, list) else ():
        item = _as_dict(item)
        if item.get("type") == "function_call_output":
            out.append(
                {"role": "tool", "content": item.get("output"), "tool_call_id": item.get("call_id")}
            )
        elif item.get("type") == "function_call":
            out.append({"role": "assistant", "content": "", "tool_calls": [_call(item)]})
        elif "role" in item:
            out.append({"role": item["role"], "content": item.get("content")})
    return out


def rewrite_request(
    kind: str, kwargs: dict[str, Any], rewrite: Callable[[str], str]
) -> dict[str, Any]:
    """A copy of the request's keyword arguments with every message text passed through
    ``rewrite`` (the user's own objects are never changed)."""
    kwargs = dict(kwargs)
    if kind == CHAT:
        if isinstance(kwargs.get("messages"), list | tuple):
            kwargs["messages"] = [_rewrite_message(m, rewrite) for m in kwargs["messages"]]
        return kwargs
    if isinstance(kwargs.get("instructions"), str):
        kwargs["instructions"] = rewrite(kwargs["instructions"])
    given = kwargs.get("input")
    if isinstance(given, str):
        kwargs["input"] = rewrite(given)
    elif isinstance(given, list):
        kwargs["input"] = [_rewrite_message(m, rewrite) for m in given]
    return kwargs


def _as_dict(message: Any) -> dict[str, Any]:
    if isinstance(message, Mapping):
        return dict(message)
    dump = getattr(message, "model_dump", None)
    return dump() if callable(dump) else {"role": "user", "content": str(message)}


def _rewrite_message(message: Any, rewrite: Callable[[str], str]) -> Any:
    if not isinstance(message, Mapping) or "content" not in message:
        return message
    content = message["content"]
    if isinstance(content, str):
        new: Any = rewrite(content)
    elif isinstance(content, list):
        new = [_rewrite_part(part, rewrite) for part in content]
    else:
        return message
    return {**message, "content": new}


def _rewrite_part(part: Any, rewrite: Callable[[str], str]) -> Any:
    if isinstance(part, str):
        return rewrite(part)
    if isinstance(part, Mapping) and isinstance(part.get("text"), str):
        return {**part, "text": rewrite(part["text"])}
    return part


# ----------------------------------------------------------------------------- responses


def _call(item: Mapping[str, Any]) -> dict[str, Any]:
    function: Mapping[str, Any] = (
        item["function"] if isinstance(item.get("function"), Mapping) else item
    )
    arguments = function.get("arguments")
    try:
        arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        pass
    return {
        "name": function.get("name"),
        "args": arguments,
        "id": item.get("id") or item.get("call_id"),
    }


def _dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else value


def response_message(kind: str, response: Any) -> dict[str, Any] | None:
    """The message a (non-streamed) response returned, as a chat dict with ``tool_calls``
    as ``{"name", "args", "id"}``; None for a stream or an unknown shape."""
    data = _dump(response)
    if not isinstance(data, Mapping):
        return None
    if kind == CHAT:
        choices = data.get("choices") or []
        message = choices[0].get("message") if choices and isinstance(choices[0], Mapping) else None
        if not isinstance(message, Mapping):
            return None
        out = {"role": "assistant", "content": message.get("content") or ""}
        calls = [_call(c) for c in message.get("tool_calls") or () if isinstance(c, Mapping)]
        return {**out, "tool_calls": calls} if calls else out
    items = [i for i in data.get("output") or () if isinstance(i, Mapping)]
    if not items and "output" not in data:
        return None
    text = "".join(
        part.get("text") or ""
        for item in items
        if item.get("type") == "message"
        for part in item.get("content") or ()
        if isinstance(part, Mapping)
    )
    calls = [_call(i) for i in items if i.get("type") == "function_call"]
    out = {"role": "assistant", "content": text}
    return {**out, "tool_calls": calls} if calls else out


def response_usage(response: Any) -> tuple[int, int] | None:
    """(prompt tokens, completion tokens) of a response, where it says."""
    usage = _dump(getattr(response, "usage", None))
    if not isinstance(usage, Mapping):
        return None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return prompt, completion


def response_model(response: Any) -> str | None:
    """The model a response names."""
    model = getattr(response, "model", None)
    return model if isinstance(model, str) else None
