"""Benchmark 7: what proposals in flight cost in search efficiency when rollouts take time.

The search-efficiency benchmark (1) runs instant rollouts, where the engine goes one proposal at
a time; the wall-clock benchmark (2) runs one seed. This one runs the rule family (rule_family.py)
with every rollout taking L seconds and every reflection R seconds on a virtual clock
(``gepa_graph.testing.clock``): runs take no real time, and the wall time it reports is the
virtual time the run would have taken. Per engine setting it reports, over seeds, the best
validation and held-out test score at an equal budget of rollouts, and the wall time.

    python -m benchmarks.concurrency_quality              # 20 seeds, C=16, L=1 s, R=2 s (~2 min)
    python -m benchmarks.concurrency_quality --quick      # seconds, for the tests
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, command, fmt_mean_sd, machine, publish, table
from benchmarks.rule_family import FAMILY, RuleTask

# Engine settings compared: proposals in flight at most (the default: concurrency /
# (2 x minibatch_size), 3 at C=16; 1: the sequential GEPA loop; 6 = concurrency / minibatch_size
# at C=16, every slot able to run a minibatch).
SETTINGS = {
    "default": {},
    "sequential": {"parallel_proposals": 1},
    "in flight <= 6": {"parallel_proposals": 6},
}


def run_one(
    task: RuleTask,
    seed: int,
    budget: int,
    concurrency: int,
    latency: float,
    reflection_s: float,
    options: dict[str, Any],
) -> dict[str, Any]:
    import gepa_graph as gg
    from gepa_graph.testing.clock import run_on_virtual_clock

    reflect = task.reflection_lm(noise_seed=seed)

    async def reflection_lm(prompt: str) -> str:
        await asyncio.sleep(reflection_s)
        return reflect(prompt)

    async def answer(prompts, example, trace):
        await asyncio.sleep(latency)
        return task.student(prompts, example, trace)

    async def metric(example, prediction, trace=None):
        return task.metric(example, prediction)

    async def main() -> tuple[Any, float]:
        clock = asyncio.get_running_loop()
        started = clock.time()
        with tempfile.TemporaryDirectory(prefix="gg-cq-") as tmp:
            result = await gg.aoptimize(
                gg.FunctionSystem(modules=task.seed_prompts(), fn=answer),
                task.train,
                task.val,
                metric=metric,
                reflection_lm=reflection_lm,
                run_dir=Path(tmp) / "run",
                progress=False,
                config=gg.OptimizeConfig(
                    max_rollouts=budget, concurrency=concurrency, seed=seed, **options
                ),
            )
        return result, clock.time() - started

    result, seconds = run_on_virtual_clock(main())
    return {
        "val": result.best_score,
        "test": task.mean_score(result.best_candidate, task.test),
        "seconds": seconds,
        "rollouts": result.rollouts_used,
    }


def markdown(results: dict[str, Any]) -> str:
    p = results["params"]
    lines = [
        (
            f"Rule family, {p['seeds']} seeds, budget {p['budget']} rollouts, concurrency "
            f"{p['concurrency']}, every rollout {p['latency']} s and every reflection "
            f"{p['reflection_s']} s on a virtual clock. val / test: best-on-validation candidate's "
            f"scores (mean ± sd over seeds); wall: virtual seconds (mean); speed-up: the sequential "
            f"loop's wall over this setting's."
        ),
        "",
    ]
    rows = []
    for task, settings in results["rows"].items():
        sequential = sum(r["seconds"] for r in settings["sequential"]) / len(settings["sequential"])
        for name, runs in settings.items():
            wall = sum(r["seconds"] for r in runs) / len(runs)
            rows.append(
                [
                    task,
                    name,
                    fmt_mean_sd(r["val"] for r in runs),
                    fmt_mean_sd(r["test"] for r in runs),
                    f"{wall:.1f} s",
                    f"{sequential / wall:.2f}x",
                    f"{sum(r['rollouts'] for r in runs) / len(runs):.0f}",
                ]
            )
    lines.append(table(["task", "engine", "val", "test", "wall", "speed-up", "rollouts"], rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per rollout")
    parser.add_argument("--reflection-s", type=float, default=2.0, help="seconds per reflection")
    parser.add_argument(
        "--tasks",
        nargs="*",
        default=["single", "two-module", "three-module-noisy"],
        choices=list(FAMILY),
    )
    parser.add_argument("--quick", action="store_true", help="tiny run (seconds) for the tests")
    parser.add_argument("--out", default=str(RESULTS / "concurrency_quality.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.budget, args.tasks = 2, 120, ["two-module"]
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name in args.tasks:
        rows[name] = {}
        for setting, options in SETTINGS.items():
            rows[name][setting] = [
                run_one(
                    RuleTask(FAMILY[name], data_seed=seed),
                    seed,
                    args.budget,
                    args.concurrency,
                    args.latency,
                    args.reflection_s,
                    options,
                )
                for seed in range(args.seeds)
            ]
        print(f"{name}: done", flush=True)
    results = {
        "benchmark": "concurrency_quality",
        "command": command("concurrency_quality", argv),
        "machine": machine(),
        "params": {
            "seeds": args.seeds,
            "budget": args.budget,
            "concurrency": args.concurrency,
            "latency": args.latency,
            "reflection_s": args.reflection_s,
            "tasks": args.tasks,
            "settings": SETTINGS,
            "quick": args.quick,
        },
        "rows": rows,
    }
    publish(args.out, results, markdown(results))
    print(f"results in {args.out}")
    return results


if __name__ == "__main__":
    main()
