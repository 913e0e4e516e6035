"""Benchmark 1: search efficiency on the simulated rule-learning family (rule_family.py).

gepa_graph and gepa 0.1.4 run with the same budget of rollouts (metric calls), minibatch size,
seeds, student, metric and scripted reflection LM (search_runs.py). Per task, configuration
(Pareto vs current-best selection, merge on/off) and budget it reports each optimizer's final
validation and held-out test score, its validation share of rollouts, and the rollouts it needs
to reach gepa's final validation score (search_report.py).

    python -m benchmarks.search_efficiency --seeds 20          # full run (minutes)
    python -m benchmarks.search_efficiency --quick             # seconds, for the tests
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from benchmarks._common import RESULTS, command, machine, publish
from benchmarks.rule_family import FAMILY
from benchmarks.search_report import analyse, markdown
from benchmarks.search_runs import CONFIGS, ECONOMY, OPTIMIZERS, VARIANTS, one_run

__all__ = ["main", "markdown"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budgets", type=int, nargs="+", default=[300, 600])
    parser.add_argument("--minibatch", type=int, default=3)
    parser.add_argument("--tasks", nargs="*", default=list(FAMILY), choices=list(FAMILY))
    parser.add_argument(
        "--configs",
        default="merge",
        choices=["all", "merge", "main"],
        help="all: Pareto/current-best x merge on/off; merge: Pareto, merge on and off "
        "(default); main: Pareto + merge only",
    )
    parser.add_argument(
        "--variants",
        nargs="*",
        default=list(ECONOMY),
        choices=list(VARIANTS),
        help="gepa_graph variants (rows) to run beside the defaults and gepa; default: the "
        "previous defaults and every validation policy",
    )
    parser.add_argument(
        "--no-variants",
        dest="variants",
        action="store_const",
        const=[],
        help="skip the gepa_graph variants",
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--quick", action="store_true", help="tiny run (seconds) for the tests")
    parser.add_argument("--out", default=str(RESULTS / "search_efficiency.json"))
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write its JSON, print its tables; the results."""
    args = _parser().parse_args(argv)
    if args.quick:
        args.seeds, args.budgets, args.tasks, args.configs = 2, [150], ["two-module"], "main"
        args.variants = ["gg validation=best_bound"]
        args.jobs = 1
    configs = {"all": CONFIGS, "merge": CONFIGS[:2], "main": CONFIGS[:1]}[args.configs]
    checkpoints = {b: sorted({*range(100, b + 1, 100), b}) for b in args.budgets}
    jobs = [
        {
            "task": t,
            "optimizer": o,
            "seed": s,
            "budget": b,
            "minibatch": args.minibatch,
            **c,
        }
        for t in args.tasks
        for b in args.budgets
        for c in configs
        for s in range(args.seeds)
        for o in (*OPTIMIZERS, *args.variants)
    ]
    started = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(one_run, jobs, chunksize=1))
    else:
        runs = [one_run(job) for job in jobs]
    results = {
        "benchmark": "search_efficiency",
        "command": command("search_efficiency", argv),
        "machine": machine(),
        "seconds": time.perf_counter() - started,
        "params": {
            "variants": {v: VARIANTS[v] for v in args.variants},
            "seeds": args.seeds,
            "budgets": args.budgets,
            "minibatch": args.minibatch,
            "checkpoints": checkpoints,
            "tasks": args.tasks,
            "configs": args.configs,
            "task_specs": {t: FAMILY[t].to_dict() for t in args.tasks},
            "n_test": FAMILY[args.tasks[0]].n_test,
            "quick": args.quick,
        },
        "summaries": analyse(runs, checkpoints),
        "runs": runs,
    }
    publish(args.out, results, markdown(results))
    print(f"\n{len(runs)} runs in {results['seconds']:.1f} s; results in {args.out}")
    return results


if __name__ == "__main__":
    main()
