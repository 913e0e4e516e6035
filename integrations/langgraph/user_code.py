"""The user's own Python code, told apart from libraries', and what its source says: the
``gg.prompt`` calls in a function, its string literals and the variables they are assigned to,
the global names it loads, and the prompt files it names.

Strings count as prompts only in your own code (not in the stdlib or an installed library such
as langchain, langgraph or jinja2, unless that package defines the graph's nodes:
``USER_PACKAGES``). Reading source is separate from the walk (``walk``), which only decides
where to look.
"""

from __future__ import annotations

import ast
import functools
import inspect
import pathlib
import sys
import textwrap
import types
from typing import Any

from gepa_graph.integrations.langgraph.declared import prompt as declared_prompt

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
        or installed(top)
    )


@functools.lru_cache(maxsize=1024)
def installed(top: str) -> bool:
    """Whether a top-level package lives in site-packages (a dependency, not the user's code)."""
    module = sys.modules.get(top)
    path = getattr(module, "__file__", None) or ""
    return "site-packages" in path or "dist-packages" in path


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


def assigned_names(code: types.CodeType) -> dict[str, str]:
    """String literal -> the local variable it is assigned to, from the function's source."""
    tree = _parsed_source(code)
    names: dict[str, str] = {}
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            target = node.targets[0]
            if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                names.setdefault(node.value.value, target.id)
    return names


def string_literals(code: types.CodeType) -> list[str]:
    """String constants of a code object and the code nested in it, docstrings left out."""
    docstring = code.co_consts[0] if code.co_consts and isinstance(code.co_consts[0], str) else None
    found = []
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            found.extend(string_literals(constant))
        elif isinstance(constant, str) and constant is not docstring:
            found.append(constant)
    return found


def referenced_names(code: types.CodeType) -> list[str]:
    """Global names a code object (and the functions, lambdas, comprehensions in it) may load."""
    names = list(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names.extend(referenced_names(constant))
    return list(dict.fromkeys(names))


PROMPT_FILE_SUFFIXES = (".md", ".txt", ".j2", ".jinja", ".jinja2", ".prompt", ".tmpl", ".mustache")


def prompt_file(name: str, home: pathlib.Path) -> pathlib.Path | None:
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
