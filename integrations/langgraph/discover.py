"""Find the prompts a graph's code holds, and give each a stable, readable name and a home.

The code is where a prompt is named and kept, not what decides it is one: ``LangGraphSystem``'s
probe runs keep the prompts that reach a model and add the instructions found nowhere in the
code (``observe``). Before a probe, the found prompts are what ``discover`` and ``inspect``
show.

A module is named after the node it is reached from: ``"<node>"`` when the node holds one
prompt, ``"<node>.<label>"`` when it holds several (the label is the message role of a chat
template, ``system``/``human``, or the variable, attribute, field or file name). Nodes of a
subgraph or a Functional API task are prefixed by the parent: ``"research/model"``; a prompt in a
conditional-edge function is reached from the edge's source node (a router leaving ``START``:
its function's name), one in a tool from the tool node. Fields of the graph's
``context_schema`` are ``"context.<field>"``, fields of a configuration class your code reads
from ``config["configurable"]`` are ``"configurable.<field>"``, and ``gg.prompt(name, ...)``
prompts keep their name. After a probe, the kept prompts are named again among themselves
(``rename``), after the node whose calls carried them.

What is found (the walk is described in ``walk``): chat and string templates and their partial
variables, literal ``SystemMessage``s (how ``create_agent`` and ``create_react_agent`` hold
their prompt), strings of your own code (module globals, ``module.NAME`` attributes, closure
variables, attributes of your node objects, string literals in functions), prompt files the code
names, configuration and context field defaults, in nodes, chains, bound arguments, tools,
conditional edges, subgraphs and tasks, and ``gg.prompt`` calls. Strings whose name does not say
"prompt" are *candidates*: they count only where a probe run shows them reaching a model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from langchain_core.runnables import Runnable
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from gepa_graph.errors import InvalidInput, NoPromptsFound, WrongType
from gepa_graph.integrations.langgraph import boundary
from gepa_graph.integrations.langgraph._internals import graphs, schemas
from gepa_graph.integrations.langgraph.leaves import DeclaredLeaf, Leaf, field_leaves
from gepa_graph.integrations.langgraph.walk import Walker
from gepa_graph.templates import variables as template_vars

HOW_TO_MARK = (
    'To optimize a prompt discovery cannot see, call `gg.prompt("my_prompt", "default text")` '
    "where the code uses it (or declare it: LangGraphSystem(graph, prompts={...})), or keep it in "
    "a constant or field whose name contains PROMPT, INSTRUCTIONS, TEMPLATE or SYSTEM."
)


@dataclass(frozen=True)
class PromptSlot:
    """One optimizable prompt of a graph.

    ``node`` is the node the prompt is reached from (None when shared by several nodes or not
    tied to one); reflection does not depend on it: model calls are attributed by the prompt
    they carry. ``strong`` is False for a candidate only a probe run can confirm.
    """

    name: str
    node: str | None
    nodes: tuple[str, ...]
    kind: str  # template, message, string, literal, context, configurable or declared
    where: str
    text: str
    template_format: str
    strong: bool
    leaf: Leaf = field(compare=False, repr=False)
    library: bool = False  # the text comes from library code (a middleware's own prompt)

    @property
    def origin(self) -> str:
        """``user`` or ``library``: where the prompt's text was written."""
        return "library" if self.library else "user"

    @property
    def variables(self) -> tuple[str, ...]:
        """The template variables of the prompt: a rewrite must keep exactly these."""
        return template_vars(self.text, self.template_format)

    @property
    def spec(self) -> boundary.PromptSpec:
        """The seed as the model boundary matches it: a template where it has variables or is a
        template object (whose rewrites must stay valid templates), else plain text."""
        templated = self.kind == "template" or self.leaf.variables
        return boundary.PromptSpec(self.leaf.text, self.template_format if templated else "plain")


def ensure_compiled(graph: object) -> Runnable:
    """``graph`` itself when it is a Runnable (a compiled graph, a Functional API entrypoint,
    a chain wrapping a graph); an uncompiled StateGraph or anything else is refused in one line."""
    if isinstance(graph, StateGraph):
        raise WrongType("got an uncompiled StateGraph; pass graph.compile() instead")
    if not isinstance(graph, Runnable):
        raise WrongType(f"expected a compiled LangGraph graph, got {type(graph).__name__}")
    return graph


