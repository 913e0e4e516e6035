"""The ``gepa-graph`` command: optimize, inspect, show, promote, rollback, ui, demo.

User errors (a bad JSONL line, a ``module:attr`` that does not import, an unknown registry name)
are one line on stderr and exit code 2. MLflow's own console lines are off unless ``--verbose``.
Everything printed passes through ``gepa_graph.redact``.
"""

from __future__ import annotations

import os

# Before anything can import litellm: never fetch the model price map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import importlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.panel import Panel  # noqa: E402
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402

from gepa_graph.redact import redact_text  # noqa: E402

app = typer.Typer(
    name="gepa-graph",
    help="GEPA prompt optimization for LangGraph agents, tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", help="also show MLflow's own console lines"),
) -> None:
    """GEPA prompt optimization for LangGraph agents, tracked in MLflow."""
    from gepa_graph.tracking.console import quiet_mlflow

    _options["verbose"] = verbose
    quiet_mlflow(verbose)


_options = {"verbose": False}


class CLIError(Exception):
    """A user error: reported as one line, exit code 2."""


def _say(text: str) -> None:
    """Plain text on stdout (secrets masked): no rich markup, no highlighting, no wrapping."""
    console.print(redact_text(text), markup=False, highlight=False, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    typer.echo(redact_text(f"error: {message}"), err=True)
    raise typer.Exit(2)


def _one_line(exc: BaseException) -> str:
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text or type(exc).__name__


def _user_errors() -> tuple[type[BaseException], ...]:
    from mlflow.exceptions import MlflowException

    from gepa_graph.errors import GepaGraphError

    return (CLIError, GepaGraphError, ValueError, TypeError, LookupError, OSError, MlflowException)


# --- loading user objects and data -------------------------------------------------------------


def load_object(spec: str, what: str) -> Any:
    """``package.module:attr`` or ``path/to/file.py:attr`` -> the object (cwd is importable)."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise CLIError(f"{what} must be given as module:attr (e.g. my_agent:graph), got {spec!r}")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise CLIError(f"cannot import {what} {spec!r}: no file {path}")
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except CLIError:
        raise
    except Exception as exc:
        raise CLIError(f"cannot import {what} {spec!r}: {type(exc).__name__}: {_one_line(exc)}")
    value = module
    for part in attr.split("."):
        if not hasattr(value, part):
            raise CLIError(
                f"cannot import {what} {spec!r}: {module_name} has no attribute {attr!r}"
            )
        value = getattr(value, part)
    return value


def read_jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    """Examples from a JSONL file: one JSON object per line, blank lines skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CLIError(f"cannot read {what} file {path}: {exc.strerror or exc}") from None
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CLIError(f"{path}:{number}: invalid JSON in {what}: {exc.msg}") from None
        if not isinstance(value, dict):
            raise CLIError(
                f"{path}:{number}: each {what} line must be a JSON object, got "
                f"{type(value).__name__}"
            )
        examples.append(value)
    if not examples:
        raise CLIError(f"{what} file {path} holds no examples")
    return examples


_PYTHON_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def reflection_lm_from(value: str) -> Any:
    """A LiteLLM model name, or ``module:attr`` naming a Python callable(prompt) -> str."""
    if _PYTHON_PATH.match(value):
        try:
            target = load_object(value, "reflection LM")
        except CLIError:
            return value  # e.g. "ollama:llama3": a model name, not a Python path
        if callable(target):
            return target
    return value


# --- rendering -----------------------------------------------------------------------------------


def _render(title: str, rows: list[dict[str, Any]], best_id: str | None,
            best_prompts: dict[str, str], summary: str = "") -> None:
    table = Table(title=title)
    for column in ("candidate", "origin", "parents", "iteration", "rollouts", "mean score"):
        table.add_column(column, justify="right" if column in ("iteration", "rollouts",
                                                               "mean score") else "left")
    for row in rows:
        marker = " *" if row["id"] == best_id else ""
        table.add_row(
            redact_text(row["id"]) + marker, row["origin"],
            ", ".join(p[:8] for p in row["parent_ids"]) or "-",
            str(row["iteration"]), str(row["rollouts"]), f"{row['mean']:.4f}",
        )
    console.print(table)
    if summary:
        _say(summary)
    for module, text in sorted(best_prompts.items()):
        console.print(Panel(Text(redact_text(text)), title=redact_text(f"best prompt: {module}"),
                            title_align="left"))


def _rows_from_result(result: Any) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "origin": c.origin, "parent_ids": list(c.parent_ids),
         "iteration": c.iteration, "rollouts": c.rollouts_at_discovery, "mean": c.mean_score}
        for c in result.candidates
    ]


