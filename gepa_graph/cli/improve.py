"""``gepa-graph improve``: from production traces back to a better prompt, in one command.

Four steps, each printed, recorded in MLflow and resumable: (1) a dataset from the agent's
production traces (``tracking.traces``), split by trace id into training, validation and
held-out examples; (2) an optimization seeded from ``NAME@production`` whose run lists the
dataset in its Datasets panel, its winner registered as ``NAME@candidate``; (3) the promotion
gate on the held-out traces (``tracking.gate``), a run of its own; (4) production moved to the
candidate when the gate passed and ``--promote`` was given. The run folder's ``improve.json``
records each finished step, so rerunning with the same ``--run-dir`` skips it (an interrupted
optimization resumes from its checkpoint). Exit code 1 when production is kept.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import typer

from gepa_graph.cli.common import app, options, say, user_errors
from gepa_graph.cli.inputs import load_object, read_jsonl, reflection_lm_from
from gepa_graph.errors import CLIError

STATE_FILE = "improve.json"
SPLITS = ("train", "val", "test")


def metric_from(spec: str) -> Any:
    """``expectation`` or ``expectation:NAME`` (score against the traces' expectation),
    ``judge:MODEL`` (a judge model with the traces' feedback as rubric), or ``module:attr``."""
    from gepa_graph.tracking import feedback_metrics

    kind, _, rest = spec.partition(":")
    if kind == "expectation":
        return feedback_metrics.expectation_metric(rest or None)
    if kind == "judge":
        if not rest:
            raise CLIError("--metric judge:MODEL needs a model, e.g. judge:openai/gpt-4.1-mini")
        return feedback_metrics.judge_metric(reflection_lm_from(rest))
    return load_object(spec, "metric")


class _Steps:
    """The run folder's record of finished steps (``improve.json``), written after each."""

    def __init__(self, run_dir: Path, name: str) -> None:
        self.path = run_dir / STATE_FILE
        self.state: dict[str, Any] = {"name": name}
        if self.path.exists():
            self.state = json.loads(self.path.read_text(encoding="utf-8"))
            if self.state.get("name") != name:
                raise CLIError(
                    f"{run_dir} holds an improvement of {self.state.get('name')!r}, not {name!r}"
                )

    def done(self, step: str) -> dict[str, Any] | None:
        return self.state.get(step)

    def finish(self, step: str, record: dict[str, Any]) -> dict[str, Any]:
        self.state[step] = record
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.state, indent=1), encoding="utf-8")
        temporary.replace(self.path)
        return record


def _write_jsonl(path: Path, examples: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))


