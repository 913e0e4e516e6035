"""Every error a user can cause is a GepaGraphError; the other exception classes are the
library's own control flow, never shown to a user as a problem with their input."""

import inspect

import pytest

import gepa_graph
from gepa_graph.errors import GepaGraphError
from tests.package_modules import modules

# Exceptions the library raises and catches itself (or that a rollout records as a failure).
INTERNAL = {
    "gepa_graph.budget.BudgetExhausted": "the engine stops at a budget",
    "gepa_graph.lm.LMCallFailed": "one proposal is rejected, the run goes on",
    "gepa_graph.lm.PromptTooLong": "the reflection retries with a shorter prompt",
    "gepa_graph.lm.EmptyReply": "retried like a transient failure",
    "gepa_graph.reflection.InvalidProposal": "one proposal is rejected",
    "gepa_graph.metric.MetricError": "scored as a failed rollout",
    "gepa_graph.usercode.UserCodeError": "user code's BaseException, recorded as a failure",
    "gepa_graph.integrations.langgraph.leaves.CannotWriteInPlace": "apply carries it in config",
    "gepa_graph.testing.chat_model.ScriptExhausted": "a test double's script ran out",
}


def exception_classes():
    found = {}
    for module in modules():
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_every_exception_class_is_a_gepa_graph_error_or_internal():
    found = exception_classes()
    assert "gepa_graph.errors.LocalModelError" in found
    assert "gepa_graph.errors.CLIError" in found
    user_facing = sorted(
        name
        for name, cls in found.items()
        if not issubclass(cls, GepaGraphError) and name not in INTERNAL
    )
    assert user_facing == []
    assert sorted(set(INTERNAL) - set(found)) == []  # the list names no class that is gone


@pytest.mark.parametrize("name", ["LocalModelError", "ModelChecksumError"])
def test_local_model_errors_are_user_errors_and_still_runtime_errors(name):
    from gepa_graph import local

    error = getattr(local, name)
    assert issubclass(error, GepaGraphError) and issubclass(error, RuntimeError)


def test_the_kinds_of_bad_input_keep_their_builtin_base():
    from gepa_graph.errors import InvalidInput, UnknownName, WrongType

    assert issubclass(InvalidInput, ValueError) and issubclass(WrongType, TypeError)
    assert issubclass(UnknownName, KeyError)
    with pytest.raises(gepa_graph.GepaGraphError, match="trainset is empty"):
        gepa_graph.example.as_dataset([], "trainset")


def test_every_user_error_lives_in_the_errors_module():
    found = exception_classes()
    elsewhere = sorted(
        name
        for name, cls in found.items()
        if issubclass(cls, GepaGraphError) and cls.__module__ != "gepa_graph.errors"
    )
    assert elsewhere == []
