"""One read-only traversal of everything a compiled graph runs, to find the prompts in it.

A *leaf* is a place that holds prompt text: a ``PromptTemplate`` (alone or inside a
``ChatPromptTemplate``) or one of its partial variables, a literal ``SystemMessage``, a string in
a closure cell, a module global or a module attribute (``prompts.MAIN_PROMPT``), an attribute of
your own object, a field default of a configuration class your code reads, a string literal
inside a function, a prompt file the code names, or a ``gg.prompt`` call.

``Walker().walk(graph)`` visits the graph's nodes and conditional edges (those leaving ``START``
too) and, recursively, the runnables and their bound arguments, tools, functions, Functional API
tasks, closure cells, module globals and user objects they reach, and
records every leaf with the node paths it was reached from (an object reached from several nodes:
under each of them; a tool under the tool node that runs it, wherever else it is bound or held).
It never changes anything: rollouts
substitute prompts at the model boundary (``boundary``); a leaf's ``write`` is the one in-place
change (``Result.apply``).

Leaves are *strong* when the code says they are prompts (template and message objects, names
matching ``PROMPT_NAME``, ``gg.prompt``) and *weak* otherwise (prose held under another name, a
string literal in a function, a file): a weak leaf becomes a module only when a probe run shows
it reaching a model. Strings count only in your own code (not in the stdlib or an installed
library such as langchain, langgraph or jinja2, unless that package defines the graph's nodes).
"""

from __future__ import annotations

import ast
import functools
import inspect
import pathlib
import re
import sys
import textwrap
import types
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.prompts.chat import BaseMessagePromptTemplate
from langchain_core.runnables import (
    RunnableBinding,
    RunnableParallel,
    RunnableSequence,
    RunnableWithFallbacks,
)
from langchain_core.runnables.base import RunnableBindingBase, RunnableEachBase
from langchain_core.runnables.passthrough import RunnableAssign
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.constants import START
from langgraph.pregel import Pregel

from gepa_graph.integrations.langgraph._internals import graphs, schemas
from gepa_graph.integrations.langgraph.declared import prompt as declared_prompt
from gepa_graph.templates import variables as template_vars

PROMPT_NAME = re.compile(r"prompt|instruction|template|system|persona|guideline|rubric", re.I)
"""A string variable is a (strong) prompt when its name matches this (case-insensitive)."""

_FRAMEWORK_PACKAGES = frozenset({"langsmith", "pydantic", "gepa_graph", "litellm", "openai"})


USER_PACKAGES: set[str] = set()
"""Top-level packages that define a walked graph's nodes: the user's, wherever installed."""


def is_user_code(obj: Any) -> bool:
    """Whether a function, class or module was written by the user, not a library or the stdlib:
    a package installed into site-packages is a library unless it defines a graph's nodes."""
    name = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
    top = (name or "").split(".")[0]
    if not top or top in USER_PACKAGES:
        return bool(top)
    return not (
        top in sys.stdlib_module_names
        or top in _FRAMEWORK_PACKAGES
        or top.startswith(("langchain", "langgraph", "_pytest", "pytest", "builtins"))
        or _installed(top)
    )


@functools.lru_cache(maxsize=1024)
def _installed(top: str) -> bool:
    """Whether a top-level package lives in site-packages (a dependency, not the user's code)."""
    module = sys.modules.get(top)
    path = getattr(module, "__file__", None) or ""
    return "site-packages" in path or "dist-packages" in path


def named_prompt(name: str, text: str) -> bool | None:
    """Whether a string held under ``name`` is a prompt: True when the name says so (strong),
    False when it is prose under another name (a candidate), None when it is neither."""
    if not text.strip():
        return None
    if PROMPT_NAME.search(name):
        return True
    return False if looks_like_prose(text) else None


def looks_like_prose(text: str) -> bool:
    """Whether a string under a name that does not say "prompt" could still be one."""
    return len(text.strip()) >= 24 and len(text.split()) >= 4


class CannotWriteInPlace(Exception):
    """``apply`` has no place to write this prompt; ``str(exc)`` says how to load it instead."""


# ----------------------------------------------------------------------------- leaves


