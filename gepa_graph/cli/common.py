"""The Typer app every command registers on, its global ``--verbose`` option, plain output, and
the one error boundary: an error the user caused is one ``error:`` line and exit code 2, anything
else is a bug and keeps its traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

from gepa_graph.errors import GepaGraphError
from gepa_graph.redact import redact_text

app = typer.Typer(
    name="gepa-graph",
    help="GEPA prompt optimization for LangGraph agents, tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
options = {"verbose": False}


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", help="also show MLflow's own console lines"),
) -> None:
    """GEPA prompt optimization for LangGraph agents, tracked in MLflow."""
    from gepa_graph.tracking.console import quiet_mlflow

    options["verbose"] = verbose
    quiet_mlflow(verbose)


def say(text: str) -> None:
    """Plain text on stdout (secrets masked): no rich markup, no highlighting, no wrapping."""
    console.print(redact_text(text), markup=False, highlight=False, soft_wrap=True)


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr (secrets masked) and exit with code 2."""
    typer.echo(redact_text(f"error: {message}"), err=True)
    raise typer.Exit(2)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (its type name when the message is empty)."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text or type(exc).__name__


# OS errors about the user's own files and folders: a path that is missing, unreadable, or of
# the wrong kind. Other OS errors (a full disk, a broken pipe) keep their traceback.
USER_OS_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
)
USER_ERRORS: tuple[type[Exception], ...] = (GepaGraphError, *USER_OS_ERRORS)


@contextmanager
def user_errors() -> Iterator[None]:
    """Run a command's body: a GepaGraphError or a user's OS error becomes one ``error:`` line
    and exit code 2, Ctrl-C during an optimization the one line that says how to resume and
    exit code 130; every other exception propagates with its traceback."""
    try:
        yield
    except USER_ERRORS as exc:
        fail(one_line(exc))
    except KeyboardInterrupt as exc:  # from optimize(): the checkpoint says "interrupted"
        if not hasattr(exc, "run_dir"):
            raise
        typer.echo(f"interrupted, resume with --resume --run-dir {exc.run_dir}", err=True)
        raise typer.Exit(130) from None
