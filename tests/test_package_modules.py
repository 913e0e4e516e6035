"""The module walker leaves out only modules whose optional extra is missing, and says so; a
broken import of our own code still fails the tests that walk the package."""

import pytest

from tests import package_modules


def test_a_missing_optional_package_names_its_extra():
    error = ModuleNotFoundError("No module named 'no_such_extra_pkg'", name="no_such_extra_pkg")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(package_modules.OPTIONAL, "no_such_extra_pkg", "someextra")
        assert package_modules._missing_extra(error) == "someextra"
        with pytest.warns(UserWarning, match="gepa_graph.x not checked: it needs the 'someextra'"):
            assert package_modules._load("gepa_graph.x", _raise(error)) is None


@pytest.mark.parametrize(
    "missing",
    [
        "gepa_graph.no_such_module",  # our own code
        "pydantic.no_such_submodule",  # a required dependency
        "pytest.no_such_submodule",  # an installed package's submodule, even if it were optional
    ],
)
def test_any_other_missing_module_is_raised(missing):
    error = ModuleNotFoundError(f"No module named '{missing}'", name=missing)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(package_modules.OPTIONAL, "pytest", "test")
        assert package_modules._missing_extra(error) is None
        with pytest.raises(ModuleNotFoundError, match=missing):
            package_modules._load("gepa_graph.x", _raise(error))


def _raise(error: Exception):
    def load():
        raise error

    return load
