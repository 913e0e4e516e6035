"""Working on a graph: ``optimize`` (its prompts, on JSONL data, optionally tracked and
registered) and ``inspect`` (the prompts it holds)."""

from __future__ import annotations

from pathlib import Path

import typer

from gepa_graph.cli.common import app, options, say, user_errors
from gepa_graph.cli.inputs import load_object, read_jsonl, reflection_lm_from
from gepa_graph.cli.runs import show_result


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
        "local",
        help="where rollouts run: local, or ray (the cluster at RAY_ADDRESS, else the "
        "one on this machine; workers import the system by its module:attr)",
    ),
) -> None:
    """Optimize the prompts of a graph on JSONL data."""
    with user_errors():
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
                experiment=experiment or "gepa-graph",
                tracking_uri=tracking_uri,
                run_name=run_name,
                verbose=options["verbose"],
            )
        seed_prompts = registry.seed_from_registry(seed_from, tracking_uri) if seed_from else None
        result = gg.optimize(
            target,
            trainset,
            valset,
            metric=metric_fn,
            reflection_lm=reflection_lm_from(reflection_lm),
            max_rollouts=max_rollouts,
            max_cost_usd=max_cost_usd,
            max_seconds=max_seconds,
            config=config,
            run_dir=run_dir,
            resume=resume,
            tracking=tracker,
            progress=progress,
            seed_prompts=seed_prompts,
            testset=testset,
            executor=executor,
        )
        show_result(result, f"candidates ({result.run_dir})")
        if tracker is not None and tracker.run_id:
            say(f"MLflow run: {tracker.run_id} (experiment {tracker.experiment})")
            if tracker.runs_url:
                say(f"runs: {tracker.runs_url}")
        if register:
            done = registry.register(
                result,
                register,
                alias,
                tracking_uri,
                run_id=tracker.run_id if tracker is not None else None,
            )
            versions = ", ".join(f"{m}=v{v}" for m, v in sorted(done.versions.items()))
            say(f"registered {register}@{alias}: {versions}")


@app.command("inspect")
def inspect_graph(
    graph: str = typer.Argument(
        ..., help="module:attr of a compiled LangGraph graph or another Runnable"
    ),
    probe: Path | None = typer.Option(
        None,
        help="a .jsonl file: run the seed on its first three examples (paid runs) and list "
        "what reached a model, as optimize does: each prompt with its kind (user or library), "
        "home and the nodes whose calls carried it",
    ),
) -> None:
    """List the prompts (modules) of a graph: found in its code, or with --probe, observed."""
    with user_errors():
        from gepa_graph.assembly import PROBE_EXAMPLES
        from gepa_graph.integrations.langgraph import describe

        examples = read_jsonl(probe, "probe")[:PROBE_EXAMPLES] if probe is not None else None
        say(describe(load_object(graph, "graph"), probe=examples))
