"""Every module of the installed package, for the tests that walk the whole public surface."""

import importlib
import importlib.util
import pkgutil
import warnings
from functools import partial
from pathlib import Path

PACKAGES = ("gepa_graph", "gepa_graph.integrations", "gepa_graph.tracking")

# Third-party packages that only an optional extra installs, and that extra. A module needing one
# that is absent is left out of the walk with a warning; any other failing import is raised.
OPTIONAL = {
    "ray": "ray",
    "psutil": "ray",
    "gepa": "bench",
    "xllamacpp": "local",
    "llama_cpp": "local",
}


def _missing_extra(error: ModuleNotFoundError) -> str | None:
    """The extra whose absence caused ``error``, or None when the error is a genuine one (a
    missing module of our own, or a missing submodule of an installed package)."""
    top = (error.name or "").partition(".")[0]
    if top in OPTIONAL and importlib.util.find_spec(top) is None:
        return OPTIONAL[top]
    return None


def _load(name: str, load):
    """``load()``, or None with a warning when it needs an optional extra that is missing."""
    try:
        return load()
    except ModuleNotFoundError as error:
        extra = _missing_extra(error)
        if extra is None:
            raise
        warnings.warn(f"{name} not checked: it needs the '{extra}' extra ({error})", stacklevel=3)
        return None


def modules():
    """Each package and every module below it (``__main__`` entry points left out: importing
    one runs it; modules whose optional extra is not installed left out with a warning)."""
    for name in PACKAGES:
        package = importlib.import_module(name)
        folder = Path(package.__file__).parent  # not gepa_graph.__path__: it holds the checkout
        yield package
        for info in pkgutil.walk_packages([str(folder)], prefix=f"{name}."):
            if not info.name.endswith("__main__") and (
                module := _load(info.name, partial(importlib.import_module, info.name))
            ):
                yield module


def exported():
    """The value of each name in ``gepa_graph.__all__`` (those loaded lazily from a missing
    optional extra left out with a warning)."""
    import gepa_graph

    for name in gepa_graph.__all__:
        value = _load(f"gepa_graph.{name}", partial(getattr, gepa_graph, name))
        if value is not None:
            yield value
