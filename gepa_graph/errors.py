"""Every error a user's input can cause (a bad setting, a corrupt or busy run folder, an LM that
cannot work), in one place: ``except gg.GepaGraphError`` catches them all, and each message is
one line that says what to change. Each kind also derives from the built-in exception it was
before it derived from GepaGraphError, so ``except ValueError`` (OSError, ...) in callers keeps
working."""


class GepaGraphError(Exception):
    """A problem with what the user gave gepa_graph, reported in one line before any paid call
    where that is possible."""


# ---------------------------------------------------------------- bad input


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


class ConfigError(GepaGraphError, ValueError):
    """A setting is invalid; the message is one line naming the field."""


class ImportPathError(GepaGraphError, ValueError):
    """A ``module:attribute`` path that is malformed or names nothing importable."""


class CLIError(GepaGraphError):
    """A bad command line (a flag combination, a JSONL line, a ``module:attr`` that does not
    import): reported as one line, exit code 2."""


# ---------------------------------------------------------------- the run folder and its result


class RunDirError(GepaGraphError, OSError):
    """The run folder cannot be used: not writable, a file, or held by another run."""


class RunExists(GepaGraphError, FileExistsError):
    """A new run asked for a folder that already holds one."""


class ResumeMismatch(GepaGraphError, ValueError):
    """A resume whose inputs or run folder do not match the run it would continue."""


class CorruptRunDir(GepaGraphError, ValueError):
    """A run directory's journal or checkpoint cannot be read."""


class JournalWriteFailed(GepaGraphError, OSError):
    """The journal could not be written (a full disk, a quota, a file size limit): the run
    stops, the journal keeps every record written whole, and a resume re-pays none of them."""


class ResultNotFound(GepaGraphError, LookupError):
    """The run the user named holds no result that can be read here: no such MLflow run, or
    one that did not finish and whose run folder is not on this machine."""


# ---------------------------------------------------------------- running the user's code


class HungThreads(GepaGraphError, RuntimeError):
    """Too many calls of user code never returned after their time limit: their threads
    cannot be killed, so the run stops before the process runs out of threads."""


class LoopBlocked(GepaGraphError, RuntimeError):
    """Async user code blocked the event loop past a time limit the loop had to enforce."""


class SubstitutionLeak(GepaGraphError, RuntimeError):
    """A model call in a rollout still carried the seed text of a module the candidate
    changed: the candidate would be scored on text it did not run, so the optimization stops
    (raised by a System's ``arun``; the evaluation re-raises it instead of scoring it)."""


# ---------------------------------------------------------------- the embedded local model


class LocalModelError(GepaGraphError, RuntimeError):
    """The local model cannot be used: parts missing, file missing, runtime not installed."""


class ModelChecksumError(LocalModelError):
    """The assembled model does not have the expected size or SHA-256."""


class PromptNeverUsed(GepaGraphError, ValueError):
    """A module's prompt reached no model in any of the seed's validation rollouts."""


class LMConfigError(GepaGraphError, ValueError):
    """The LM cannot work at all: unknown model, missing or bad credentials, bad request."""


class RayExecutorError(GepaGraphError, RuntimeError):
    """The cluster cannot be reached, or the system cannot reach its workers."""


class NoPromptsFound(GepaGraphError, ValueError):
    """The graph holds no prompt discovery can see."""
