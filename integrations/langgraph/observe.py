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
turns the texts into one template whose variables are the changing parts. ``LibraryTexts``
tells text written in a library (a middleware's or a tool's own prompt) from the user's.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import re
import sys
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gepa_graph.integrations.langgraph.boundary import PromptSpec
from gepa_graph.integrations.langgraph.discover import PromptSlot, rename
from gepa_graph.integrations.langgraph.leaves import FileLeaf, Leaf, looks_like_prose
from gepa_graph.integrations.langgraph.model_calls import ObservedCall
from gepa_graph.integrations.langgraph.patterns import PromptPattern

INSTRUCTION_ROLES = ("system", "human")
SENTINEL = re.compile(r"\x00\d+\x00")
_TOKEN = re.compile(r"\x00\d+\x00|\w+|\s+|[^\w\s]")
_WORD = re.compile(r"[^\W\d_]{2,}")
_counter = itertools.count()
MIN_MASKED = 4  # shorter input values ("a", "yes") are not masked: they occur everywhere


def sentinel() -> str:
    """A placeholder no other text shares: it always becomes a variable."""
    return f"\x00{next(_counter)}\x00"


def words(text: str) -> int:
    """How many words ``text`` holds (placeholders and numbers left out)."""
    return len(_WORD.findall(SENTINEL.sub(" ", text)))


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


# ----------------------------------------------------------------------------- library text


class LibraryTexts:
    """String constants written in library code (langchain, langgraph, deepagents...): a prompt
    whose text comes from there is the library's, listed but optimized only on request."""

    def __init__(self, packages: Iterable[str]) -> None:
        self._pieces: set[str] = set()
        for name, module in list(sys.modules.items()):
            if name.split(".")[0] in packages and isinstance(module, types.ModuleType):
                for text in _module_strings(module):
                    self._pieces.update(_pieces(text))

    def owns(self, text: str) -> bool:
        """Whether library constants make up most of ``text``."""
        flat = " ".join(SENTINEL.sub(" ", text).split())
        if not flat or not self._pieces:
            return False
        covered = sum(len(piece) for piece in self._pieces if piece in flat)
        return covered * 2 >= len(flat) or any(flat in piece for piece in self._pieces)


def _pieces(text: str) -> list[str]:
    """The long literal runs of a library string (its ``{variables}`` split out)."""
    flat = " ".join(text.split())
    if words(flat) < 3:
        return []
    return [p.strip() for p in re.split(r"\{[^{}]*\}", flat) if len(p.strip()) >= 20]


def _module_strings(module: types.ModuleType) -> list[str]:
    found: list[str] = []
    for value in list(vars(module).values()):
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
            found.extend(_code_strings(value.__code__))
        elif isinstance(value, type) and value.__module__ == module.__name__:
            for member in list(vars(value).values()):
                if isinstance(member, str):
                    found.append(member)
                elif isinstance(member, types.FunctionType):
                    found.extend(_code_strings(member.__code__))
    return found


def _code_strings(code: types.CodeType) -> list[str]:
    found: list[str] = []
    for constant in code.co_consts:
        if isinstance(constant, str):
            found.append(constant)
        elif isinstance(constant, types.CodeType):
            found.extend(_code_strings(constant))
    return found


# ----------------------------------------------------------------------------- modules


@dataclass
class Derived:
    """What the probe's calls say about the prompts: which found prompt reached a model from
    which nodes, the instructions with no home in the code (new modules), and instruction text
    that could not be made into a template matching every call it came from."""

    reached: dict[str, list[str]] = field(default_factory=dict)  # by the names in ``kept``
    kept: dict[str, PromptSlot] = field(default_factory=dict)  # found ones, named again
    renamed: dict[str, str] = field(default_factory=dict)  # a found name -> its name in kept
    observed: dict[str, PromptSlot] = field(default_factory=dict)
    untemplated: list[str] = field(default_factory=list)


def derive(
    found: Mapping[str, PromptSlot], groups: list[Observed], library: LibraryTexts
) -> Derived:
    """Match the found prompts against what reached a model, and make a module of every
    instruction no found prompt holds (see the module docstring for what an instruction is).

    A found prompt counts where it occurs in an instruction message and not inside a variable
    or the match of another found prompt (text that merely fills another prompt's variable);
    a candidate (weak) one must hold all the message's own words.
    """
    derived = Derived()
    patterns = {name: slot.spec.pattern() for name, slot in found.items()}
    instructions: list[tuple[Observed, str, str, bool]] = []
    for group in groups:
        leftovers: list[str] = []
        matched = False
        for text, data in zip(group.texts, group.data, strict=True):
            spans = _matches(found, patterns, text, data, group.role)
            for name in dict.fromkeys(name for name, _ in spans):
                nodes = derived.reached.setdefault(name, [])
                nodes.extend(n for n in group.nodes if n not in nodes)
            matched = matched or bool(spans)
            for _, (start, end) in sorted(spans, key=lambda s: -s[1][0]):
                text = text[:start] + sentinel() + text[end:]
            leftovers.append(mask(text, data))
        template, template_format = constant_template(leftovers)
        parts = [p for p in literal_parts(template, template_format) if p.strip()]
        if not matched and any(_instructs(group.role, template_format, p) for p in parts):
            texts = [(template, template_format)]
        else:  # the phrases no found prompt holds, each a plain text
            texts = [(p.strip(), "plain") for p in parts if words(p) >= 3 and looks_like_prose(p)]
        for text, text_format in texts:
            pattern = PromptSpec(text, text_format).pattern()
            if not all(pattern.occurs_in(t) for t in group.texts):
                derived.untemplated.append(text)
                continue
            instructions.append((group, text, text_format, library.owns(text)))
    renamed = rename({n: found[n] for n in derived.reached}, derived.reached)
    derived.renamed = {old: slot.name for old, slot in renamed.items()}
    derived.kept = {slot.name: slot for slot in renamed.values()}
    derived.reached = {derived.renamed[n]: nodes for n, nodes in derived.reached.items()}
    taken = set(derived.kept)
    files = [slot.leaf for slot in found.values() if isinstance(slot.leaf, FileLeaf)]
    for group, text, text_format, owned in instructions:
        home = _file_home(text, text_format, files)
        _add_observed(derived, taken, group, text, text_format, owned, home)
    derived.observed = {
        name: dataclasses.replace(slot, nodes=tuple(slot.nodes))
        for name, slot in derived.observed.items()
    }
    return derived


