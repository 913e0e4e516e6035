"""Moving registry aliases: ``promote`` (optionally gated on held-out data) and ``rollback``,
every module of a registered agent at once."""

from __future__ import annotations

from pathlib import Path

import typer

from gepa_graph.cli.common import app, say, user_errors
from gepa_graph.cli.inputs import load_object, read_jsonl
from gepa_graph.errors import CLIError


@app.command()
def promote(
    name: str = typer.Argument(..., help="registry name given to --register"),
    from_alias: str = typer.Option("candidate", "--from", help="alias to promote"),
    to_alias: str = typer.Option("production", "--to", help="alias to move"),
    gate: Path | None = typer.Option(
        None, "--gate", help="held-out JSONL: promote only if the candidate wins on it"
    ),
    graph: str | None = typer.Option(None, "--graph", help="module:attr of the graph (--gate)"),
    metric: str | None = typer.Option(None, "--metric", help="module:attr of the metric (--gate)"),
    margin: float = typer.Option(
        0.02, help="the lower bound of the candidate's mean gain must exceed this (--gate)"
    ),
    alpha: float = typer.Option(
        0.05, help="significance level of the gate's paired tests (--gate)"
    ),
    tracking_uri: str | None = typer.Option(None, help="MLflow tracking URI"),
) -> None:
    """Move an alias (default production) to the versions another alias names, all modules at
    once; with --gate, only if those versions are better on held-out examples beyond noise
    (paired bootstrap interval and Wilcoxon test)."""
    with user_errors():
        from gepa_graph.tracking import registry

        if gate is None:
            if graph or metric:
                raise CLIError("--graph and --metric go with --gate")
            moved = registry.promote(name, from_alias, to_alias, tracking_uri)
            for module, version in sorted(moved.items()):
                say(f"{name}.{module}: {to_alias} -> v{version}")
            return
        if not graph or not metric:
            raise CLIError("--gate needs --graph module:graph and --metric module:metric")
        from gepa_graph.tracking.gate import promote_if_better

        decision = promote_if_better(
            name,
            load_object(graph, "graph"),
            read_jsonl(gate, "gate"),
            load_object(metric, "metric"),
            margin=margin,
            alpha=alpha,
            from_alias=from_alias,
            to_alias=to_alias,
            tracking_uri=tracking_uri,
        )
    say(decision.summary())
    say(f"MLflow run: {decision.run_id}")
    if not decision.promoted:
        raise typer.Exit(1)


@app.command()
def rollback(
    name: str = typer.Argument(..., help="registry name given to --register"),
    alias: str = typer.Option("production", help="alias to move back"),
    tracking_uri: str | None = typer.Option(None, help="MLflow tracking URI"),
) -> None:
    """Put an alias (default production) back on the version set it named before its last
    move, for every module at once. The alias history is kept."""
    with user_errors():
        from gepa_graph.tracking import registry

        move = registry.rollback(name, alias, tracking_uri)
    for module, (before, after) in sorted(move.changes.items()):
        say(f"{name}.{module}: {alias} {_version(before)} -> {_version(after)}")
    if not move.changes:
        say(f"{name}@{alias} already names the previous version set")


def _version(version: int | None) -> str:
    return f"v{version}" if version is not None else "(none)"