def _show_result(result: Any, title: str) -> None:
    summary = (
        f"best {result.best_id}: {result.best_score:.4f} (seed {result.seed_score:.4f}); "
        f"{result.rollouts_used} rollouts, {result.iterations} iterations, "
        f"stop: {result.stop_reason}"
    )
    if result.test_best_score is not None:
        summary += (f"; held-out {result.test_seed_score:.4f} (seed) -> "
                    f"{result.test_best_score:.4f} (best)")
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
        raise CLIError(f"no MLflow store at {path}: run this in the folder holding it or pass "
                       "--tracking-uri (e.g. sqlite:///path/mlflow.db or http://127.0.0.1:5000)")
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
        raise CLIError(f"run {run_id} is candidate {tags[S.TAG_CANDIDATE_ID]} of an "
                       f"optimization; show the optimization with --run-id {parent}")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(
                run_id, S.table_path(S.TABLE_CANDIDATES), tmp)
        except Exception:
            raise CLIError(f"MLflow run {run_id} has no gepa_graph candidates table") from None
        payload = json.loads(Path(local).read_text(encoding="utf-8"))
    records = [dict(zip(payload["columns"], row)) for row in payload["data"]]
    rows = [
        {"id": r["candidate_id"], "origin": r["origin"],
         "parent_ids": [p for p in r["parent_ids"].split(",") if p],
         "iteration": r["iteration"], "rollouts": r["rollouts_at_discovery"],
         "mean": r[S.VAL_SCORE]}
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


# --- commands ------------------------------------------------------------------------------------


@app.command()
def optimize(
    system: str = typer.Argument(..., help="module:attr of a LangGraph graph or gg.System"),
    metric: str = typer.Argument(..., help="module:attr of metric(example, prediction[, trace])"),
    train: Path = typer.Option(..., "--train", help="training examples, JSONL"),
    val: Path | None = typer.Option(None, "--val", help="validation JSONL (default: train)"),
    test: Path | None = typer.Option(
        None, "--test", help="held-out JSONL: the seed and the winner are scored on it at the end"
    ),
    reflection_lm: str = typer.Option(
        ..., "--reflection-lm", help="LiteLLM model name, or module:attr of a callable(prompt)->str"
    ),
    max_rollouts: int | None = typer.Option(None, help="rollout budget (default 200)"),
    max_cost_usd: float | None = typer.Option(None, help="LM spend budget in USD"),
    max_seconds: float | None = typer.Option(None, help="wall-clock budget"),
    minibatch_size: int | None = typer.Option(None, help="examples per reflection minibatch"),
    seed: int | None = typer.Option(None, help="random seed"),
    experiment: str | None = typer.Option(None, help="MLflow experiment to track the run in"),
    run_name: str | None = typer.Option(
        None, help="MLflow run name (default: <experiment>-<date>-<time>)"
    ),
    tracking_uri: str | None = typer.Option(None, help="MLflow tracking URI (default: MLflow's)"),
    run_dir: Path | None = typer.Option(None, help="checkpoint folder (default: ./gepa_runs/...)"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --run-dir"),
    seed_from: str | None = typer.Option(
        None, help="start from registry prompts, e.g. my_agent@production"
    ),
    register: str | None = typer.Option(
        None, "--register", help="register the best prompts in the MLflow Prompt Registry as NAME"
    ),
    alias: str = typer.Option("candidate", help="alias the registered versions get"),
    progress: bool | None = typer.Option(None, "--progress/--no-progress"),
    executor: str = typer.Option(
        "local", help="where rollouts run: local, or ray (the cluster at RAY_ADDRESS, else the "
        "one on this machine; workers import the system by its module:attr)"
    ),
) -> None:
    """Optimize the prompts of a graph on JSONL data."""
    try:
        import gepa_graph as gg
        from gepa_graph.config import OptimizeConfig
        from gepa_graph.tracking import registry

        target = load_object(system, "system")
        if executor == "ray" and not system.rpartition(":")[0].endswith(".py"):
            target = system  # the import path: each Ray worker imports the system itself
        metric_fn = load_object(metric, "metric")
        trainset = read_jsonl(train, "train")
        valset = read_jsonl(val, "val") if val is not None else None
        testset = read_jsonl(test, "test") if test is not None else None
        settings = {"minibatch_size": minibatch_size, "seed": seed}
        config = OptimizeConfig(**{k: v for k, v in settings.items() if v is not None})
        tracker = None
        if experiment is not None or tracking_uri is not None or run_name is not None:
            tracker = gg.tracking.MLflowTracker(
                experiment=experiment or "gepa-graph", tracking_uri=tracking_uri,
                run_name=run_name, verbose=_options["verbose"],
            )
        seed_prompts = (
            registry.seed_from_registry(seed_from, tracking_uri) if seed_from else None
        )
        result = gg.optimize(
            target, trainset, valset, metric=metric_fn,
            reflection_lm=reflection_lm_from(reflection_lm), max_rollouts=max_rollouts,
            max_cost_usd=max_cost_usd, max_seconds=max_seconds, config=config, run_dir=run_dir,
            resume=resume, tracking=tracker, progress=progress, seed_prompts=seed_prompts,
            testset=testset, executor=executor,
        )
        _show_result(result, f"candidates ({result.run_dir})")
        if tracker is not None and tracker.run_id:
            _say(f"MLflow run: {tracker.run_id} (experiment {tracker.experiment})")
            if tracker.runs_url:
                _say(f"runs: {tracker.runs_url}")
        if register:
            done = registry.register(
                result, register, alias, tracking_uri,
                run_id=tracker.run_id if tracker is not None else None,
            )
            versions = ", ".join(f"{m}=v{v}" for m, v in sorted(done.versions.items()))
            _say(f"registered {register}@{alias}: {versions}")
    except _user_errors() as exc:
        _fail(_one_line(exc))


@app.command("inspect")
def inspect_graph(
    graph: str = typer.Argument(..., help="module:attr of a compiled LangGraph graph"),
    probe: Path | None = typer.Option(
        None, help="a .jsonl file: run the seed on its first example to confirm which prompts "
        "reach a model and list the system messages no module holds (one paid run)"),
) -> None:
    """List the prompts (modules) found in a graph."""
    try:
        from gepa_graph.integrations.langgraph import describe

        example = read_jsonl(probe, "probe")[0] if probe is not None else None
        _say(describe(load_object(graph, "graph"), probe=example))
    except _user_errors() as exc:
        _fail(_one_line(exc))


@app.command()
def show(
    run_dir: Path | None = typer.Argument(None, help="a run folder holding state.json"),
    run_id: str | None = typer.Option(None, help="an MLflow run id (parent run)"),
    tracking_uri: str | None = typer.Option(None, help="MLflow tracking URI for --run-id"),
) -> None:
    """Show a run's candidates and best prompts, from a run folder or an MLflow run."""
    if (run_dir is None) == (run_id is None):
        _fail("give either a run folder or --run-id")
    try:
        if run_dir is not None:
            from gepa_graph.state import load_result

            _show_result(load_result(run_dir), f"candidates ({run_dir})")
        else:
            _show_mlflow_run(run_id, tracking_uri)
    except _user_errors() as exc:
        _fail(_one_line(exc))


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
    margin: float = typer.Option(0.02, help="how much the candidate must win by (--gate)"),
    tracking_uri: str | None = typer.Option(None, help="MLflow tracking URI"),
) -> None:
    """Move an alias (default production) to the versions another alias names, all modules at
    once; with --gate, only if those versions score better on held-out examples."""
    try:
        from gepa_graph.tracking import registry

        if gate is None:
            if graph or metric:
                raise CLIError("--graph and --metric go with --gate")
            moved = registry.promote(name, from_alias, to_alias, tracking_uri)
            for module, version in sorted(moved.items()):
                _say(f"{name}.{module}: {to_alias} -> v{version}")
            return
        if not graph or not metric:
            raise CLIError("--gate needs --graph module:graph and --metric module:metric")
        from gepa_graph.tracking.gate import promote_if_better

        decision = promote_if_better(
            name, load_object(graph, "graph"), read_jsonl(gate, "gate"),
            load_object(metric, "metric"), margin=margin, from_alias=from_alias,
            to_alias=to_alias, tracking_uri=tracking_uri,
        )
    except _user_errors() as exc:
        _fail(_one_line(exc))
    _say(decision.summary())
    _say(f"MLflow run: {decision.run_id}")
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
    try:
        from gepa_graph.tracking import registry

        move = registry.rollback(name, alias, tracking_uri)
    except _user_errors() as exc:
        _fail(_one_line(exc))
    for module, (before, after) in sorted(move.changes.items()):
        _say(f"{name}.{module}: {alias} {_version(before)} -> {_version(after)}")
    if not move.changes:
        _say(f"{name}@{alias} already names the previous version set")


def _version(version: int | None) -> str:
    return f"v{version}" if version is not None else "(none)"


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

    _say(f"MLflow UI on http://{host}:{port} (Ctrl+C to stop); an optimization's runs, scores "
         f"as columns: http://{host}:{port}/#/experiments/<experiment id>/runs"
         f"?workflowType=machine_learning&viewStateShareKey=gepa-graph")
    try:
        code = subprocess.call(server_command(host, port, backend_store_uri), env=server_env())
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


@app.command()
def demo(
    task_lm: str | None = typer.Option(
        None, "--task-lm", help="LiteLLM model for the agent (default: the embedded local model)"
    ),
    reflection_lm: str | None = typer.Option(
        None, "--reflection-lm", help="LiteLLM model for reflection (default: the task LM)"
    ),
    max_rollouts: int = typer.Option(60, help="rollout budget"),
    max_seconds: float = typer.Option(420.0, help="wall-clock budget of the optimization"),
    seed: int = typer.Option(0, help="random seed"),
    experiment: str = typer.Option("gepa-graph-demo", help="MLflow experiment"),
    tracking_uri: str | None = typer.Option(None, help="MLflow tracking URI (default: MLflow's)"),
    register: str = typer.Option("date-extractor", "--register",
                                 help="Prompt Registry name for the winner (alias candidate)"),
    run_dir: Path | None = typer.Option(None, help="checkpoint folder (default: ./gepa_runs/...)"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Optimize a small real LangGraph agent (dates -> ISO 8601) with a local LLM, offline."""
    try:
        from gepa_graph.demo import run_demo, summary
        from gepa_graph.local import LocalModelError

        report = run_demo(
            task_lm=task_lm, reflection_lm=reflection_lm, max_rollouts=max_rollouts,
            max_seconds=max_seconds, seed=seed, tracking_uri=tracking_uri,
            experiment=experiment, registry_name=register, run_dir=run_dir,
            progress=progress, say=_say,
        )
    except LocalModelError as exc:
        _fail(_one_line(exc))
    except _user_errors() as exc:
        _fail(_one_line(exc))
    _say(summary(report))
