"""Noisy-metric benchmark: a noisy judge, scored once or several times (``score_repeats``),
with GEPA's strict minibatch acceptance or ``confident_improvement``.

The tasks are the rule family's (rule_family.py) with its metric replaced by a judge that
flips its pass/fail verdict with probability ``--flip`` on each call (an LLM judge's noise),
and says what it decided: a flipped "correct" shows no missing rule, a flipped "wrong" names
none. The noise is a function of (seed, candidate, example, call number on that output), so a
run is reproducible. Every configuration runs at the same rollout budget; what it reports per
task and configuration, as mean ± sd over seeds, is the winner's *true* (noise-free) score on
the validation and test sets, the judged validation score it was chosen on, rollouts and
metric calls, and the candidates that joined the pool.

    python -m benchmarks.noisy_metric --seeds 20          # the table in benchmarks/README.md
    python -m benchmarks.noisy_metric --quick             # seconds, for the tests
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, command, machine, mean_sd, publish, table
from benchmarks.rule_family import FAMILY, RuleTask

CONFIGS: dict[str, dict[str, Any]] = {
    "repeats 1, strict (default)": {},
    "repeats 1, strict, unstaged minibatch": {"staged_minibatch": False},
    "repeats 3, strict": {"score_repeats": 3},
    "repeats 3, confident": {"score_repeats": 3, "acceptance": "confident_improvement"},
    "repeats 5, confident": {"score_repeats": 5, "acceptance": "confident_improvement"},
}
TASKS = ("single", "two-module")


class NoisyJudge:
    """The task's metric with each verdict flipped with probability ``flip`` (see the module
    docstring). Async, so the repeats of one output are judged in a fixed order."""

    def __init__(self, task: RuleTask, flip: float, seed: int) -> None:
        self.task, self.flip, self.seed = task, flip, seed
        self.seen: dict[tuple[str, str], int] = {}

    async def __call__(self, example: Any, prediction: Mapping[str, str]) -> Any:
        import gepa_graph as gg

        key = (prediction["candidate"], str(example["id"]))
        self.seen[key] = self.seen.get(key, 0) + 1
        truth = self.task.score(example, prediction["answer"])
        if random.Random(f"{self.seed}/{key}/{self.seen[key]}").random() >= self.flip:
            return truth
        if truth.value == 1.0:
            return gg.Score(value=0.0, feedback="wrong")
        return gg.Score(value=1.0, feedback="correct")


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """One optimization of one task, seed and configuration."""
    import gepa_graph as gg

    task = RuleTask(FAMILY[job["task"]], data_seed=job["seed"])

    def answer(prompts: dict[str, str], example: Any) -> dict[str, str]:
        who = gg.Candidate(prompts=prompts).id
        return {"candidate": who, "answer": task.student(prompts, example)}

    # One proposal at a time, as in benchmark 1: with instant rollouts a second proposal would
    # start only when the first outlasts the runner's 0.1 s, so the rows would follow the load.
    config = gg.OptimizeConfig(
        seed=job["seed"], max_rollouts=job["budget"], parallel_proposals=1, **job["options"]
    )
    with tempfile.TemporaryDirectory(prefix="gg-noisy-") as tmp:
        result = gg.optimize(
            gg.FunctionSystem(modules=task.seed_prompts(), fn=answer),
            task.train,
            task.val,
            metric=NoisyJudge(task, job["flip"], job["seed"]),
            reflection_lm=task.reflection_lm(noise_seed=job["seed"]),
            config=config,
            run_dir=Path(tmp) / "run",
            progress=False,
        )
    return {
        **{k: job[k] for k in ("task", "name", "seed")},
        "true_val": task.mean_score(result.best_candidate, task.val),
        "true_test": task.mean_score(result.best_candidate, task.test),
        "judged_val": result.best_score,
        "rollouts": result.rollouts_used,
        "metric_calls": result.ledger.metric_calls,
        "pool": len(result.candidates),
    }


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± sd over seeds per (task, configuration), with the true validation score's ratio
    to the default configuration's."""
    rows = []
    for task in dict.fromkeys(run["task"] for run in runs):
        default = [r for r in runs if r["task"] == task and not CONFIGS[r["name"]]]
        base = mean_sd(r["true_val"] for r in default)[0]
        for name in dict.fromkeys(run["name"] for run in runs):
            mine = [r for r in runs if r["task"] == task and r["name"] == name]
            row: dict[str, Any] = {"task": task, "config": name, "seeds": len(mine)}
            for field in ("true_val", "true_test", "judged_val", "rollouts", "metric_calls"):
                row[field] = mean_sd(r[field] for r in mine)
            row["pool"] = mean_sd(r["pool"] for r in mine)
            row["vs_default"] = row["true_val"][0] / base if base else float("nan")
            rows.append(row)
    return rows


def markdown(results: dict[str, Any]) -> str:
    """The table of benchmarks/README.md's section."""

    def cell(pair: tuple[float, float], digits: int = 3) -> str:
        return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"

    rows = [
        (
            row["task"],
            row["config"],
            cell(row["true_val"]),
            f"{row['vs_default']:.2f}",
            cell(row["true_test"]),
            cell(row["judged_val"]),
            f"{row['rollouts'][0]:.0f}",
            f"{row['metric_calls'][0]:.0f}",
            cell(row["pool"], 1),
        )
        for row in results["summary"]
    ]
    header = (
        "task",
        "configuration",
        "true val",
        "vs default",
        "true test",
        "judged val",
        "rollouts",
        "metric calls",
        "pool",
    )
    args = results["args"]
    return (
        f"Judge flips {args['flip']:.0%} of verdicts; budget {args['budget']} rollouts; "
        f"{args['seeds']} seeds (mean ± sd).\n\n" + table(header, rows)
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every task x configuration x seed and publish the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--flip", type=float, default=0.2)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2 seeds, budget 90, one task")
    parser.add_argument("--out", default=str(RESULTS / "noisy_metric.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.budget = 2, 90
    tasks = TASKS[:1] if args.quick else TASKS
    jobs = [
        {"task": t, "name": n, "options": o, "seed": s, "budget": args.budget, "flip": args.flip}
        for t in tasks
        for n, o in CONFIGS.items()
        for s in range(args.seeds)
    ]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(run_one, jobs))
    else:
        runs = [run_one(job) for job in jobs]
    results = {
        "machine": machine(),
        "command": command("noisy_metric", argv),
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "runs": runs,
        "summary": summarise(runs),
    }
    publish(args.out, results, markdown(results))
    return results


if __name__ == "__main__":
    main()
