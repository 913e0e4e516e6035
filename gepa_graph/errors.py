"""The base class of every error a user's input can cause (a bad setting, a corrupt or busy run
folder, an LM that cannot work): ``except gg.GepaGraphError`` catches them all, and each message
is one line that says what to change."""


class GepaGraphError(Exception):
    """A problem with what the user gave gepa_graph, reported in one line before any paid call
    where that is possible."""


# The kinds of bad input, each also the built-in exception it was before it derived from
# GepaGraphError, so ``except ValueError`` (TypeError, KeyError) in callers keeps working.


class InvalidInput(GepaGraphError, ValueError):
    """A value the user gave cannot be used: an empty dataset, an example missing a field the
    graph needs, an unknown strategy kind."""


class WrongType(GepaGraphError, TypeError):
    """Something the user gave is not the kind of object expected (a metric that is not
    callable, an uncompiled graph, a prompt that is not a str)."""


class UnknownName(GepaGraphError, KeyError):
    """A name the user gave (a module, a prompt) is not one the graph or candidate has."""

    def __str__(self) -> str:  # KeyError's own str() quotes the message like a key
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class SubstitutionLeak(GepaGraphError, RuntimeError):
    """A model call in a rollout still carried the seed text of a module the candidate
    changed: the candidate would be scored on text it did not run, so the optimization stops
    (raised by a System's ``arun``; the evaluation re-raises it instead of scoring it)."""
