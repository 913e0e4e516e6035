"""The part of the walk (``walk``) inside the user's own Python code: a node's functions, their
closure cells, the module globals and ``module.NAME`` attributes they load, the string literals
and ``gg.prompt`` calls in their source, the prompt files they name, and instances of the
user's classes. Kept apart from the walk over LangChain and LangGraph objects because it reads
Python itself (code objects, source), which is where most of discovery's judgement lies.
"""

from __future__ import annotations

import abc
import pathlib
import sys
import types
from typing import Any

from gepa_graph.integrations.langgraph._internals import schemas
from gepa_graph.integrations.langgraph.leaves import (
    PROMPT_NAME,
    CellLeaf,
    DeclaredLeaf,
    FileLeaf,
    Leaf,
    has_words,
    named_prompt,
    string_leaf,
)
from gepa_graph.integrations.langgraph.user_code import (
    assigned_names,
    declared_calls,
    is_user_code,
    prompt_file,
    referenced_names,
    string_literals,
)


class CodeWalk(abc.ABC):
    """Visits the user's Python code for ``Walker``, which records the leaves (``_leaf``) and
    visits whatever else the code holds (``visit``)."""

    @abc.abstractmethod
    def visit(self, value: Any, node: str | None, label: str) -> None:
        """Record the leaves reachable from ``value``; ``label`` names the binding."""

    @abc.abstractmethod
    def _leaf(self, leaf: Leaf, node: str | None) -> None:
        """Record ``leaf`` as reached from ``node``."""

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
        assigned = assigned_names(code)
        defaults = {default for _, default in declared}  # already modules, by their names
        literals = string_literals(code)
        self._files(function, literals, node)
        for text in literals:
            # Short ones too ("Write a report section."): a probe run decides what reached a model.
            if has_words(text) and len(text.split()) >= 2 and text not in defaults:
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
        values = [function.__globals__.get(name) for name in referenced_names(function.__code__)]
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
            path = next((p for home in homes if (p := prompt_file(name, home))), None)
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
        referenced = referenced_names(function.__code__)
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
