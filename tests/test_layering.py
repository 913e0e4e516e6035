"""The direction of the imports: the core never reaches out; the outside builds on the core.

- **The core** is every module of ``gepa_graph`` except the packages ``cli`` (the command and
  its demo), ``local`` (the embedded model) and ``testing`` (test doubles), and the two
  composition roots below. It imports none of ``gepa_graph.integrations``,
  ``gepa_graph.tracking``, ``gepa_graph.cli``, ``gepa_graph.local``, nor LangGraph, LangChain,
  MLflow or Ray, at module level or inside a function.
- **``api.py``** wires the core to the outside, always inside a function (importing
  ``gepa_graph`` stays free of MLflow and LangGraph): ``gepa_graph.integrations.adapters``
  (registered with ``gepa_graph.adapters`` on import, so the core takes a graph),
  ``gepa_graph.integrations.langgraph``, ``gepa_graph.integrations.ray`` (``executor="ray"``),
  ``gepa_graph.tracking`` (listeners), and the one documented reach into the
  embedded model, ``from gepa_graph.local import register`` for a ``local/...`` reflection LM
  (README: "the provider registers itself"). Never the CLI.
- **``__init__.py``** imports the core and ``api`` only; ``tracking``, ``integrations`` and
  ``prompt`` are lazy attributes.
- **Integrations and tracking** build on the core, never on the apps (``cli``, ``local``).
- **``local`` and ``testing``** build on the core, never on the CLI, integrations or tracking.
- **Nothing below ``api``** (all but ``api``, ``__init__`` and the CLI) imports ``api`` or the
  package root (which imports it): integrations and tracking resolve systems and write prompts
  through ``gepa_graph.adapters``. **Tracking** never imports integrations; **strategies** never
  import proposers; **proposers and strategies** see the search only through their view, never
  the engine, its runner or its pool.
- **No cycle**: the import graph of every module, deferred and ``TYPE_CHECKING`` imports
  included, has no cycle; a failure names one cycle of each group of modules in a circle.

Imports are read from the source (``import``, ``from``, relative ``from .``, and
``importlib.import_module``/``__import__`` with a literal name), wherever they are written.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gepa_graph"
APPS = ("gepa_graph.cli", "gepa_graph.local")
FRAMEWORKS = ("langgraph", "langchain", "langchain_core", "langchain_litellm", "mlflow", "ray")
OUTSIDE_CORE = ("gepa_graph.integrations", "gepa_graph.tracking", *APPS, *FRAMEWORKS)
NOT_CORE_PACKAGES = ("cli", "local", "testing")
ROOTS = ("api.py", "__init__.py")


def module_name(path: Path, root: Path = ROOT) -> str:
    """The dotted name a file under ``root`` is imported as (integrations/ and tracking/
    install under gepa_graph)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[0] in ("integrations", "tracking"):
        parts.insert(0, "gepa_graph")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(
    path: Path, package: str | None = None, root: Path = ROOT
) -> list[tuple[str, str | None, bool]]:
    """(module, imported name or None, at module level) for every import in ``path``;
    ``package`` (default: the file's own) anchors relative imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if package is None:
        package = module_name(path, root)
        if path.name != "__init__.py":
            package = package.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        top = id(node) in top_level
        if isinstance(node, ast.Import):
            found += [(alias.name, None, top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(base, alias.name, top) for alias in node.names]
            # `from gepa_graph import tracking` imports the module gepa_graph.tracking
            found += [(f"{base}.{alias.name}", None, top) for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
        ):
            found.append((node.args[0].value, None, False))
    return found


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def offending(path: Path, forbidden: tuple[str, ...], package: str | None = None) -> list[str]:
    return sorted({name for name, _, _ in imports(path, package) if within(name, forbidden)})


CORE = sorted(
    p
    for p in PACKAGE.rglob("*.py")
    if p.relative_to(PACKAGE).parts[0] not in NOT_CORE_PACKAGES
    and not (p.parent == PACKAGE and p.name in ROOTS)
)


def _ids(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", CORE, ids=_ids)
def test_the_core_imports_neither_integrations_tracking_apps_nor_frameworks(path):
    assert offending(path, OUTSIDE_CORE) == []


def test_api_reaches_out_only_inside_functions_and_only_where_documented():
    outside = []
    for name, imported_name, top in imports(PACKAGE / "api.py"):
        if not within(name, OUTSIDE_CORE):
            continue
        allowed = within(
            name,
            (
                "gepa_graph.integrations.adapters",
                "gepa_graph.integrations.langgraph",
                "gepa_graph.integrations.ray",
                "gepa_graph.tracking",
            ),
        )
        # `from gepa_graph.local import register` (read also as module gepa_graph.local.register)
        allowed = allowed or (name, imported_name) in (
            ("gepa_graph.local", "register"),
            ("gepa_graph.local.register", None),
        )
        if top or not allowed:
            outside.append((name, imported_name, "module level" if top else "in a function"))
    assert outside == []


def test_the_package_init_imports_the_core_and_api_only():
    eager = [
        name
        for name, _, top in imports(PACKAGE / "__init__.py")
        if top and within(name, OUTSIDE_CORE)
    ]
    assert eager == []


@pytest.mark.parametrize(
    "path",
    sorted([*(ROOT / "integrations").rglob("*.py"), *(ROOT / "tracking").rglob("*.py")]),
    ids=_ids,
)
def test_integrations_and_tracking_never_import_the_apps(path):
    assert offending(path, APPS) == []


@pytest.mark.parametrize(
    "path",
    sorted([*(PACKAGE / "local").rglob("*.py"), *(PACKAGE / "testing").rglob("*.py")]),
    ids=_ids,
)
def test_local_and_testing_never_import_the_cli_integrations_or_tracking(path):
    assert (
        offending(path, ("gepa_graph.cli", "gepa_graph.integrations", "gepa_graph.tracking")) == []
    )


def test_the_core_list_is_the_algorithm():
    names = {str(p.relative_to(PACKAGE)) for p in CORE}
    assert {
        "engine.py",
        "pareto.py",
        "evaluation.py",
        "system.py",
        "reflection.py",
        "errors.py",
        "strategies/base.py",
    } <= names
    assert not names & {"api.py", "__init__.py"}
    assert not [n for n in names if n.split("/")[0] in NOT_CORE_PACKAGES]


def test_the_reader_sees_every_kind_of_import(tmp_path):
    """The checks above are only as good as ``imports``: each way of writing an import is seen."""
    probe = tmp_path / "probe.py"  # read as a module of gepa_graph.strategies
    probe.write_text(
        "import mlflow\n"
        "from . import base\n"
        "from ..tracking import schema\n"
        "def f():\n"
        "    import importlib\n"
        "    importlib.import_module('gepa_graph.cli')\n"
        "    from gepa_graph import local\n",
        encoding="utf-8",
    )
    assert offending(probe, OUTSIDE_CORE, "gepa_graph.strategies") == [
        "gepa_graph.cli",
        "gepa_graph.local",
        "gepa_graph.tracking",
        "gepa_graph.tracking.schema",
        "mlflow",
    ]
    assert ("gepa_graph.strategies.base", None, True) in imports(probe, "gepa_graph.strategies")


# ---------------------------------------------------------------------------------------------
# The import graph of the whole package, deferred and TYPE_CHECKING imports included.

SOURCES = sorted(
    [
        *PACKAGE.rglob("*.py"),
        *(ROOT / "integrations").rglob("*.py"),
        *(ROOT / "tracking").rglob("*.py"),
    ]
)


def import_graph(paths: list[Path] = SOURCES, root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package modules it imports, wherever the import is written (a function,
    ``if TYPE_CHECKING``). ``from a import b`` is an edge to ``a.b`` when that is a module, else
    to ``a``; a package's ``__init__`` that runs implicitly before its submodule is no edge."""
    names = {module_name(p, root): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        targets = graph.setdefault(name, set())
        for imported, attribute, _ in imports(path, root=root):
            if attribute is None:
                if imported in names:
                    targets.add(imported)
            elif f"{imported}.{attribute}" not in names and imported in names:
                targets.add(imported)
        targets.discard(name)
    return graph


def cycle_groups(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other in a circle (strongly connected components
    of more than one module, by Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path back to its start) through each group of ``cycle_groups``, so a
    failure names edges to cut."""
    return [_path_through(graph, set(group)) for group in cycle_groups(graph)]


def _path_through(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle from the group's first module back to it, inside the group."""
    start = min(group)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, start]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle in {sorted(group)}")


def test_the_package_imports_in_no_cycle():
    graph = import_graph()
    groups = cycle_groups(graph)
    assert not groups, "import cycles (deferred imports counted): " + "; ".join(
        " -> ".join(_path_through(graph, set(group))) + f" (one of {len(group)} modules: {group})"
        for group in groups
    )


def _importers_of(forbidden: tuple[str, ...], importers: tuple[str, ...]) -> list[str]:
    graph = import_graph()
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if within(module, importers)
        for target in targets
        if within(target, forbidden)
    )


