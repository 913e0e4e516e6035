"""The local model's errors: each message is one line that says what to do. They are
GepaGraphErrors (the user's setup, not a bug), and RuntimeErrors as they were before."""

from gepa_graph.errors import GepaGraphError


class LocalModelError(GepaGraphError, RuntimeError):
    """The local model cannot be used: parts missing, file missing, runtime not installed."""


class ModelChecksumError(LocalModelError):
    """The assembled model does not have the expected size or SHA-256."""
