"""The direction of the imports: the core never reaches out; the outside builds on the core.

- **The core** is every module of ``gepa_graph`` except the packages ``cli`` (the command and
  its demo), ``local`` (the embedded model) and ``testing`` (test doubles), and the two
  composition roots below. It imports none of ``gepa_graph.integrations``,
  ``gepa_graph.tracking``, ``gepa_graph.cli``, ``gepa_graph.local``, nor LangGraph, LangChain,
  MLflow or Ray, at module level or inside a function.
- **``api.py``** wires the core to the outside, always inside a function (importing
  ``gepa_graph`` stays free of MLflow and LangGraph): ``gepa_graph.integrations.langgraph`` (a
  graph is adapted), ``gepa_graph.integrations.ray`` (``executor="ray"``),
  ``gepa_graph.tracking`` (listeners), and the one documented reach into the
  embedded model, ``from gepa_graph.local import register`` for a ``local/...`` reflection LM
  (README: "the provider registers itself"). Never the CLI.
- **``__init__.py``** imports the core and ``api`` only; ``tracking``, ``integrations`` and
  ``prompt`` are lazy attributes.
- **Integrations and tracking** build on the core, never on the apps (``cli``, ``local``).
- **``local`` and ``testing``** build on the core, never on the CLI, integrations or tracking.

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


def module_name(path: Path) -> str:
    """The dotted name a file is imported as (integrations/ and tracking/ install under
    gepa_graph)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] in ("integrations", "tracking"):
        parts.insert(0, "gepa_graph")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, package: str | None = None) -> list[tuple[str, str | None, bool]]:
    """(module, imported name or None, at module level) for every import in ``path``;
    ``package`` (default: the file's own) anchors relative imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if package is None:
        package = module_name(path)
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
