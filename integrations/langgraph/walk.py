"""One traversal of everything a compiled graph runs, for discovery and for substitution.

A *leaf* is a place that holds prompt text: a ``PromptTemplate`` (alone or inside a
``ChatPromptTemplate``), a literal ``SystemMessage``, a string in a closure cell or a module
global of your own code whose variable name says it is a prompt, or a ``gg.prompt`` call.

``Walker(replacements).walk(graph)`` visits the graph's nodes and, recursively, the runnables,
functions, closure cells and module globals they reach. It records every leaf it meets (with the
node paths it was reached from) and returns the graph unchanged, or, for leaves named in
``replacements``, a copy holding the new text. Only objects on the way to a replaced leaf are
copied; models, tools, checkpointers and everything else are shared, and nothing is mutated, so
rollouts of different candidates run side by side safely. Functions are copied with
``types.FunctionType`` over a copied closure cell or a copied globals dict, so a node that
formats a module constant sees the candidate's text without the module being touched.

Objects are memoised by identity: a cell shared by a node's sync and async functions is copied
once and both copies use it, and a prompt reached from two nodes is recorded once with both.

Raw strings count as prompts only in your own code (not in langchain/langgraph/stdlib), and only
when the variable name matches ``PROMPT_NAME``; the framework's prompts are found as template
and message objects.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import string
import sys
import textwrap
import types
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gepa_graph.integrations.langgraph import _internals
from gepa_graph.integrations.langgraph.declared import prompt as declared_prompt
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.prompts.chat import BaseMessagePromptTemplate
from langchain_core.runnables import (
    Runnable,
    RunnableBinding,
    RunnableParallel,
    RunnableSequence,
    RunnableWithFallbacks,
)
from langchain_core.runnables.base import RunnableBindingBase, RunnableEachBase
from langchain_core.runnables.passthrough import RunnableAssign
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel

PROMPT_NAME = re.compile(r"prompt|instruction|template|system|persona|guideline|rubric", re.I)
"""A string variable is a prompt when its name matches this (case-insensitive)."""

_FRAMEWORK_PACKAGES = frozenset({"langsmith", "pydantic", "gepa_graph", "litellm", "openai"})


def is_user_code(function: types.FunctionType) -> bool:
    """Whether a function was written by the user rather than by a library or the stdlib."""
    top = (getattr(function, "__module__", None) or "").split(".")[0]
    return not (
        top in sys.stdlib_module_names
        or top in _FRAMEWORK_PACKAGES
        or top.startswith(("langchain", "langgraph"))
    )


def template_variables(text: str) -> tuple[str, ...]:
    """The ``{var}`` fields of an f-string template, () when the text is not one."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError:
        return ()
    return tuple(sorted(name for name in fields if name.isidentifier()))


# ----------------------------------------------------------------------------- leaves


@dataclass(eq=False)
class Leaf:
    """A place holding prompt text. ``key`` identifies the place, not the text."""

    kind: str
    label: str
    where: str
    text: str
    variables: tuple[str, ...]
    key: Hashable

    def replacement(self, text: str) -> Any:
        """The object that takes this leaf's place in a copy (a new template, message, cell)."""
        raise NotImplementedError

    def write(self, text: str) -> None:
        """Change the text in place (``Result.apply``)."""
        raise NotImplementedError


