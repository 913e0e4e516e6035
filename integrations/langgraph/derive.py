"""Match the prompts found in the code against the instructions the probe saw reach a model.

``derive`` is the second half of discovery's ground truth: ``observe`` groups what reached a
model into instruction texts; here each found prompt is located in them (a found prompt reached
a model from those nodes, and is kept under a name given again by ``discover.rename``), and
every instruction no found prompt holds becomes a module of its own, homed in a prompt file
where one holds its phrases, else carried in the config (kind ``observed``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from gepa_graph.integrations.langgraph.boundary import PromptSpec
from gepa_graph.integrations.langgraph.discover import PromptSlot, rename
from gepa_graph.integrations.langgraph.leaves import FileLeaf, Leaf, looks_like_prose
from gepa_graph.integrations.langgraph.library_texts import LibraryTexts
from gepa_graph.integrations.langgraph.observe import (
    SENTINEL,
    WORD,
    Observed,
    constant_template,
    literal_parts,
    mask,
    sentinel,
    words,
)
from gepa_graph.integrations.langgraph.patterns import PromptPattern


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
    parts = [" ".join(WORD.findall(p)) for p in literal_parts(text, template_format)]
    parts = [part for part in parts if part]
    for leaf in files:
        flat = f" {' '.join(WORD.findall(leaf.text))} "
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
    kept: list[tuple[str, tuple[int, int]]] = []
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
            nodes = cast(list[str], slot.nodes)  # a list until ``derive`` returns
            nodes.extend(n for n in group.nodes if n not in nodes)
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
        leaf = FileLeaf(
            "file", home.label, where, text, ("observed", name), template_format, path=home.path
        )
    derived.observed[name] = PromptSlot(
        name,
        base,
        cast(tuple[str, ...], group.nodes),  # a list: grows as other sites show the same text
        leaf.kind,
        where,
        text,
        template_format,
        True,
        leaf,
        library,
    )
