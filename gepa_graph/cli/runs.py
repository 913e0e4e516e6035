"""Looking at runs: ``show`` (a run folder or an MLflow run, as a candidates table and the best
prompts) and ``ui`` (the MLflow UI over the same store)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gepa_graph.cli.common import CLIError, app, console, fail, say, user_errors
from gepa_graph.redact import redact_text


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


def _rows_from_result(result: Any) -> list[dict[str, Any]]:
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


def show_result(result: Any, title: str) -> None:
    """Print a Result: its candidates, a one-line summary and the best prompts."""
    summary = (
        f"best {result.best_id}: {result.best_score:.4f} (seed {result.seed_score:.4f}); "
        f"{result.rollouts_used} rollouts, {result.iterations} iterations, "
        f"stop: {result.stop_reason}"
    )
    if result.test_best_score is not None:
        summary += (
            f"; held-out {result.test_seed_score:.4f} (seed) -> {result.test_best_score:.4f} (best)"
        )
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
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from gepa_graph.tracking import schema as S

    uri = _existing_store(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise CLIError(f"no MLflow run {run_id!r} at {uri}") from None
    tags = run.data.tags
    if S.TAG_CANDIDATE_ID in tags:
        parent = tags.get(S.MLFLOW_PARENT_RUN, "?")
        raise CLIError(
            f"run {run_id} is candidate {tags[S.TAG_CANDIDATE_ID]} of an "
            f"optimization; show the optimization with --run-id {parent}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, S.table_path(S.TABLE_CANDIDATES), tmp)
        except Exception:
            raise CLIError(f"MLflow run {run_id} has no gepa_graph candidates table") from None
        payload = json.loads(Path(local).read_text(encoding="utf-8"))
    records = [dict(zip(payload["columns"], row)) for row in payload["data"]]
    rows = [
        {
            "id": r["candidate_id"],
            "origin": r["origin"],
            "parent_ids": [p for p in r["parent_ids"].split(",") if p],
            "iteration": r["iteration"],
            "rollouts": r["rollouts_at_discovery"],
            "mean": r[S.VAL_SCORE],
        }
        for r in records
    ]
    best_id = tags.get(S.TAG_BEST_CANDIDATE) or max(rows, key=lambda r: r["mean"])["id"]
    best_run = next(r["run_id"] for r in records if r["candidate_id"] == best_id)
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(best_run, S.CANDIDATE_FILE, tmp)
        prompts = json.loads(Path(local).read_text(encoding="utf-8"))["prompts"]
    stop = tags.get(S.TAG_STOP_REASON)
    summary = f"MLflow run {run_id} ({run.info.status}" + (f", stop: {stop})" if stop else ")")
    if tags.get(S.MLFLOW_NOTE):
        summary += f"\n{tags[S.MLFLOW_NOTE]}"
    _render(f"candidates of {run.info.run_name}", rows, best_id, prompts, summary)


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
            from gepa_graph.store import load_result

            show_result(load_result(run_dir), f"candidates ({run_dir})")
        else:
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