def find_slots(graph: Runnable, declared: Mapping[str, str] | None = None) -> dict[str, PromptSlot]:
    """Every prompt slot of ``graph``, candidates included, by module name, in graph order."""
    return scan(graph, declared)[0]


def scan(
    graph: Runnable, declared: Mapping[str, str] | None = None
) -> tuple[dict[str, PromptSlot], set[str]]:
    """``find_slots``, and the library packages whose objects the graph runs."""
    graph = ensure_compiled(graph)
    walker = Walker()
    walker.walk(graph)
    # The context schema's fields are "context.*" however the code reads them (runtime.context,
    # get_runtime, or from config["configurable"] as with the deprecated config_schema, which
    # LangGraph turns into the context schema); rollouts hand them over both ways.
    schema = schemas.context_schema(graph)
    for leaf in field_leaves(schema, "context") if schema is not None else ():
        walker.leaves[leaf.key] = leaf
        walker.nodes.setdefault(leaf.key, [None])
    slots = _name_slots(walker)
    for name, default in (declared or {}).items():
        if name in slots:
            if slots[name].kind != "declared":
                raise InvalidInput(f"declared prompt {name!r} clashes with a discovered prompt")
            continue
        leaf = DeclaredLeaf(
            kind="declared",
            label=name,
            where="declared by the caller",
            text=default,
            key=("declared", name),
        )
        slots[name] = _slot(name, leaf, ())
    # A graph from with_prompts runs other texts than its objects hold: report those.
    config = getattr(graph, "config", None) or {}
    substitution = (config.get("configurable") or {}).get(boundary.CONFIG_KEY)
    if isinstance(substitution, boundary.Substitution):
        for name, slot in list(slots.items()):
            text = substitution.prompts.get(name)
            if text is not None and text != slot.text:
                slots[name] = PromptSlot(
                    name,
                    slot.node,
                    slot.nodes,
                    slot.kind,
                    slot.where,
                    text,
                    slot.template_format,
                    slot.strong,
                    slot.leaf,
                )
    return slots, walker.packages


def discover(graph: Runnable, declared: Mapping[str, str] | None = None) -> dict[str, PromptSlot]:
    """The prompts of ``graph`` that its code marks as prompts, by module name, in graph order.

    ``declared`` adds ``gg.prompt`` names (with their default text) the scan cannot see.
    Raises ``NoPromptsFound`` (saying what was inspected) when there is none; candidates that
    need a probe to be confirmed are left out (``find_slots`` has them).
    """
    slots = find_slots(graph, declared)
    strong = {name: slot for name, slot in slots.items() if slot.strong}
    if not strong:
        raise NoPromptsFound(no_prompts_message(graph, slots))
    return strong


def no_prompts_message(
    graph: Runnable, slots: Mapping[str, PromptSlot], unclaimed: list[str] | None = None
) -> str:
    """Why nothing was found, in one line: the nodes inspected, unconfirmed candidates,
    and how to mark a prompt (``gg.prompt``) or find one with a probe run."""
    nodes = ", ".join(graphs.node_runnables(graph) if isinstance(graph, Pregel) else ()) or "none"
    message = (
        f"found no prompt in graph {graph.get_name()!r} (inspected nodes {nodes}, their "
        "chains, tools, functions, objects and conditional edges"
    )
    candidates = [name for name, slot in slots.items() if not slot.strong]
    if candidates:
        message += f"; candidates that no probe run confirmed: {candidates}"
    message += ")."
    if unclaimed:
        shown = "; ".join(repr(_preview(text)) for text in unclaimed[:3])
        message += f" System messages that reached a model: {shown}."
    elif unclaimed is None:
        message += (
            " `gepa-graph inspect MODULE:GRAPH --probe EXAMPLES.jsonl` runs it once and "
            "lists the system messages that reach a model."
        )
    return f"{message} {HOW_TO_MARK}"