@dataclass(eq=False)
class Leaf:
    """A place holding prompt text. ``key`` identifies the place, not the text."""

    kind: str
    label: str
    where: str
    text: str
    key: Hashable
    template_format: str = "f-string"
    strong: bool = True

    @property
    def variables(self) -> tuple[str, ...]:
        """The template variables of the text (none for plain text)."""
        return template_vars(self.text, self.template_format)

    def write(self, text: str) -> None:
        """Change the text in place (``Result.apply``)."""
        raise CannotWriteInPlace(
            f"{self.where} cannot be changed in place; run the graph returned by "
            "gepa_graph.integrations.langgraph.with_prompts(graph, prompts) (or "
            "tracking.registry.with_registry_prompts) instead"
        )


@dataclass(eq=False)
class TemplateLeaf(Leaf):
    """A prompt template's text (alone, or a message of a ChatPromptTemplate ``chat``)."""

    template: PromptTemplate = field(default=None, repr=False)
    chat: ChatPromptTemplate | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls,
        template: PromptTemplate,
        label: str,
        where: str,
        chat: ChatPromptTemplate | None = None,
    ) -> TemplateLeaf:
        """The leaf for a template object: its text, format and identity come from it."""
        return cls(
            kind="template",
            label=label,
            where=where,
            text=template.template,
            key=("object", id(template)),
            template_format=template.template_format,
            template=template,
            chat=chat,
        )

    def write(self, text: str) -> None:
        # from_template validates the text and finds its variables (raises on a broken one).
        parsed = PromptTemplate.from_template(
            text,
            template_format=self.template.template_format,
            partial_variables=self.template.partial_variables,
        )
        self.template.template = text
        self.template.input_variables = parsed.input_variables
        if self.chat is not None:
            self.chat.input_variables = chat_input_variables(self.chat, self.chat.messages)


@dataclass(eq=False)
class MessageLeaf(Leaf):
    """A SystemMessage's content, written in place by ``apply``."""

    message: SystemMessage = field(default=None, repr=False)

    def write(self, text: str) -> None:
        self.message.content = text


@dataclass(eq=False)
class CellLeaf(Leaf):
    """A closure variable holding prompt text, written in place by ``apply``."""

    cell: types.CellType = field(default=None, repr=False)

    def write(self, text: str) -> None:
        self.cell.cell_contents = text


@dataclass(eq=False)
class AttributeLeaf(Leaf):
    """A module global, a module attribute or an attribute of a user object."""

    owner: Any = field(default=None, repr=False)
    name: str = ""

    def write(self, text: str) -> None:
        setattr(self.owner, self.name, text)


@dataclass(eq=False)
class FieldLeaf(Leaf):
    """The default of a field of a dataclass or pydantic configuration/context class."""

    owner: type = field(default=None, repr=False)
    name: str = ""

    def write(self, text: str) -> None:
        schemas.set_field_default(self.owner, self.name, text)


@dataclass(eq=False)
class PartialLeaf(Leaf):
    """A partial variable of a prompt template (``template.partial(name=text)``)."""

    owner: Any = field(default=None, repr=False)
    name: str = ""

    def write(self, text: str) -> None:
        self.owner.partial_variables = {**self.owner.partial_variables, self.name: text}


@dataclass(eq=False)
class FileLeaf(Leaf):
    """A prompt kept in a file the code reads (a Markdown, text or Jinja2 template): the run
    carries a new text in its config, ``Result.export`` writes it to a copy of the file."""

    path: pathlib.Path = field(default=None, repr=False)

    @classmethod
    def of(cls, path: pathlib.Path) -> FileLeaf:
        """The leaf for a prompt file: Jinja2 and ``{{var}}`` files are mustache templates."""
        text = path.read_text(encoding="utf-8")
        jinja = path.suffix in (".j2", ".jinja", ".jinja2") or "{{" in text
        return cls(
            kind="file",
            label=path.stem.replace(".", "_"),
            where=f"file {path.name}",
            text=text,
            key=("file", str(path)),
            template_format="mustache" if jinja else "f-string",
            strong=bool(PROMPT_NAME.search(path.stem)),
            path=path,
        )

    def write(self, text: str) -> None:
        raise CannotWriteInPlace(
            f"{self.path} is a file your code reads; result.export(directory) writes the new "
            "text to a copy of it (the graph carries it in graph.config meanwhile)"
        )


@dataclass(eq=False)
class DeclaredLeaf(Leaf):
    """A ``gg.prompt(name, default)`` call: its text travels in the run's config."""


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


