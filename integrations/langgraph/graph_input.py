"""How an example becomes the graph's input, and which of its fields are run fields.

Graph input for an example (first rule that applies):

1. ``input_fn(example)`` when given;
2. the example's ``inputs`` field, when it has one;
3. the example's fields that the graph's input schema declares, minus label fields
   (``LABEL_FIELDS``: never leak the expected answer into the state); if the graph takes
   ``messages`` and the example has none, its ``question``/``input``/``query``/``prompt``/``task``
   text becomes the first user message;
4. for graphs without a known schema: every field except the label and run fields.

Run fields of an example (unless the input schema declares a field of that name): ``context``
(runtime context, merged over ``LangGraphSystem(context=...)``), ``config`` (merged into the
run config) and ``resume`` (values answering the graph's ``interrupt()`` calls in order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import HumanMessage

from gepa_graph.errors import InvalidInput

InputFields = tuple[list[str], list[str]] | None
"""(all input fields, required ones) of the graph's input schema, None when unknown."""

LABEL_FIELDS = frozenset(
    {
        "id",
        "answer",
        "expected",
        "expected_output",
        "label",
        "labels",
        "target",
        "reference",
        "ground_truth",
        "gold",
        "solution",
    }
)
RUN_FIELDS = ("context", "config", "resume")
QUESTION_FIELDS = ("question", "input", "query", "prompt", "task")


def graph_input(example: Any, input_fn: Callable[[Any], Any] | None, fields: InputFields) -> Any:
    """The graph input for ``example`` (the convention is in the module docstring)."""
    if input_fn is not None:
        return input_fn(example)
    if "inputs" in example:
        inputs = example["inputs"]
        return dict(inputs) if isinstance(inputs, Mapping) else inputs
    if fields is None:
        return {k: v for k, v in example.items() if k not in LABEL_FIELDS and k not in RUN_FIELDS}
    names = fields[0]
    chosen = {k: example[k] for k in names if k in example and k not in LABEL_FIELDS}
    if "messages" in names and "messages" not in chosen:
        text = next((example[k] for k in QUESTION_FIELDS if isinstance(example.get(k), str)), None)
        if text is not None:
            chosen["messages"] = [HumanMessage(content=text)]
    return chosen


def run_field(example: Any, name: str, fields: InputFields) -> Any:
    """An example's run field, unless the graph's input schema has a field of that name."""
    if fields is not None and name in fields[0]:
        return None
    return example.get(name) if isinstance(example, Mapping) else None


def check_example(
    example: Any,
    fields: InputFields,
    input_fn: Callable[[Any], Any] | None,
    graph_input: Callable[[Any], Any],
) -> None:
    """Raise InvalidInput (a ValueError) for an example whose graph input (``graph_input``)
    lacks what the graph requires, or whose run fields have the wrong type."""
    if not isinstance(example, Mapping):
        raise InvalidInput(f"examples must be mappings, got {type(example).__name__}")
    for name, kind in (("context", Mapping), ("config", Mapping), ("resume", list)):
        value = run_field(example, name, fields)
        if value is not None and not isinstance(value, kind):
            raise InvalidInput(
                f"the example's {name!r} must be a {kind.__name__}, got {type(value).__name__}"
            )
    if input_fn is not None or fields is None:
        return
    names, required = fields
    given = graph_input(example)
    if not isinstance(given, Mapping):
        return
    missing = [name for name in required if name not in given]
    if missing:
        hint = f" (or a text field {list(QUESTION_FIELDS)})" if "messages" in missing else ""
        raise InvalidInput(
            f"the example lacks field(s) {missing}{hint} that the graph's input schema "
            "requires; give an 'inputs' field or pass input_fn"
        )
    if names and not given:
        raise InvalidInput(
            f"the example has none of the graph's input fields {names} (its fields: "
            f"{sorted(example)}); rename them, give an 'inputs' field, or pass input_fn"
        )