@dataclass(eq=False)
class TemplateLeaf(Leaf):
    template: PromptTemplate = field(default=None, repr=False)
    chat: ChatPromptTemplate | None = field(default=None, repr=False)

    @classmethod
    def of(cls, template: PromptTemplate, label: str, where: str,
           chat: ChatPromptTemplate | None = None) -> TemplateLeaf:
        """The leaf for a template object: its text, variables and identity come from it."""
        return cls(
            kind="template", label=label, where=where, text=template.template,
            variables=tuple(sorted(template.input_variables)), key=("object", id(template)),
            template=template, chat=chat,
        )

    def _rebuilt(self, text: str) -> PromptTemplate:
        # from_template validates the text and finds its variables (raises on a broken one).
        parsed = PromptTemplate.from_template(
            text,
            template_format=self.template.template_format,
            partial_variables=self.template.partial_variables,
        )
        return self.template.model_copy(
            update={"template": text, "input_variables": parsed.input_variables}
        )

    def replacement(self, text: str) -> PromptTemplate:
        return self._rebuilt(text)

    def write(self, text: str) -> None:
        rebuilt = self._rebuilt(text)
        self.template.template = rebuilt.template
        self.template.input_variables = rebuilt.input_variables
        if self.chat is not None:
            self.chat.input_variables = chat_input_variables(self.chat, self.chat.messages)


@dataclass(eq=False)
class MessageLeaf(Leaf):
    message: SystemMessage = field(default=None, repr=False)

    def replacement(self, text: str) -> SystemMessage:
        return self.message.model_copy(update={"content": text})

    def write(self, text: str) -> None:
        self.message.content = text


@dataclass(eq=False)
class CellLeaf(Leaf):
    cell: types.CellType = field(default=None, repr=False)

    def replacement(self, text: str) -> types.CellType:
        return types.CellType(text)

    def write(self, text: str) -> None:
        self.cell.cell_contents = text


@dataclass(eq=False)
class GlobalLeaf(Leaf):
    namespace: dict[str, Any] = field(default=None, repr=False)
    name: str = ""

    def replacement(self, text: str) -> str:
        return text

    def write(self, text: str) -> None:
        self.namespace[self.name] = text


@dataclass(eq=False)
class DeclaredLeaf(Leaf):
    """A ``gg.prompt(name, default)`` call: substituted through the run config, not a copy."""


def chat_input_variables(chat: ChatPromptTemplate, messages: list[Any]) -> list[str]:
    """Input variables of a chat template with ``messages``, computed as ChatPromptTemplate does."""
    names: set[str] = set()
    for message in messages:
        if not isinstance(message, BaseMessage):
            names.update(getattr(message, "input_variables", ()))
    return sorted(names - set(chat.partial_variables))


def _role(message_template: BaseMessagePromptTemplate) -> str:
    role = getattr(message_template, "role", None)  # ChatMessagePromptTemplate
    if isinstance(role, str) and role:
        return role
    name = type(message_template).__name__
    return name.removesuffix("MessagePromptTemplate").lower() or "message"


# ----------------------------------------------------------------------------- gg.prompt calls


@functools.lru_cache(maxsize=1024)
def _parsed_source(code: types.CodeType) -> ast.AST | None:
    try:
        source = textwrap.dedent(inspect.getsource(code))
        return ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None


def declared_calls(function: types.FunctionType) -> list[tuple[str, str]]:
    """``(name, default)`` of every ``gg.prompt(...)`` call written in ``function``'s source.

    The callee must resolve (through the function's globals) to ``gg.prompt`` itself, and the
    name and default must be string literals or module-level string constants.
    """
    tree = _parsed_source(function.__code__)
    if tree is None:
        return []
    namespace = function.__globals__

    def resolve(expr: ast.expr) -> Any:
        if isinstance(expr, ast.Constant):
            return expr.value
        if isinstance(expr, ast.Name):
            return namespace.get(expr.id)
        if isinstance(expr, ast.Attribute):
            return getattr(resolve(expr.value), expr.attr, None)
        return None

    found: list[tuple[str, str]] = []
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call) or resolve(call.func) is not declared_prompt:
            continue
        arguments = dict(zip(("name", "default"), call.args, strict=False))
        arguments.update({kw.arg: kw.value for kw in call.keywords if kw.arg})
        name = resolve(arguments["name"]) if "name" in arguments else None
        default = resolve(arguments["default"]) if "default" in arguments else None
        if isinstance(name, str) and name and isinstance(default, str):
            found.append((name, default))
    return found