def string_leaf(owner: Any, name: str, text: str, where: str) -> Leaf | None:
    """The leaf for a named string (global, attribute), or None when it cannot be a prompt."""
    strong = named_prompt(name, text)
    if strong is None:
        return None
    return AttributeLeaf(
        kind="string",
        label=name.lower(),
        where=where,
        text=text,
        key=("attribute", id(owner), name),
        strong=strong,
        owner=owner,
        name=name,
    )


def field_leaves(schema: Any, kind: str) -> list[Leaf]:
    """Leaves for the string defaults of a dataclass or pydantic class's fields."""
    leaves = []
    for name, default in schemas.field_defaults(schema).items():
        strong = named_prompt(name, default) if isinstance(default, str) else None
        if strong is not None:
            leaves.append(
                FieldLeaf(
                    kind=kind,
                    label=name,
                    where=f"{kind} field {schema.__name__}.{name}",
                    text=default,
                    key=("field", id(schema), name),
                    strong=strong,
                    owner=schema,
                    name=name,
                )
            )
    return leaves


# ----------------------------------------------------------------------------- source reading


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


def _assigned_names(code: types.CodeType) -> dict[str, str]:
    """String literal -> the local variable it is assigned to, from the function's source."""
    tree = _parsed_source(code)
    names: dict[str, str] = {}
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            target = node.targets[0]
            if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                names.setdefault(node.value.value, target.id)
    return names


def _literals(code: types.CodeType) -> list[str]:
    """String constants of a code object and the code nested in it, docstrings left out."""
    docstring = code.co_consts[0] if code.co_consts and isinstance(code.co_consts[0], str) else None
    found = []
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            found.extend(_literals(constant))
        elif isinstance(constant, str) and constant is not docstring:
            found.append(constant)
    return found


