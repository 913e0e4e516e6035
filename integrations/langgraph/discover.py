"""Find every prompt in a compiled LangGraph graph and give each a stable, readable name.

A module is named after the node it lives in: ``"<node>"`` when the node holds one prompt,
``"<node>.<slot>"`` when it holds several (the slot is the message role of a chat template,
``system``/``human``, or the variable name of a string constant). Nodes of a subgraph are
prefixed by the parent node: ``"research/model"``. ``gg.prompt(name, ...)`` prompts keep the
name given in code. Names depend only on the graph's structure, so they are the same in every
process and match the ``node`` of the trace records (see ``tracing``).

What is found (the walk is described in ``walk``): ``ChatPromptTemplate`` system/human/ai
templates (pure placeholders like ``"{question}"`` are skipped), ``PromptTemplate``s, literal
``SystemMessage``s (how ``create_agent`` and ``create_react_agent`` hold their prompt), string
constants of your own code whose variable name matches ``walk.PROMPT_NAME`` (module globals and
closure variables a node function uses), all of these inside chains, closures, module globals,
bound methods, ``functools.partial`` and subgraphs, and ``gg.prompt`` calls.
Not found: prompts built at run time from non-literal parts, tool descriptions, prompts used only
by conditional-edge functions, attributes of your own class instances. Mark those with
``gg.prompt``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

from gepa_graph.integrations.langgraph.declared import CONFIG_KEY
from gepa_graph.integrations.langgraph.walk import (
    DeclaredLeaf,
    Leaf,
    Walker,
    template_variables,
)
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

_HOW_TO_MARK = (
    'Mark a prompt explicitly: inside the node call `gg.prompt("my_prompt", "default text")` '
    "and use the text it returns, or keep prompts in a ChatPromptTemplate / SystemMessage, or in "
    "a module constant whose name contains PROMPT, INSTRUCTIONS, TEMPLATE or SYSTEM."
)


class NoPromptsFound(ValueError):
    """The graph holds no prompt discovery can see."""


@dataclass(frozen=True)
class PromptSlot:
    """One optimizable prompt of a graph.

    ``node`` is the trace node whose records a module's reflection reads; None when the prompt
    is shared by several nodes (or declared without a node), which means the whole trace.
    """

    name: str
    node: str | None
    nodes: tuple[str, ...]
    kind: str  # "template", "message", "string" or "declared"
    where: str
    text: str
    variables: tuple[str, ...]
    leaf: Leaf = field(compare=False, repr=False)

    @property
    def key(self) -> Hashable:
        return self.leaf.key


def ensure_compiled(graph: object) -> Pregel:
    if isinstance(graph, StateGraph):
        raise TypeError("got an uncompiled StateGraph; pass graph.compile() instead")
    if not isinstance(graph, Pregel):
        raise TypeError(f"expected a compiled LangGraph graph, got {type(graph).__name__}")
    return graph


def discover(graph: Pregel, declared: Mapping[str, str] | None = None) -> dict[str, PromptSlot]:
    """Every prompt slot of ``graph`` by module name, in graph order.

    ``declared`` adds ``gg.prompt`` names (with their default text) the scan cannot see, e.g.
    calls inside conditional-edge functions. Raises ``NoPromptsFound`` when nothing is found.
    """
    graph = ensure_compiled(graph)
    walker = Walker()
    walker.walk(graph)
    slots = _name_slots(walker)
    for name, default in (declared or {}).items():
        if name in slots:
            if slots[name].kind != "declared":
                raise ValueError(f"declared prompt {name!r} clashes with a discovered prompt")
            continue
        leaf = DeclaredLeaf(
            kind="declared",
            label=name,
            where="declared by the caller",
            text=default,
            variables=template_variables(default),
            key=("declared", name),
        )
        slots[name] = PromptSlot(
            name, None, (), leaf.kind, leaf.where, default, leaf.variables, leaf
        )
    # gg.prompt texts the graph carries in its config (with_prompts, apply) win over defaults.
    configured = ((graph.config or {}).get("configurable") or {}).get(CONFIG_KEY) or {}
    for name, slot in slots.items():
        if slot.kind == "declared" and isinstance(configured.get(name), str):
            text = configured[name]
            slots[name] = dataclasses.replace(slot, text=text, variables=template_variables(text))
    if not slots:
        raise NoPromptsFound(f"found no prompt in graph {graph.get_name()!r}. {_HOW_TO_MARK}")
    return slots


def _name_slots(walker: Walker) -> dict[str, PromptSlot]:
    by_node: dict[str, list[Leaf]] = {}
    declared: list[Leaf] = []
    for key, leaf in walker.leaves.items():
        if isinstance(leaf, DeclaredLeaf):
            declared.append(leaf)
        else:
            by_node.setdefault(walker.nodes[key][0] or "graph", []).append(leaf)
    names: dict[str, Leaf] = {}
    for node, leaves in by_node.items():
        if len(leaves) == 1:
            names[node] = leaves[0]
            continue
        for leaf in leaves:
            name, n = f"{node}.{leaf.label}", 1
            while name in names:
                n += 1
                name = f"{node}.{leaf.label}_{n}"
            names[name] = leaf
    for leaf in declared:
        if leaf.label in names:
            raise ValueError(
                f"gg.prompt name {leaf.label!r} ({leaf.where}) clashes with the discovered prompt "
                f"{leaf.label!r} ({names[leaf.label].where}); choose another name"
            )
        names[leaf.label] = leaf
    slots = {}
    for name, leaf in names.items():
        nodes = tuple(node for node in walker.nodes[leaf.key] if node is not None)
        node = nodes[0] if len(nodes) == 1 else None
        slots[name] = PromptSlot(
            name, node, nodes, leaf.kind, leaf.where, leaf.text, leaf.variables, leaf
        )
    return slots


def describe(graph: Pregel, declared: Mapping[str, str] | None = None) -> str:
    """A table of the graph's prompts: module, node, kind, where it lives, variables, text."""
    slots = discover(graph, declared)
    header = ("module", "node", "kind", "where", "variables", "text")
    rows = [header]
    for slot in slots.values():
        preview = " ".join(slot.text.split())
        preview = preview if len(preview) <= 48 else preview[:45] + "..."
        node = slot.node if slot.node is not None else ", ".join(slot.nodes) or "(any)"
        rows.append(
            (
                slot.name,
                node,
                slot.kind,
                slot.where,
                ", ".join(slot.variables) or "-",
                preview,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    title = f"{len(slots)} prompt(s) in graph {graph.get_name()!r}"
    return "\n".join([title, *lines])