def _referenced_names(code: types.CodeType) -> list[str]:
    """Global names a code object (and the functions, lambdas, comprehensions in it) may load."""
    names = list(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names.extend(_referenced_names(constant))
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------------- the walker

_OPAQUE = (BaseLanguageModel, BaseTool, BaseCheckpointSaver)


def _walkable(value: Any) -> bool:
    if isinstance(value, _OPAQUE):
        return False
    return isinstance(
        value,
        (
            Runnable,
            SystemMessage,
            types.FunctionType,
            types.MethodType,
            functools.partial,
            types.CellType,
        ),
    )


class Walker:
    """Visits a graph once; see the module docstring.

    ``replacements`` maps leaf keys (from a discovery walk of the same graph) to new text.
    After ``walk``, ``leaves`` holds every leaf in discovery order and ``nodes`` the node paths
    each leaf was reached from (None: reached outside any node).
    """

    def __init__(self, replacements: Mapping[Hashable, str] | None = None) -> None:
        self.replacements = dict(replacements or {})
        self.leaves: dict[Hashable, Leaf] = {}
        self.nodes: dict[Hashable, list[str | None]] = {}
        self._memo: dict[int, Any] = {}
        self._keep_alive: list[Any] = []  # ids in _memo must not be reused during a walk
        self._under: dict[int, set[Hashable]] = {}
        self._stack: list[set[Hashable]] = []
        self._copied_globals: dict[int, dict[str, Any]] = {}

    def walk(self, graph: Pregel) -> Pregel:
        result = self.visit(graph, None, "graph")
        self._relink_copied_globals()
        return result

    # -- bookkeeping

    def _leaf(self, leaf: Leaf, node: str | None) -> Any:
        """Record ``leaf`` as reached from ``node``; its replacement object, or None to keep it."""
        known = self.leaves.setdefault(leaf.key, leaf)
        self._note([known.key], node)
        if known.key in self.replacements:
            return known.replacement(self.replacements[known.key])
        return None

    def _note(self, keys: Any, node: str | None) -> None:
        for key in keys:
            paths = self.nodes.setdefault(key, [])
            if node not in paths:
                paths.append(node)
            if self._stack:
                self._stack[-1].add(key)

    def visit(self, value: Any, node: str | None, label: str, user: bool = False) -> Any:
        """``value`` itself, or its copy with replaced leaves. ``label`` names the binding."""
        if not _walkable(value):
            return value
        oid = id(value)
        if oid in self._memo:  # shared object, or a cycle back to one still being visited
            self._note(self._under.get(oid, ()), node)
            return self._memo[oid]
        self._memo[oid] = value
        self._keep_alive.append(value)
        self._stack.append(set())
        try:
            result = self._dispatch(value, node, label, user)
        finally:
            under = self._stack.pop()
        self._under[oid] = under
        if self._stack:
            self._stack[-1].update(under)
        self._memo[oid] = result
        return result

    # -- object kinds

    def _dispatch(self, value: Any, node: str | None, label: str, user: bool) -> Any:
        if isinstance(value, Pregel):
            return self._graph(value, node)
        if isinstance(value, ChatPromptTemplate):
            return self._chat(value, node)
        if isinstance(value, PromptTemplate):
            leaf = TemplateLeaf.of(value, label, f"PromptTemplate `{label}`")
            replaced = self._leaf(leaf, node)
            return value if replaced is None else replaced
        if isinstance(value, SystemMessage):
            return self._message(value, node, f"SystemMessage held by `{label}`")
        if isinstance(value, RunnableSequence):
            steps = [self.visit(step, node, label) for step in value.steps]
            if all(new is old for new, old in zip(steps, value.steps, strict=True)):
                return value
            return RunnableSequence(*steps, name=value.name)
        if isinstance(value, RunnableParallel):
            branches = {key: self.visit(step, node, key) for key, step in value.steps__.items()}
            if all(branches[key] is step for key, step in value.steps__.items()):
                return value
            return value.model_copy(update={"steps__": branches})
        if isinstance(value, (RunnableBinding, RunnableBindingBase, RunnableEachBase)):
            return self._fields(value, node, label, ("bound",))
        if isinstance(value, RunnableWithFallbacks):
            return self._fields(value, node, label, ("runnable", "fallbacks"))
        if isinstance(value, RunnableAssign):
            return self._fields(value, node, label, ("mapper",))
        parts = _internals.function_parts(value)
        if parts is not None:
            new_parts = {name: self.visit(fn, node, label) for name, fn in parts.items()}
            if all(new_parts[name] is fn for name, fn in parts.items()):
                return value
            return _internals.with_function_parts(value, new_parts)
        if isinstance(value, types.FunctionType):
            return self._function(value, node)
        if isinstance(value, types.MethodType):
            function = self.visit(value.__func__, node, label)
            return (
                value if function is value.__func__ else types.MethodType(function, value.__self__)
            )
        if isinstance(value, functools.partial):
            return self._partial(value, node, label)
        if isinstance(value, types.CellType):
            return self._cell(value, node, label, user)
        return value

    def _graph(self, graph: Pregel, node: str | None) -> Pregel:
        replaced = {}
        for name, runnable in _internals.node_runnables(graph).items():
            path = f"{node}/{name}" if node else name
            new = self.visit(runnable, path, name)
            if new is not runnable:
                replaced[name] = new
        return _internals.copy_graph(graph, replaced) if replaced else graph

    def _chat(self, chat: ChatPromptTemplate, node: str | None) -> ChatPromptTemplate:
        messages = []
        roles: dict[str, int] = {}
        for index, message in enumerate(chat.messages):
            if isinstance(message, SystemMessage):
                new = self._message(message, node, f"ChatPromptTemplate message {index} (system)")
            elif isinstance(message, BaseMessagePromptTemplate) and isinstance(
                getattr(message, "prompt", None), PromptTemplate
            ):
                role = _role(message)
                roles[role] = roles.get(role, 0) + 1
                new = self._template_in_chat(chat, message, index, role, node)
            else:  # MessagesPlaceholder, multimodal templates, literal non-system messages
                new = message
            messages.append(new)
        if all(new is old for new, old in zip(messages, chat.messages, strict=True)):
            return chat
        return chat.model_copy(
            update={"messages": messages, "input_variables": chat_input_variables(chat, messages)}
        )

    def _template_in_chat(
        self, chat: ChatPromptTemplate, message: Any, index: int, role: str, node: str | None
    ) -> Any:
        template = message.prompt
        if template_variables(template.template) and not _has_words(template.template):
            return message  # pure plumbing like "{question}": nothing to optimize
        leaf = TemplateLeaf.of(
            template, role, f"ChatPromptTemplate message {index} ({role})", chat=chat
        )
        replaced = self._leaf(leaf, node)
        return message if replaced is None else message.model_copy(update={"prompt": replaced})

    def _message(self, message: SystemMessage, node: str | None, where: str) -> SystemMessage:
        if not isinstance(message.content, str) or not message.content.strip():
            return message  # content blocks (e.g. cache control) are left alone
        leaf = MessageLeaf(
            kind="message",
            label="system",
            where=where,
            text=message.content,
            variables=(),
            key=("object", id(message)),
            message=message,
        )
        replaced = self._leaf(leaf, node)
        return message if replaced is None else replaced

    def _fields(self, value: Any, node: str | None, label: str, names: tuple[str, ...]) -> Any:
        updates = {}
        for name in names:
            old = getattr(value, name)
            if isinstance(old, list):
                new = [self.visit(item, node, label) for item in old]
                if any(a is not b for a, b in zip(new, old, strict=True)):
                    updates[name] = new
            else:
                new = self.visit(old, node, label)
                if new is not old:
                    updates[name] = new
        return value.model_copy(update=updates) if updates else value

    def _partial(self, value: functools.partial, node: str | None, label: str) -> Any:
        function = self.visit(value.func, node, label)
        args = [self.visit(arg, node, label) for arg in value.args]
        keywords = {key: self.visit(arg, node, key) for key, arg in value.keywords.items()}
        unchanged = (
            function is value.func
            and all(a is b for a, b in zip(args, value.args, strict=True))
            and all(keywords[key] is arg for key, arg in value.keywords.items())
        )
        return value if unchanged else functools.partial(function, *args, **keywords)

    def _cell(self, cell: types.CellType, node: str | None, name: str, user: bool) -> Any:
        try:
            content = cell.cell_contents
        except ValueError:  # a cell not yet filled
            return cell
        if isinstance(content, str):
            if not (user and PROMPT_NAME.search(name) and content.strip()):
                return cell
            leaf = CellLeaf(
                kind="string",
                label=name.lower(),
                where=f"closure variable `{name}`",
                text=content,
                variables=template_variables(content),
                key=("object", id(cell)),
                cell=cell,
            )
            replaced = self._leaf(leaf, node)
            return cell if replaced is None else replaced
        new = self.visit(content, node, name)
        return cell if new is content else types.CellType(new)

    def _function(self, function: types.FunctionType, node: str | None) -> types.FunctionType:
        code = function.__code__
        user = is_user_code(function)
        cells = function.__closure__ or ()
        new_cells = tuple(
            self.visit(cell, node, name, user)
            for name, cell in zip(code.co_freevars, cells, strict=True)
        )
        updates = self._globals_updates(function, node) if user else {}
        if user:
            for name, default in declared_calls(function):
                leaf = DeclaredLeaf(
                    kind="declared",
                    label=name,
                    where=f"gg.prompt call in {function.__qualname__}",
                    text=default,
                    variables=template_variables(default),
                    key=("declared", name),
                )
                self._leaf(leaf, node)
        if not updates and all(a is b for a, b in zip(new_cells, cells, strict=True)):
            return function
        namespace = function.__globals__
        if updates:
            namespace = self._copied_globals.setdefault(id(namespace), dict(namespace))
            namespace.update(updates)
        clone = types.FunctionType(
            code, namespace, function.__name__, function.__defaults__, new_cells or None
        )
        clone.__kwdefaults__ = function.__kwdefaults__
        clone.__qualname__ = function.__qualname__
        clone.__doc__ = function.__doc__
        clone.__annotations__ = function.__annotations__
        clone.__dict__.update(function.__dict__)
        return clone

    def _globals_updates(self, function: types.FunctionType, node: str | None) -> dict[str, Any]:
        namespace = function.__globals__
        updates: dict[str, Any] = {}
        for name in _referenced_names(function.__code__):
            if name not in namespace:
                continue
            value = namespace[name]
            if isinstance(value, str):
                if not (PROMPT_NAME.search(name) and value.strip()):
                    continue
                module = namespace.get("__name__", "?")
                leaf = GlobalLeaf(
                    kind="string",
                    label=name.lower(),
                    where=f"module constant {module}.{name}",
                    text=value,
                    variables=template_variables(value),
                    key=("global", id(namespace), name),
                    namespace=namespace,
                    name=name,
                )
                new = self._leaf(leaf, node)
            else:
                new = self.visit(value, node, name)
                new = None if new is value else new
            if new is not None:
                updates[name] = new
        return updates

    def _relink_copied_globals(self) -> None:
        """Point copied globals at copies made after them (a function that calls itself)."""
        for namespace in self._copied_globals.values():
            for name, value in namespace.items():
                replacement = self._memo.get(id(value))
                if replacement is not None and replacement is not value and _walkable(value):
                    namespace[name] = replacement


def _has_words(text: str) -> bool:
    """Whether a template has text besides its placeholders."""
    stripped = re.sub(r"\{[^{}]*\}", "", text)
    return bool(re.search(r"\w", stripped))