def _referenced_names(code: types.CodeType) -> list[str]:
    """Global names a code object (and the functions, lambdas, comprehensions in it) may load."""
    names = list(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names.extend(_referenced_names(constant))
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------------- the walker

_OPAQUE = (BaseLanguageModel, BaseCheckpointSaver)
_MAX_ITEMS = 200  # of a list or dict the code holds: prompts live in small containers, data in big


class Walker:
    """Visits a graph once; see the module docstring.

    After ``walk``, ``leaves`` holds every leaf in discovery order and ``nodes`` the node paths
    each leaf was reached from (None: reached outside any node).
    """

    def __init__(self) -> None:
        self.leaves: dict[Hashable, Leaf] = {}
        self.nodes: dict[Hashable, list[str | None]] = {}
        self._seen: set[int] = set()
        self._keep_alive: list[Any] = []  # ids in _seen must not be reused during a walk
        self._under: dict[int, set[Hashable]] = {}
        self._first: dict[int, str | None] = {}  # id -> the node path it was first reached from
        self._tool_nodes: dict[int, str] = {}  # id of a graph's ToolNode -> its node path
        self._stack: list[set[Hashable]] = []
        self.packages: set[str] = set()  # the libraries whose objects the graph runs

    def walk(self, graph: Pregel) -> None:
        """Visit ``graph`` and everything it reaches, filling ``leaves`` and ``nodes``."""
        self.visit(graph, None, "graph")

    # -- bookkeeping

    def _leaf(self, leaf: Leaf, node: str | None) -> None:
        """Record ``leaf`` as reached from ``node``."""
        known = self.leaves.setdefault(leaf.key, leaf)
        if leaf.strong and not known.strong:
            self.leaves[leaf.key] = leaf
        self._note([leaf.key], node)

    def _note(self, keys: Any, node: str | None) -> None:
        for key in keys:
            paths = self.nodes.setdefault(key, [])
            if node not in paths:
                paths.append(node)
            if self._stack:
                self._stack[-1].add(key)

    def _reached_again(self, oid: int, node: str | None) -> None:
        """An object already visited, reached again from ``node``: its leaves are reached from
        there too, and so are those of the graphs inside it, under ``node`` instead of the
        path it was first reached from (a graph two nodes invoke: "a/<sub>" and "b/<sub>")."""
        under = self._under.get(oid, ())
        self._note(under, node)
        first = self._first.get(oid)
        if first is None or node is None or node == first:
            return
        for key in under:
            for path in list(self.nodes.get(key, ())):
                if path is not None and path.startswith(f"{first}/"):
                    self._note([key], node + path[len(first) :])

    def visit(self, value: Any, node: str | None, label: str) -> None:
        """Record the leaves reachable from ``value``; ``label`` names the binding."""
        if isinstance(value, _OPAQUE) or isinstance(value, (str, bytes, int, float, bool)):
            return
        if value is None:
            return
        oid = id(value)
        node = self._tool_nodes.get(oid, node)  # a graph's tool node: its tools run there
        if oid in self._seen:  # shared object, or a cycle back to one still being visited
            self._reached_again(oid, node)
            return
        self._seen.add(oid)
        self._first[oid] = node
        self._keep_alive.append(value)
        owner = value if isinstance(value, (type, types.FunctionType)) else type(value)
        package = (getattr(owner, "__module__", None) or "").split(".")[0]
        if package not in ("", "gepa_graph", "builtins", *sys.stdlib_module_names) and not (
            is_user_code(owner)
        ):
            self.packages.add(package)
        self._stack.append(set())
        try:
            self._dispatch(value, node, label)
        finally:
            under = self._stack.pop()
        self._under[oid] = under
        if self._stack:
            self._stack[-1].update(under)

    # -- object kinds

    def _dispatch(self, value: Any, node: str | None, label: str) -> None:
        if isinstance(value, Pregel):
            self._graph(value, node)
        elif isinstance(value, ChatPromptTemplate):
            self._chat(value, node)
        elif isinstance(value, PromptTemplate):
            if _has_words(value.template):  # "{page_content}" is plumbing, not a prompt
                self._leaf(TemplateLeaf.of(value, label, f"PromptTemplate `{label}`"), node)
            self._partials(value, node)
        elif isinstance(value, SystemMessage):
            self._message(value, node, f"SystemMessage held by `{label}`")
        elif isinstance(value, RunnableSequence):
            for step in value.steps:
                self.visit(step, node, label)
        elif isinstance(value, RunnableParallel):
            for key, step in value.steps__.items():
                self.visit(step, node, key)
        elif isinstance(value, (RunnableBinding, RunnableBindingBase, RunnableEachBase)):
            self.visit(value.bound, node, label)
            for key, argument in (getattr(value, "kwargs", None) or {}).items():
                self.visit(argument, node, key)  # RunnableLambda(f).bind(chain=...)
        elif isinstance(value, RunnableWithFallbacks):
            for runnable in [value.runnable, *value.fallbacks]:
                self.visit(runnable, node, label)
        elif isinstance(value, RunnableAssign):
            self.visit(value.mapper, node, label)
        elif isinstance(value, BaseTool):
            pass  # a tool's code runs where a tool node runs it (below), not where it is bound
        elif (tools := graphs.node_tools(value)) is not None:  # ToolNode
            for tool in tools:
                for function in graphs.tool_functions(tool):
                    self.visit(function, node, tool.name)
        elif (parts := graphs.function_parts(value)) is not None:
            for function in parts.values():
                self.visit(function, node, label)
            if is_user_code(type(value)):
                self._object(value, node)
        elif isinstance(value, types.FunctionType):
            self._function(value, node)
        elif (task := graphs.task_function(value)) is not None:  # Functional API @task
            name, function = task
            self.visit(function, f"{node}/{name}" if node else name, name)
        elif isinstance(value, types.MethodType):
            self.visit(value.__func__, node, label)
            self.visit(value.__self__, node, label)
        elif isinstance(value, functools.partial):
            self.visit(value.func, node, label)
            for arg in value.args:
                self.visit(arg, node, label)
            for key, arg in value.keywords.items():
                self.visit(arg, node, key)
        elif isinstance(value, (list, tuple)):
            for item in value[:_MAX_ITEMS]:
                self.visit(item, node, label)
        elif isinstance(value, dict):
            for key, item in list(value.items())[:_MAX_ITEMS]:
                self.visit(item, node, str(key))
        elif isinstance(value, type):
            if is_user_code(value):
                for leaf in field_leaves(value, "configurable"):
                    self._leaf(leaf, node)
        elif not isinstance(value, types.ModuleType) and is_user_code(type(value)):
            self._object(value, node)
        elif isinstance(getattr(value, "__wrapped__", None), types.FunctionType):
            self.visit(value.__wrapped__, node, label)  # a library decorator around a function

    def _graph(self, graph: Pregel, node: str | None) -> None:
        for name, runnable in graphs.node_runnables(graph).items():
            if graphs.node_tools(runnable) is not None:  # other nodes may hold it too
                self._tool_nodes[id(runnable)] = f"{node}/{name}" if node else name
        for runnable in graphs.node_runnables(graph).values():
            for function in (graphs.function_parts(runnable) or {}).values():
                package = (getattr(function, "__module__", None) or "").split(".")[0]
                if package and not _installed(package) or package in USER_PACKAGES:
                    continue
                if (
                    package
                    and package not in sys.stdlib_module_names
                    and not (package.startswith(("langchain", "langgraph")))
                ):
                    USER_PACKAGES.add(package)  # an installed agent package defines the nodes
        for name, runnable in graphs.node_runnables(graph).items():
            path = f"{node}/{name}" if node else name
            self.visit(runnable, path, name)
        for source, path_runnable in graphs.branch_runnables(graph):
            if source == START:  # a router leaving START: named after its function
                source = path_runnable.get_name()
            self.visit(path_runnable, f"{node}/{source}" if node else source, source)

    def _object(self, value: Any, node: str | None) -> None:
        """An instance of the user's own class: its attributes and its methods' code."""
        for name, attribute in schemas.instance_attributes(value).items():
            if isinstance(attribute, str):
                where = f"attribute {type(value).__name__}.{name}"
                leaf = string_leaf(value, name, attribute, where)
                if leaf is not None:
                    self._leaf(leaf, node)
            else:
                self.visit(attribute, node, name)
        call = getattr(type(value), "__call__", None)  # noqa: B004 (the method itself)
        if isinstance(call, types.FunctionType) and is_user_code(call):
            self.visit(call, node, type(value).__name__)

    def _partials(self, template: Any, node: str | None) -> None:
        """``template.partial(name=text)``: each text is a prompt of its own."""
        for name, value in (template.partial_variables or {}).items():
            if isinstance(value, str) and _has_words(value):
                self._leaf(
                    PartialLeaf(
                        kind="partial",
                        label=name,
                        where=f"partial variable `{name}` of a {type(template).__name__}",
                        text=value,
                        key=("partial", id(template), name),
                        template_format="plain",
                        strong=bool(PROMPT_NAME.search(name)) or looks_like_prose(value),
                        owner=template,
                        name=name,
                    ),
                    node,
                )

    def _chat(self, chat: ChatPromptTemplate, node: str | None) -> None:
        self._partials(chat, node)
        for index, message in enumerate(chat.messages):
            if isinstance(message, SystemMessage):
                self._message(message, node, f"ChatPromptTemplate message {index} (system)")
            elif isinstance(message, BaseMessagePromptTemplate) and isinstance(
                getattr(message, "prompt", None), PromptTemplate
            ):
                template = message.prompt
                if template_vars(template.template, template.template_format) and not _has_words(
                    template.template
                ):
                    continue  # pure plumbing like "{question}": nothing to optimize
                role = _role(message)
                where = f"ChatPromptTemplate message {index} ({role})"
                self._leaf(TemplateLeaf.of(template, role, where, chat=chat), node)

    def _message(self, message: SystemMessage, node: str | None, where: str) -> None:
        if not isinstance(message.content, str) or not message.content.strip():
            return  # content blocks (e.g. cache control): matched at the model, not found here
        self._leaf(
            MessageLeaf(
                kind="message",
                label="system",
                where=where,
                text=message.content,
                key=("object", id(message)),
                template_format="plain",
                message=message,
            ),
            node,
        )

    def _function(self, function: types.FunctionType, node: str | None) -> None:
        code = function.__code__
        user = is_user_code(function)
        for name, cell in zip(code.co_freevars, function.__closure__ or (), strict=True):
            self._cell(cell, node, name, user)
        if not user:
            return
        self._globals(function, node)
        declared = declared_calls(function)
        for name, default in declared:
            self._leaf(
                DeclaredLeaf(
                    kind="declared",
                    label=name,
                    where=f"gg.prompt call in {function.__qualname__}",
                    text=default,
                    key=("declared", name),
                ),
                node,
            )
        assigned = _assigned_names(code)
        defaults = {default for _, default in declared}  # already modules, by their names
        literals = _literals(code)
        self._files(function, literals, node)
        for text in literals:
            # Short ones too ("Write a report section."): a probe run decides what reached a model.
            if _has_words(text) and len(text.split()) >= 2 and text not in defaults:
                variable = assigned.get(text)
                self._leaf(
                    Leaf(
                        kind="literal",
                        label=(variable or "prompt").lower(),
                        where=f"string literal in {function.__qualname__}"
                        + (f" (variable `{variable}`)" if variable else ""),
                        text=text,
                        key=("literal", id(code), text),
                        strong=bool(variable and PROMPT_NAME.search(variable)),
                    ),
                    node,
                )

    def _files(self, function: types.FunctionType, literals: list[str], node: str | None) -> None:
        """Prompt files the function names (``"writer.md"``, ``env.get_template("a.j2")``, a
        ``Path`` in a constant or closure variable): each existing file is a leaf holding its
        text. A bare file name is looked for next to the code and in the folders it names."""
        values = [function.__globals__.get(name) for name in _referenced_names(function.__code__)]
        for cell in function.__closure__ or ():
            try:
                values.append(cell.cell_contents)
            except ValueError:  # a cell not yet filled
                continue
        names = list(literals)
        module = sys.modules.get(function.__module__)
        homes = [pathlib.Path(getattr(module, "__file__", None) or ".").parent]
        for value in values:
            if isinstance(value, (str, pathlib.PurePath)) and len(str(value)) < 300:
                names.append(str(value))
                if "\n" not in str(value) and pathlib.Path(value).is_dir():
                    homes.append(pathlib.Path(value))
        for name in names:
            path = next((p for home in homes if (p := _prompt_file(name, home))), None)
            if path is not None:
                self._leaf(FileLeaf.of(path), node)

    def _cell(self, cell: types.CellType, node: str | None, name: str, user: bool) -> None:
        try:
            content = cell.cell_contents
        except ValueError:  # a cell not yet filled
            return
        if not isinstance(content, str):
            self.visit(content, node, name)
            return
        strong = named_prompt(name, content) if user else None
        if strong is not None:
            self._leaf(
                CellLeaf(
                    kind="string",
                    label=name.lower(),
                    where=f"closure variable `{name}`",
                    text=content,
                    key=("object", id(cell)),
                    strong=strong,
                    cell=cell,
                ),
                node,
            )

    def _globals(self, function: types.FunctionType, node: str | None) -> None:
        namespace = function.__globals__
        module_name = namespace.get("__name__", "?")
        referenced = _referenced_names(function.__code__)
        module = sys.modules.get(module_name)
        owner = module if module is not None and module.__dict__ is namespace else None
        for name in referenced:
            if name not in namespace:
                continue
            value = namespace[name]
            if isinstance(value, str):
                if owner is not None:
                    leaf = string_leaf(owner, name, value, f"module constant {module_name}.{name}")
                    if leaf is not None:
                        self._leaf(leaf, node)
            elif isinstance(value, types.ModuleType):
                if is_user_code(value):
                    self._module_attributes(value, referenced, node)
            else:
                self.visit(value, node, name)

    def _module_attributes(
        self, module: types.ModuleType, names: list[str], node: str | None
    ) -> None:
        """``module.NAME`` reads: the attributes of a user module the function names."""
        for name in names:
            value = module.__dict__.get(name)
            if isinstance(value, str):
                leaf = string_leaf(module, name, value, f"module constant {module.__name__}.{name}")
                if leaf is not None:
                    self._leaf(leaf, node)
            elif value is not None and not isinstance(value, types.ModuleType):
                self.visit(value, node, name)


PROMPT_FILE_SUFFIXES = (".md", ".txt", ".j2", ".jinja", ".jinja2", ".prompt", ".tmpl", ".mustache")


def _prompt_file(name: str, home: pathlib.Path) -> pathlib.Path | None:
    """The existing prompt file ``name`` names: as given, next to the code, or below it."""
    if not name.endswith(PROMPT_FILE_SUFFIXES) or len(name) > 300 or "\n" in name:
        return None
    given = pathlib.Path(name)
    for path in (given, home / given):
        if path.is_file():
            return path.resolve()
    for depth in ("*", "*/*", "*/*/*"):
        found = sorted(home.glob(f"{depth}/{given.name}"))
        if found:
            return found[0].resolve()
    return None


def _has_words(text: str) -> bool:
    """Whether a template has text besides its placeholders."""
    stripped = re.sub(r"\{[^{}]*\}", "", text)
    return bool(re.search(r"\w", stripped))
