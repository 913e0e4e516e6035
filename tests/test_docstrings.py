"""Every public name says why it exists: modules, classes, functions, public methods and
properties, and the fields of pydantic models (``Field(description=...)`` or named in the class
docstring), across ``gepa_graph``, ``gepa_graph.integrations`` and ``gepa_graph.tracking``."""

import inspect

from pydantic import BaseModel

from tests.package_modules import exported, modules

# Public names allowed to lack a docstring: none. Keep it empty; a name may leave it, never join.
ALLOWED_UNDOCUMENTED: set[str] = set()


def _public(name: str) -> bool:
    return not name.startswith("_")


def _members(cls: type):
    """Public methods and properties defined (not inherited) in ``cls``."""
    for name, value in vars(cls).items():
        if not _public(name):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property) or inspect.isfunction(value):
            yield name, value


def _undocumented_fields(cls: type) -> list[str]:
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        return []
    own = cls.__dict__.get("__annotations__", {})
    doc = inspect.getdoc(cls) or ""
    return [
        name
        for name, info in cls.model_fields.items()
        if name in own and _public(name) and not info.description and name not in doc
    ]


def undocumented() -> set[str]:
    missing = set()

    def check(qualname: str, value: object) -> None:
        if inspect.isclass(value):
            # A class's own docstring: not Protocol's or a base class's (which getdoc would
            # inherit), nor the signature a dataclass writes in place of a missing one.
            doc = value.__dict__.get("__doc__") or ""
            if doc.startswith(f"{value.__name__}("):
                doc = ""
        else:  # a method overriding a documented one shares its contract: getdoc inherits it
            doc = inspect.getdoc(value) or ""
        if not doc.strip():
            missing.add(qualname)

    for module in modules():
        check(module.__name__, module)
        for name, value in vars(module).items():
            if not _public(name) or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(value):
                check(f"{module.__name__}.{name}", value)
                for member, attribute in _members(value):
                    check(f"{module.__name__}.{name}.{member}", attribute)
                for field in _undocumented_fields(value):
                    missing.add(f"{module.__name__}.{name}.{field} (field)")
            elif inspect.isfunction(value):
                check(f"{module.__name__}.{name}", value)
    for value in exported():  # named where it is defined, as the walk above names it
        if inspect.ismodule(value):
            check(value.__name__, value)
        elif inspect.isclass(value) or inspect.isfunction(value):
            check(f"{value.__module__}.{value.__qualname__}", value)
    return missing


def test_every_public_name_has_a_docstring():
    missing = undocumented()
    assert sorted(missing - ALLOWED_UNDOCUMENTED) == []


def test_the_allowlist_holds_only_names_still_undocumented():
    assert sorted(ALLOWED_UNDOCUMENTED - undocumented()) == []
