"""What reached a model in the probe runs, turned into instructions: the ground truth of discovery.

The probe runs the seed on a few examples and keeps every model call (``tracing.ObservedCall``).
Calls at the same *site* (the same node, model and call order) are compared across examples,
message position by message position:

- system messages are instructions, whatever their length;
- a human message's parts that stay the same across examples are an instruction: a whole
  constant message with a phrase in it (three words or more), or prose around the parts that
  change (a short constant between values, "Product: {value_1}", is a label); the parts that
  change, and any text that came from the example's own input or a model's or tool's output,
  are variables;
- AI and tool messages are never instructions.

``Observed`` is one such message position with the texts it carried; ``constant_template``
turns the texts into one template whose variables are the changing parts. What the
instructions make of the modules is ``derive``'s.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gepa_graph.integrations.langgraph.model_calls import ObservedCall

INSTRUCTION_ROLES = ("system", "human")
SENTINEL = re.compile(r"\x00\d+\x00")
_TOKEN = re.compile(r"\x00\d+\x00|\w+|\s+|[^\w\s]")
WORD = re.compile(r"[^\W\d_]{2,}")
_counter = itertools.count()
MIN_MASKED = 4  # shorter input values ("a", "yes") are not masked: they occur everywhere


def sentinel() -> str:
    """A placeholder no other text shares: it always becomes a variable."""
    return f"\x00{next(_counter)}\x00"


def words(text: str) -> int:
    """How many words ``text`` holds (placeholders and numbers left out)."""
    return len(WORD.findall(SENTINEL.sub(" ", text)))


def input_strings(value: Any) -> list[str]:
    """Every string inside an example's graph input (message contents included), longest first."""
    found: list[str] = []

    def visit(item: Any) -> None:
        if isinstance(item, str):
            if len(item.strip()) >= MIN_MASKED:
                found.append(item.strip())
        elif isinstance(item, Mapping):
            for child in item.values():
                visit(child)
        elif isinstance(item, (list, tuple, set)):
            for child in item:
                visit(child)
        elif hasattr(item, "content"):  # a LangChain message
            visit(item.content)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            visit(vars(item))

    visit(value)
    return sorted(set(found), key=len, reverse=True)


def mask(text: str, values: Iterable[str]) -> str:
    """``text`` with each whole-word occurrence of ``values`` replaced by a fresh placeholder."""
    for value in values:
        if value in text:
            pattern = (
                rf"(?<!\w){re.escape(value)}(?!\w)" if value[:1].isalnum() else re.escape(value)
            )
            text = re.sub(pattern, lambda _: sentinel(), text)
    return text


@dataclass
class Observed:
    """One message position of one call site, across the probe's examples."""

    site: str
    position: int
    role: str
    nodes: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # as the model received them
    data: list[list[str]] = field(default_factory=list)  # each text's run: input and outputs

    @property
    def node(self) -> str:
        """The node the calls ran in ("graph" outside any node)."""
        return self.nodes[0] if self.nodes else "graph"


def observe(
    runs: Iterable[tuple[list[ObservedCall], list[str], list[list[str]]]],
) -> list[Observed]:
    """The system and human message positions of every call of the probe ``runs``, grouped by
    site. Each run: its calls, the strings of the example's input, and for each call the model
    and tool outputs that came before it. A message that is a whole earlier output is data;
    inside a message, input strings and earlier outputs of some length are masked (``mask``):
    a model that quotes its prompt back does not make the prompt data."""
    groups: dict[tuple[str, int, str], Observed] = {}
    for calls, data, earlier in runs:
        for call, before in zip(calls, earlier, strict=True):
            outputs = {
                *(text.strip() for text in before),
                *(text.strip() for role, text in call.messages if role in ("ai", "tool")),
            }
            long = [text for text in outputs if len(text) >= 12]
            dynamic = sorted({*data, *long}, key=len, reverse=True)
            for position, (role, text) in enumerate(call.messages):
                if role not in INSTRUCTION_ROLES or not text.strip() or text.strip() in outputs:
                    continue
                key = (call.site, position, role)
                group = groups.setdefault(key, Observed(call.site, position, role))
                if call.node and call.node not in group.nodes:
                    group.nodes.append(call.node)
                group.texts.append(text)
                group.data.append(dynamic)
    return list(groups.values())


def earlier_outputs(records: Iterable[Any], calls: int) -> list[list[str]]:
    """For each of a run's ``calls`` model calls, the outputs of the model calls and tools
    that started before it (trace records in start order, one ``llm`` record per call)."""
    seen: list[str] = []
    found: list[list[str]] = []
    for record in records:
        if record.kind == "llm":
            found.append(list(seen))
        if record.kind in ("llm", "tool"):
            seen.extend(input_strings(record.outputs))
    if len(found) != calls:  # calls the trace does not show one by one: history only
        return [[] for _ in range(calls)]
    return found


def constant_template(texts: list[str]) -> tuple[str, str]:
    """(template, format) of ``texts``: their common parts as literals, the parts that differ
    (and every placeholder) as ``{value_1}``, ``{value_2}``... variables. ``format`` is
    ``plain`` when nothing varies, else ``f-string`` (literal braces doubled)."""
    distinct = list(dict.fromkeys(texts))
    sequences = [_TOKEN.findall(text) for text in distinct]
    base = sequences[0]
    kept = set(range(len(base)))
    maps: list[dict[int, int]] = []
    for other in sequences[1:]:
        matcher = difflib.SequenceMatcher(None, base, other, autojunk=False)
        mapping: dict[int, int] = {}
        for a, b, size in matcher.get_matching_blocks():
            if size and len("".join(base[a : a + size]).strip()) >= 4:
                mapping.update({a + k: b + k for k in range(size)})
        kept &= set(mapping)
        maps.append(mapping)
    kept = {i for i in kept if not SENTINEL.fullmatch(base[i])}
    if not kept:
        return "", "plain"
    order = sorted(kept)
    lengths = [len(seq) for seq in sequences[1:]]

    def gap(before: int | None, after: int | None) -> bool:
        start = -1 if before is None else before
        end = len(base) if after is None else after
        if end - start > 1:
            return True
        for mapping, length in zip(maps, lengths, strict=True):
            left = -1 if before is None else mapping[before]
            right = length if after is None else mapping[after]
            if right - left > 1:
                return True
        return False

    pieces: list[tuple[bool, str]] = []  # (is_variable, text)
    for index, (before, after) in enumerate(zip([None, *order], [*order, None], strict=True)):
        if gap(before, after):
            pieces.append((True, ""))
        if index < len(order):
            pieces.append((False, base[order[index]]))
    variables = sum(1 for variable, _ in pieces if variable)
    if not variables:
        return "".join(text for _, text in pieces), "plain"
    out, n = [], 0
    for variable, text in pieces:
        if variable:
            n += 1
            out.append(f"{{value_{n}}}")
        else:
            out.append(text.replace("{", "{{").replace("}", "}}"))
    return "".join(out), "f-string"


def literal_parts(template: str, template_format: str) -> list[str]:
    """The constant text between a template's variables."""
    if template_format == "plain":
        return [template]
    parts = re.split(r"(?<!\{)\{value_\d+\}(?!\})", template)
    return [part.replace("{{", "{").replace("}}", "}") for part in parts]
