"""The core never imports integrations, tracking, the apps or the frameworks they wrap.

The core is every module of ``gepa_graph`` except ``api`` (the composition root that adapts a
graph and builds tracking listeners, lazily), the package ``__init__`` (lazy attributes), the
apps (``cli``, ``demo``), the embedded model (``local``) and the test doubles (``testing``).
Integrations and tracking build on the core and never on the apps.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("gepa_graph.cli", "gepa_graph.demo", "gepa_graph.local")
OUTSIDE_CORE = ("gepa_graph.integrations", "gepa_graph.tracking", *APPS,
                "langgraph", "langchain", "langchain_core", "langchain_litellm", "mlflow", "ray")
NOT_CORE = {"api.py", "__init__.py", "cli.py", "demo.py"}


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offending(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(n for n in imported(path)
                  if any(n == f or n.startswith(f + ".") for f in forbidden))


CORE = sorted(
    p for p in (ROOT / "gepa_graph").rglob("*.py")
    if p.relative_to(ROOT / "gepa_graph").parts[0] not in ("local", "testing", "cli")
    and not (p.parent == ROOT / "gepa_graph" and p.name in NOT_CORE)
)


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_neither_integrations_tracking_apps_nor_frameworks(path):
    assert offending(path, OUTSIDE_CORE) == []


@pytest.mark.parametrize(
    "path", sorted([*(ROOT / "integrations").rglob("*.py"), *(ROOT / "tracking").rglob("*.py")]),
    ids=lambda p: str(p.relative_to(ROOT)))
def test_integrations_and_tracking_never_import_the_apps(path):
    assert offending(path, APPS) == []


def test_the_core_list_is_the_algorithm():
    names = {p.name for p in CORE}
    assert {"engine.py", "pareto.py", "evaluation.py", "system.py", "reflection.py"} <= names
    assert not names & {"cli.py", "demo.py", "api.py"}
