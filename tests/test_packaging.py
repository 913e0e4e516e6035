"""The installed layout: ``integrations/`` and ``tracking/`` at the top of the repository install
as ``gepa_graph.integrations`` and ``gepa_graph.tracking`` (pyproject's package-dir mapping),
every package folder is listed for the wheel, and nothing else of the checkout (tests,
benchmarks, examples) is importable under ``gepa_graph``."""

import importlib
import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "setuptools"
]
FOLDERS = {
    "gepa_graph": "gepa_graph",
    "integrations": "gepa_graph.integrations",
    "tracking": "gepa_graph.tracking",
}


def package_folders() -> set[str]:
    """The dotted name of every folder holding an ``__init__.py`` in the three source trees."""
    found = set()
    for folder, name in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join([name, *parts]))
    return found


def test_every_package_folder_is_listed_for_the_wheel():
    assert set(SETUPTOOLS["packages"]) == package_folders()


def test_integrations_and_tracking_install_under_gepa_graph():
    assert SETUPTOOLS["package-dir"] == {
        "gepa_graph": "gepa_graph",
        "gepa_graph.integrations": "integrations",
        "gepa_graph.tracking": "tracking",
    }
    for name in ("gepa_graph.integrations.adapters", "gepa_graph.tracking.schema"):
        assert importlib.import_module(name).__name__ == name


@pytest.mark.parametrize("name", ["tests", "benchmarks", "examples"])
def test_nothing_else_of_the_checkout_is_part_of_the_package(name):
    assert (ROOT / name).is_dir()
    assert importlib.util.find_spec(f"gepa_graph.{name}") is None
