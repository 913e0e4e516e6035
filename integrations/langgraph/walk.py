"""One read-only traversal of everything a compiled graph runs, to find the prompts in it.

``Walker().walk(graph)`` visits the graph's nodes and conditional edges (those leaving ``START``
too) and, recursively, the runnables and their bound arguments, tools, functions, Functional API
tasks, closure cells, module globals and user objects they reach (the Python code: ``walk_code``),
and records every leaf (``leaves``) with the node paths it was reached from (an object reached
from several nodes: under each of them; a tool under the tool node that runs it, wherever else it
is bound or held). It never changes anything: rollouts substitute prompts at the model boundary
(``boundary``); a leaf's ``write`` is the one in-place change (``Result.apply``).
"""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Hashable
from typing import Any

from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import SystemMessage
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.prompts.message import BaseMessagePromptTemplate
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
from langgraph.constants import START
from langgraph.pregel import Pregel

from gepa_graph.integrations.langgraph._internals import graphs
from gepa_graph.integrations.langgraph.leaves import (
    PROMPT_NAME,
    Leaf,
    MessageLeaf,
    PartialLeaf,
    TemplateLeaf,
    field_leaves,
    has_words,
    looks_like_prose,
)
from gepa_graph.integrations.langgraph.user_code import USER_PACKAGES, installed, is_user_code
from gepa_graph.integrations.langgraph.walk_code import CodeWalk
from gepa_graph.templates import variables as template_vars

_OPAQUE = (BaseLanguageModel, BaseCheckpointSaver)
_MAX_ITEMS = 200  # of a list or dict the code holds: prompts live in small containers, data in big


class Walker(CodeWalk):
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

    def walk(self, graph: Runnable) -> None:
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
            if has_words(value.template):  # "{page_content}" is plumbing, not a prompt
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
                if package and not installed(package) or package in USER_PACKAGES:
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

    def _partials(self, template: Any, node: str | None) -> None:
        """``template.partial(name=text)``: each text is a prompt of its own."""
        for name, value in (template.partial_variables or {}).items():
            if isinstance(value, str) and has_words(value):
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
                template := getattr(message, "prompt", None), PromptTemplate
            ):
                if template_vars(template.template, template.template_format) and not has_words(
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


def _role(message_template: BaseMessagePromptTemplate) -> str:
    role = getattr(message_template, "role", None)  # ChatMessagePromptTemplate
    if isinstance(role, str) and role:
        return role
    name = type(message_template).__name__
    return name.removesuffix("MessagePromptTemplate").lower() or "message"