def _slot(name: str, leaf: Leaf, nodes: tuple[str, ...]) -> PromptSlot:
    node = nodes[0] if len(nodes) == 1 else None
    return PromptSlot(
        name, node, nodes, leaf.kind, leaf.where, leaf.text, leaf.template_format, leaf.strong, leaf
    )


def _name_slots(walker: Walker) -> dict[str, PromptSlot]:
    return name_leaves(
        [
            (leaf, tuple(n for n in walker.nodes[key] if n is not None))
            for key, leaf in walker.leaves.items()
        ]
    )


def name_leaves(leaves: list[tuple[Leaf, tuple[str, ...]]]) -> dict[str, PromptSlot]:
    """Name each (leaf, node paths) after its first node: ``"<node>"`` for a node's only leaf,
    else ``"<node>.<label>"``. Strong leaves are named first, so a candidate never changes a
    prompt's name. Names depend only on the leaves given, so a probe run that keeps some of
    them names those again (``rename``)."""
    names: dict[str, tuple[Leaf, tuple[str, ...]]] = {}
    for strong in (True, False):
        by_node: dict[str, list[tuple[Leaf, tuple[str, ...]]]] = {}
        for leaf, nodes in leaves:
            if leaf.strong is not strong:
                continue
            if isinstance(leaf, DeclaredLeaf):
                if leaf.label in names:
                    raise InvalidInput(
                        f"gg.prompt name {leaf.label!r} ({leaf.where}) clashes with the "
                        f"discovered prompt {leaf.label!r} ({names[leaf.label][0].where}); "
                        "choose another name"
                    )
                names[leaf.label] = (leaf, nodes)
            elif leaf.kind in ("context", "configurable"):
                names[f"{leaf.kind}.{leaf.label}"] = (leaf, nodes)
            else:
                by_node.setdefault(nodes[0] if nodes else "graph", []).append((leaf, nodes))
        for node, held in by_node.items():
            taken = node in names or any(name.startswith(f"{node}.") for name in names)
            if len(held) == 1 and not taken:
                names[node] = held[0]
                continue
            for leaf, nodes in held:
                name, n = f"{node}.{leaf.label}", 1
                while name in names:
                    n += 1
                    name = f"{node}.{leaf.label}_{n}"
                names[name] = (leaf, nodes)
    return {name: _slot(name, leaf, nodes) for name, (leaf, nodes) in names.items()}


def rename(
    slots: Mapping[str, PromptSlot], reached: Mapping[str, list[str]]
) -> dict[str, PromptSlot]:
    """``slots`` (the found prompts a probe run kept) named again among themselves, each after
    the first node whose model calls carried it where the code reaches it from there too (a
    helper a tool calls: the tool node), else after the first node the code reaches it from;
    old name -> slot with its new name."""
    pairs = []
    for name, slot in slots.items():
        carried = [n for n in reached.get(name, ()) if n in slot.nodes]
        nodes = (*carried[:1], *(n for n in slot.nodes if n not in carried[:1]))
        pairs.append((name, slot, nodes))
    named = name_leaves([(slot.leaf, nodes) for _, slot, nodes in pairs])
    by_leaf = {id(slot.leaf): slot for slot in named.values()}
    return {
        name: dataclasses.replace(by_leaf[id(slot.leaf)], library=slot.library)
        for name, slot, _ in pairs
    }


def _preview(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def table(
    slots: Mapping[str, PromptSlot],
    title: str,
    notes: list[str] | None = None,
    reached: Mapping[str, list[str]] | None = None,
) -> str:
    """A table of prompts: module, kind (``user`` or ``library``), the nodes whose model calls
    carried it (``reached``, from a probe run; else the nodes the code reaches it from), its
    home (where ``apply`` writes it), variables, text; then ``notes``."""
    header = ("module", "kind", "nodes", "home", "variables", "text")
    rows = [header]
    for slot in slots.values():
        nodes = (reached or {}).get(slot.name) or slot.nodes
        rows.append(
            (
                slot.name,
                slot.origin,
                ", ".join(nodes) or "(any)",
                slot.where,
                ", ".join(slot.variables) or "-",
                _preview(slot.text, 48),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join([title, *lines, *(notes or [])])
