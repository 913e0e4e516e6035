"""Looking at runs: ``show`` (a run folder or an MLflow run, as a candidates table and the best
prompts) and ``ui`` (the MLflow UI over the same store)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gepa_graph.cli.common import app, console, fail, say, user_errors
from gepa_graph.errors import CLIError
from gepa_graph.redact import redact_text
from gepa_graph.result import Result


def _render(
    title: str,
    rows: list[dict[str, Any]],
    best_id: str | None,
    best_prompts: dict[str, str],
    summary: str = "",
) -> None:
    table = Table(title=title)
    for column in ("candidate", "origin", "parents", "iteration", "rollouts", "mean score"):
        table.add_column(
            column, justify="right" if column in ("iteration", "rollouts", "mean score") else "left"
        )
    for row in rows:
        marker = " *" if row["id"] == best_id else ""
        table.add_row(
            redact_text(row["id"]) + marker,
            row["origin"],
            ", ".join(p[:8] for p in row["parent_ids"]) or "-",
            str(row["iteration"]),
            str(row["rollouts"]),
            f"{row['mean']:.4f}",
        )
    console.print(table)
    if summary:
        say(summary)
    for module, text in sorted(best_prompts.items()):
        console.print(
            Panel(
                Text(redact_text(text)),
                title=redact_text(f"best prompt: {module}"),
                title_align="left",
            )
        )


def _rows_from_result(result: Result) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "origin": c.origin,
            "parent_ids": list(c.parent_ids),
            "iteration": c.iteration,
            "rollouts": c.rollouts_at_discovery,
            "mean": c.mean_score,
        }
        for c in result.candidates
    ]


def show_result(result: Result, title: str, header: str = "") -> None:
    """Print a Result: its candidates, a one-line summary (after ``header``, if given) and the
    best prompts."""
    summary = (
        f"best {result.best_id}: {result.best_score:.4f} (seed {result.seed_score:.4f}); "
        f"{result.rollouts_used} rollouts, {result.iterations} iterations, "
        f"stop: {result.stop_reason}"
    )
    if result.test_best_score is not None:
        summary += (
            f"; held-out {result.test_seed_score:.4f} (seed) -> {result.test_best_score:.4f} (best)"
        )
    if header:
        summary = f"{header}\n{summary}"
    _render(title, _rows_from_result(result), result.best_id, result.best_candidate, summary)


def _existing_store(tracking_uri: str | None) -> str:
    """The tracking URI to read, refusing one that would create an empty store (MLflow creates
    a SQLite file or a ./mlruns folder on first touch)."""
    from urllib.parse import urlparse

    import mlflow

    uri = tracking_uri or mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
    elif uri.startswith("file:"):
        path = Path(urlparse(uri).path)
    elif "://" not in uri:
        path = Path(uri)
    else:
        return uri
    if not path.exists():
        raise CLIError(
            f"no MLflow store at {path}: run this in the folder holding it or pass "
            "--tracking-uri (e.g. sqlite:///path/mlflow.db or http://127.0.0.1:5000)"
        )
    return uri


def _show_mlflow_run(run_id: str, tracking_uri: str | None) -> None:
    from gepa_graph.api import load_result
    from gepa_graph.tracking.reader import recorded_run

    uri = _existing_store(tracking_uri)
    run = recorded_run(run_id, uri)
    if run.candidate_id is not None:
        raise CLIError(
            f"run {run_id} is candidate {run.candidate_id} of an optimization; show the "
            f"optimization with --run-id {run.parent_run_id or '?'}"
        )
    result = load_result(f"runs:/{run_id}", uri)
    header = f"MLflow run {run_id} ({run.status})" + (f"\n{run.note}" if run.note else "")
    show_result(result, f"candidates of {run.name}", header)


@app.command()
def show(
    run_dir: Path | None = typer.Argument(None, help="a run folder holding state.json"),
    run_id: str | None = typer.Option(None, help="an MLflow run id (parent run)"),
    tracking_uri: str | None = typer.Option(None, help="MLflow tracking URI for --run-id"),
) -> None:
    """Show a run's candidates and best prompts, from a run folder or an MLflow run."""
    if (run_dir is None) == (run_id is None):
        fail("give either a run folder or --run-id")
    with user_errors():
        if run_dir is not None:
            from gepa_graph.api import load_result

            show_result(load_result(run_dir), f"candidates ({run_dir})")
        elif run_id is not None:
            _show_mlflow_run(run_id, tracking_uri)


@app.command()
def ui(
    host: str = typer.Option("127.0.0.1", help="interface to bind (default: this machine only)"),
    port: int = typer.Option(5000, help="port"),
    backend_store_uri: str | None = typer.Option(
        None, help="MLflow store (default: MLflow's, sqlite mlflow.db in this folder)"
    ),
) -> None:
    """Start the MLflow UI (an `mlflow server` with one worker) to browse runs and prompts."""
    from gepa_graph.tracking.server import server_command, server_env

    say(
        f"MLflow UI on http://{host}:{port} (Ctrl+C to stop); an optimization's runs, scores "
        f"as columns: http://{host}:{port}/#/experiments/<experiment id>/runs"
        f"?workflowType=machine_learning&viewStateShareKey=gepa-graph"
    )
    try:
        code = subprocess.call(server_command(host, port, backend_store_uri), env=server_env())
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