@app.command()
def improve(
    name: str = typer.Argument(..., help="registry name of the agent's prompts"),
    graph: str = typer.Option(..., "--graph", help="module:attr of the agent's graph"),
    from_traces: str = typer.Option(
        ..., "--from-traces", help="MLflow experiment holding the agent's production traces"
    ),
    filter_string: str | None = typer.Option(
        None, "--filter", help="MLflow trace filter, e.g. \"trace.name = 'LangGraph'\""
    ),
    since: str | None = typer.Option(None, help="only traces from this ISO date or time on"),
    max_traces: int | None = typer.Option(None, help="at most this many (the newest) traces"),
    metric: str = typer.Option(
        ...,
        "--metric",
        help="module:attr of metric(example, prediction), or expectation[:NAME], or judge:MODEL",
    ),
    reflection_lm: str = typer.Option(
        ..., "--reflection-lm", help="LiteLLM model name, or module:attr of a callable(prompt)->str"
    ),
    max_rollouts: int = typer.Option(..., help="rollout budget of the optimization"),
    test: float = typer.Option(0.2, help="share of the traces held out for the gate"),
    val: float = typer.Option(0.3, help="share of the traces used for validation"),
    seed: int = typer.Option(0, help="seed of the split, the search and the gate"),
    margin: float = typer.Option(0.02, help="the gain's lower bound must exceed this"),
    alpha: float = typer.Option(0.05, help="significance level of the gate's tests"),
    promote: bool = typer.Option(False, "--promote", help="move production if the gate passes"),
    experiment: str | None = typer.Option(
        None, help="MLflow experiment of the optimization and gate runs (default NAME-improve)"
    ),
    tracking_uri: str | None = typer.Option(None, help="MLflow tracking URI"),
    run_dir: Path | None = typer.Option(
        None, help="this improvement's folder; rerunning with it skips the finished steps"
    ),
    progress: bool | None = typer.Option(None, "--progress/--no-progress"),
) -> None:
    """Production traces -> dataset -> optimization seeded from NAME@production -> gate ->
    promotion (with --promote), every step printed and recorded in MLflow."""
    with user_errors():
        import gepa_graph as gg
        from gepa_graph.config import OptimizeConfig
        from gepa_graph.tracking import registry, traces
        from gepa_graph.tracking import schema as S
        from gepa_graph.tracking.gate import promote_if_better

        target = load_object(graph, "graph")
        metric_fn = metric_from(metric)
        lm = reflection_lm_from(reflection_lm)
        experiment = experiment or f"{name}-improve"
        if run_dir is None:
            run_dir = Path("gepa_runs") / f"improve-{name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        steps = _Steps(run_dir, name)
        say(f"run folder: {run_dir} (rerun with --run-dir {run_dir} to continue it)")

        # 1. The dataset: read once, then the run folder's copy.
        record = steps.done("dataset")
        if record is None:
            examples = traces.dataset_from_traces(
                from_traces, filter_string, since, max_traces, tracking_uri
            )
            parts = traces.split(examples, test=test, val=val, seed=seed)
            if not parts.train or not parts.test:
                raise CLIError(
                    f"{len(examples)} traces are too few to train on and hold some out; "
                    "record more traces or widen --filter/--since"
                )
            run_dir.mkdir(parents=True, exist_ok=True)
            for split_name, part in zip(SPLITS, parts):
                _write_jsonl(run_dir / f"{split_name}.jsonl", part)
            record = steps.finish(
                "dataset",
                {
                    "experiment": from_traces,
                    "filter": filter_string,
                    "since": since,
                    "traces": len(examples),
                    **{s: len(p) for s, p in zip(SPLITS, parts)},
                },
            )
            verb = "read"
        else:
            verb = "skipped, from the run folder:"
        data = {s: read_jsonl(run_dir / f"{s}.jsonl", s) if record[s] else [] for s in SPLITS}
        where = f" matching {record['filter']!r}" if record["filter"] else ""
        say(
            f"1/4 dataset: {verb} {record['traces']} traces of experiment "
            f"{record['experiment']!r}{where}: {record['train']} training, {record['val']} "
            f"validation, {record['test']} held-out"
        )

        # 2. The optimization, seeded from production, its winner registered as candidate.
        record = steps.done("optimization")
        if record is None:
            try:
                seed_prompts = registry.seed_from_registry(f"{name}@production", tracking_uri)
                seeded = f"{name}@production"
            except LookupError:
                seed_prompts, seeded = None, "the graph's own prompts (no production yet)"
            say(f"2/4 optimize: seeded from {seeded}, up to {max_rollouts} rollouts")
            tracker = gg.tracking.MLflowTracker(
                experiment=experiment, tracking_uri=tracking_uri, verbose=options["verbose"]
            )
            folder = run_dir / "optimization"
            result = gg.optimize(
                target,
                data["train"],
                data["val"] or None,
                metric=metric_fn,
                reflection_lm=lm,
                max_rollouts=max_rollouts,
                config=OptimizeConfig(seed=seed),
                run_dir=folder,
                resume=(folder / "journal.jsonl").exists(),
                tracking=tracker,
                progress=progress,
                seed_prompts=seed_prompts,
            )
            run_id = tracker.run_id
            assert run_id is not None  # the tracker opened its run when the optimization started
            client = registry.client_for(tracking_uri)
            for split_name in SPLITS:
                if data[split_name]:
                    traces.log_dataset(run_id, data[split_name], split_name, tracking_uri)
            client.set_tag(run_id, S.TAG_IMPROVE_NAME, name)
            client.set_tag(run_id, S.TAG_TRACES_EXPERIMENT, from_traces)
            if filter_string:
                client.set_tag(run_id, S.TAG_TRACES_FILTER, filter_string)
            done = registry.register(result, name, "candidate", tracking_uri, run_id=run_id)
            record = steps.finish(
                "optimization",
                {
                    "run_id": run_id,
                    "seeded": seeded,
                    "seed_score": result.seed_score,
                    "best_score": result.best_score,
                    "rollouts": result.rollouts_used,
                    "changed": sorted(result.changed_modules()),
                    "versions": done.versions,
                },
            )
            verb = "done"
        else:
            verb = "skipped, done earlier"
        versions = ", ".join(f"{m}=v{v}" for m, v in sorted(record["versions"].items()))
        say(
            f"2/4 optimize: {verb}: validation {record['seed_score']:.4f} -> "
            f"{record['best_score']:.4f} in {record['rollouts']} rollouts, changed "
            f"{', '.join(record['changed']) or 'nothing'}; MLflow run {record['run_id']}; "
            f"registered {name}@candidate: {versions}"
        )

        # 3. The gate on the held-out traces: decides and records, moves nothing.
        gate = steps.done("gate")
        if gate is None:
            decision = promote_if_better(
                name,
                target,
                data["test"],
                metric_fn,
                margin=margin,
                alpha=alpha,
                seed=seed,
                promote=False,
                tracking_uri=tracking_uri,
                experiment=experiment,
                tags={
                    S.TAG_IMPROVE_NAME: name,
                    S.TAG_IMPROVE_OPTIMIZATION_RUN: record["run_id"],
                    S.TAG_TRACES_EXPERIMENT: from_traces,
                },
            )
            assert decision.run_id is not None  # promote_if_better records every decision
            traces.log_dataset(decision.run_id, data["test"], "test", tracking_uri)
            gate = steps.finish(
                "gate",
                {
                    "run_id": decision.run_id,
                    "passed": decision.passed,
                    "summary": decision.summary(),
                    "versions": decision.versions,
                },
            )
            verb = ""
        else:
            verb = "skipped, decided earlier: "
        say(f"3/4 gate: {verb}{gate['summary']}")
        say(f"   MLflow run: {gate['run_id']}")

        # 4. Promotion.
        if not gate["passed"]:
            say(f"4/4 promote: no, {name}@production is kept")
            raise typer.Exit(1)
        if not promote:
            say(f"4/4 promote: the gate passed; rerun with --promote to move {name}@production")
            return
        promotion = steps.done("promotion")
        if promotion is None:
            current = registry.load_versions(f"{name}@candidate", tracking_uri)
            if {m: int(v.version) for m, v in current.items()} != gate["versions"]:
                raise CLIError(
                    f"{name}@candidate moved since the gate scored it; run a new improvement"
                )
            moved = registry.promote(name, "candidate", "production", tracking_uri)
            registry.client_for(tracking_uri).set_tag(
                gate["run_id"], S.TAG_PROMOTION_DECISION, "promoted"
            )
            promotion = steps.finish("promotion", {"versions": moved})
        versions = ", ".join(f"{m}=v{v}" for m, v in sorted(promotion["versions"].items()))
        say(f"4/4 promote: {name}@production -> {versions}")