def _instructs(role: str, template_format: str, part: str, rest: str = "") -> bool:
    """Whether constant text in a message of ``role`` is an instruction: any words in a system
    message, a phrase (three words) making up a whole human message, prose in a human message
    around values that change (where a short constant is a label: "Product: {value_1}").
    ``rest``: the message's other text, which must hold no words of its own."""
    if words(SENTINEL.sub(" ", rest)):
        return False
    if role == "system":
        return words(part) > 0
    if template_format == "plain":
        return words(part) >= 3
    return looks_like_prose(part) and words(part) >= 3


def _file_home(text: str, template_format: str, files: list[FileLeaf]) -> FileLeaf | None:
    """The prompt file whose constant text holds every phrase of an instruction no template
    matched (a Jinja2 file with loops or conditions renders so)."""
    parts = [" ".join(_WORD.findall(p)) for p in literal_parts(text, template_format)]
    parts = [part for part in parts if part]
    for leaf in files:
        flat = f" {' '.join(_WORD.findall(leaf.text))} "
        if parts and all(f" {part} " in flat for part in parts):
            return leaf
    return None


def _matches(
    found: Mapping[str, PromptSlot],
    patterns: Mapping[str, PromptPattern],
    text: str,
    data: list[str],
    role: str,
) -> list[tuple[str, tuple[int, int]]]:
    """(module, span) of each found prompt in ``text`` that is not inside another's match; a
    candidate must hold all the message's own words (the rest being ``data``), or it is only a
    fragment of an instruction that the message as a whole makes."""
    hits: list[tuple[str, tuple[int, int], list[tuple[int, int]]]] = []
    for name, pattern in patterns.items():
        if not pattern.matchable or pattern.anchor not in text:
            continue
        slot = found[name]
        for match in pattern.regex.finditer(text):
            rest = mask(text[: match.start()] + " " + text[match.end() :], data)
            if not slot.strong and not _instructs(
                role, "f-string" if SENTINEL.search(rest) else "plain", slot.text, rest
            ):
                continue
            captures = [match.span(g) for g in range(1, (match.re.groups or 0) + 1)]
            hits.append((name, match.span(), captures))
    kept = []
    for name, span, _ in hits:
        inside = any(
            other != name
            and found[name].kind != "partial"
            and (
                (o_span[0] <= span[0] and span[1] <= o_span[1] and o_span != span)
                or any(c[0] <= span[0] and span[1] <= c[1] for c in captures)
            )
            for other, o_span, captures in hits
        )
        duplicate = any(o_span == span and other != name for other, o_span in kept)
        if not inside and not duplicate:
            kept.append((name, span))
    return kept


def _add_observed(
    derived: Derived,
    taken: set[str],
    group: Observed,
    text: str,
    template_format: str,
    library: bool,
    home: FileLeaf | None = None,
) -> None:
    for slot in derived.observed.values():
        if slot.text == text:
            slot.nodes.extend(n for n in group.nodes if n not in slot.nodes)
            return
    base = group.node
    label = home.label if home is not None else group.role
    name = base
    if name in taken or any(t.startswith(f"{base}.") for t in taken):
        name, n = f"{base}.{label}", 1
        while name in taken:
            n += 1
            name = f"{base}.{label}_{n}"
    taken.add(name)
    where = f"{group.role} message sent from node {base} (no home found in the code)"
    leaf = Leaf(
        kind="observed",
        label=group.role,
        where=where,
        text=text,
        key=("observed", name),
        template_format=template_format,
    )
    if home is not None:  # a template file with logic (loops): optimized as it renders
        where = f"file {home.path.name} (as rendered: its logic's output is variables)"
        leaf = FileLeaf("file", home.label, where, text, ("observed", name), template_format)
        leaf.path = home.path
    derived.observed[name] = PromptSlot(
        name,
        base,
        group.nodes,  # a list: grows as other sites show the same text
        leaf.kind,
        where,
        text,
        template_format,
        True,
        leaf,
        library,
    )
