"""The type checker's settings stay in step with the code's layout: mypy reads every installed
package under its installed name, and is strict on exactly the core that test_layering defines."""

import tomllib

from tests.test_layering import CORE, PACKAGE, ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
MYPY = PYPROJECT["tool"]["mypy"]


def _module(path):
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["gepa_graph", *parts])


def _matches(pattern: str, module: str) -> bool:
    """mypy's rule for an override's module pattern: ``a.b.*`` is ``a.b`` and below it."""
    if pattern.endswith(".*"):
        stem = pattern[:-2]
        return module == stem or module.startswith(stem + ".")
    return module == pattern


def _relaxed(module: str) -> bool:
    return any(
        override.get("disallow_untyped_defs") is False
        and any(_matches(pattern, module) for pattern in override["module"])
        for override in MYPY["overrides"]
    )


def test_mypy_reads_every_folder_the_package_maps_under_its_installed_name():
    """integrations/ and tracking/ install under gepa_graph; mypy reaches them through links
    in .mypy/ (it cannot follow the editable install's import hook)."""
    mapped = {
        name: folder
        for name, folder in PYPROJECT["tool"]["setuptools"]["package-dir"].items()
        if name != "gepa_graph"
    }
    assert mapped, "pyproject maps no folder under gepa_graph"
    for name, folder in mapped.items():
        link = ROOT / ".mypy" / name.replace(".", "/")
        assert link.resolve() == (ROOT / folder).resolve(), f"{link} does not lead to {folder}/"
        assert f".mypy/{name.replace('.', '/')}" in MYPY["files"], f"mypy does not check {name}"
    assert "gepa_graph" in MYPY["files"]


def test_mypy_is_strict_on_the_core_and_only_there():
    assert MYPY["strict"] is True
    core = {_module(path) for path in CORE}
    everything = {_module(path) for path in PACKAGE.rglob("*.py")}
    assert not {module for module in core if _relaxed(module)}
    assert {module for module in everything - core if not _relaxed(module)} == set()
    for outside in ("gepa_graph.integrations.ray.executor", "gepa_graph.tracking.mlflow"):
        assert _relaxed(outside)
