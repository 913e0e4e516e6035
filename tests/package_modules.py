"""Every module of the installed package, for the tests that walk the whole public surface."""

import importlib
import pkgutil
from pathlib import Path

PACKAGES = ("gepa_graph", "gepa_graph.integrations", "gepa_graph.tracking")


def modules():
    """Each package and every module below it (``__main__`` entry points left out: importing
    one runs it)."""
    for name in PACKAGES:
        package = importlib.import_module(name)
        folder = Path(package.__file__).parent  # not gepa_graph.__path__: it holds the checkout
        yield package
        for info in pkgutil.walk_packages([str(folder)], prefix=f"{name}."):
            if not info.name.endswith("__main__"):
                yield importlib.import_module(info.name)
