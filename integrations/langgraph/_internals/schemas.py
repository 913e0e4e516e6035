"""The schemas a graph and the user's code declare: the graph's input fields and context
schema, an object's own attributes, and the field defaults of dataclass and pydantic classes
(read by discovery, rewritten in place by ``apply``).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

from langchain_core.runnables import Runnable


def instance_attributes(obj: Any) -> dict[str, Any]:
    """An object's own attributes (``__dict__``, pydantic private attributes left out)."""
    attributes = getattr(obj, "__dict__", None)
    return dict(attributes) if isinstance(attributes, dict) else {}


def context_schema(graph: Runnable) -> type | None:
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
        kwdefaults = init.__kwdefaults__ or {}
        if name in kwdefaults:
            kwdefaults[name] = value
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
    model: Any = schema  # a pydantic model class
    model.model_fields[name].default = value
    model.model_rebuild(force=True)


def input_fields(graph: Runnable) -> tuple[list[str], list[str]] | None:
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
