"""The base class of every error a user's input can cause (a bad setting, a corrupt or busy run
folder, an LM that cannot work): ``except gg.GepaGraphError`` catches them all, and each message
is one line that says what to change."""


class GepaGraphError(Exception):
    """A problem with what the user gave gepa_graph, reported in one line before any paid call
    where that is possible."""