ABOVE_API = ("gepa_graph.api", "gepa_graph.cli")


def test_nothing_below_api_imports_api_or_the_package_root():
    """``gepa_graph`` itself imports api: importing it from below is importing api."""
    graph = import_graph()
    offenders = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module != "gepa_graph" and not within(module, ABOVE_API)
        for target in targets
        if target in ("gepa_graph", "gepa_graph.api")
    )
    assert offenders == []


def test_integrations_and_tracking_never_import_api():
    assert (
        _importers_of(("gepa_graph.api",), ("gepa_graph.integrations", "gepa_graph.tracking")) == []
    )


def test_tracking_never_imports_integrations():
    assert _importers_of(("gepa_graph.integrations",), ("gepa_graph.tracking",)) == []


def test_strategies_never_import_proposers():
    assert _importers_of(("gepa_graph.proposers",), ("gepa_graph.strategies",)) == []


def test_proposers_and_strategies_see_the_search_only_through_their_view():
    engine = ("gepa_graph.engine", "gepa_graph.runner", "gepa_graph.pool", "gepa_graph.reporter")
    assert _importers_of(engine, ("gepa_graph.proposers", "gepa_graph.strategies")) == []


def test_the_cycle_finder_names_each_cycle(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e2"}, "e2": {"e"}}
    assert cycles(graph) == [["a", "b", "c", "a"], ["e", "e2", "e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    # read from source: a deferred import and a TYPE_CHECKING one are edges too
    (tmp_path / "gepa_graph").mkdir()
    one = tmp_path / "gepa_graph" / "one.py"
    two = tmp_path / "gepa_graph" / "two.py"
    one.write_text("def f():\n    from gepa_graph.two import g\n", encoding="utf-8")
    two.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gepa_graph import one\n",
        encoding="utf-8",
    )
    assert cycles(import_graph([one, two], tmp_path)) == [
        ["gepa_graph.one", "gepa_graph.two", "gepa_graph.one"]
    ]
