"""Benchmark 7: what proposals in flight cost in search efficiency when rollouts take time.

The search-efficiency benchmark (1) runs instant rollouts, where the engine goes one proposal at
a time; the wall-clock benchmark (2) runs one seed. This one runs the rule family (rule_family.py)
with every rollout taking L seconds and every reflection R seconds on a virtual clock
(``gepa_graph.testing.clock``): runs take no real time, and the wall time it reports is the
virtual time the run would have taken. Per task, concurrency C and engine setting it reports,
over seeds, the best validation and held-out test score at an equal budget of rollouts, the
wall time and the slot use (busy slot-seconds over C x wall time).

    python -m benchmarks.concurrency_quality --jobs 2     # 20 seeds, C=16 and 64, L=1 s, R=2 s
    python -m benchmarks.concurrency_quality --quick      # seconds, for the tests
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, command, fmt_mean_sd, machine, mean_sd, publish, table
from benchmarks.rule_family import FAMILY, RuleTask

# Engine settings compared: proposals in flight at most (the default: concurrency /
# (2 x minibatch_size), 3 at C=16; 1: the sequential GEPA loop; 6 = concurrency / minibatch_size
# at C=16, every slot able to run a minibatch; catch_up: a proposal whose pool changed while it
# ran is rebased onto, or screened against, a better newer sibling; cancel_stale off: proposals
# whose parent was superseded while they ran go on to the end, as before issue 22).
SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "sequential": {"parallel_proposals": 1},
    "in flight <= 6": {"parallel_proposals": 6},
    "catch_up": {"catch_up": True},
    "cancel_stale off": {"cancel_stale": False},
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

    rollouts_run = 0

    async def answer(prompts: Any, example: Any, trace: Any) -> Any:
        nonlocal rollouts_run
        rollouts_run += 1
        await asyncio.sleep(latency)
        return task.student(prompts, example, trace)

    async def metric(example: Any, prediction: Any, trace: Any = None) -> Any:
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
    # Every rollout holds its slot exactly `latency` virtual seconds (the metric is instant), so
    # the busy slot-seconds are counted here: the engine's BudgetUpdated.slot_utilization
    # measures the evaluator's slots on the real monotonic clock, which a virtual run never moves.
    return {
        "val": result.best_score,
        "test": task.mean_score(result.best_candidate, task.test),
        "seconds": seconds,
        "rollouts": result.rollouts_used,
        "slot_use": rollouts_run * latency / (concurrency * seconds) if seconds > 0 else 0.0,
    }


def _run_job(job: tuple[str, int, int, str, dict[str, Any]]) -> dict[str, Any]:
    """One run of (task, seed, concurrency, setting, params), in a worker process or here."""
    task, seed, concurrency, setting, p = job
    return run_one(
        RuleTask(FAMILY[task], data_seed=seed),
        seed,
        p["budget"],
        concurrency,
        p["latency"],
        p["reflection_s"],
        SETTINGS[setting],
    )


def mean(values: Iterable[float]) -> float:
    """The mean of ``values`` (at least one)."""
    return mean_sd(values)[0]


def markdown(results: dict[str, Any]) -> str:
    p = results["params"]
    concurrencies = p["concurrency"] if isinstance(p["concurrency"], list) else [p["concurrency"]]
    lines = [
        (
            f"Rule family, {p['seeds']} seeds, budget {p['budget']} rollouts, concurrency "
            f"{' and '.join(str(c) for c in concurrencies)}, every rollout {p['latency']} s and "
            f"every reflection {p['reflection_s']} s on a virtual clock. val / test: "
            f"best-on-validation candidate's scores (mean ± sd over seeds); val vs sequential: "
            f"this setting's mean val minus the sequential loop's at the same C; wall: virtual "
            f"seconds (mean); speed-up: the sequential loop's wall over this setting's; slot use: "
            f"busy slot-seconds / (C × wall), mean over seeds."
        ),
        "",
    ]
    rows = []
    for task, by_c in results["rows"].items():
        for c, settings in _by_concurrency(by_c, concurrencies).items():
            seq_val = mean(r["val"] for r in settings["sequential"])
            seq_wall = mean(r["seconds"] for r in settings["sequential"])
            for name, runs in settings.items():
                wall = mean(r["seconds"] for r in runs)
                slot_use = [r["slot_use"] for r in runs if "slot_use" in r]
                rows.append(
                    [
                        task,
                        c,
                        name,
                        fmt_mean_sd(r["val"] for r in runs),
                        f"{mean(r['val'] for r in runs) - seq_val:+.3f}",
                        fmt_mean_sd(r["test"] for r in runs),
                        f"{wall:.1f} s",
                        f"{seq_wall / wall:.2f}x",
                        f"{mean(slot_use):.2f}" if slot_use else "-",
                        f"{mean(r['rollouts'] for r in runs):.0f}",
                    ]
                )
    header = ["task", "C", "engine", "val", "val vs sequential", "test", "wall", "speed-up"]
    lines.append(table([*header, "slot use", "rollouts"], rows))
    return "\n".join(lines)


def _by_concurrency(by_c: dict[str, Any], concurrencies: list[int]) -> dict[str, Any]:
    """Rows keyed by concurrency; a result saved before the concurrency list had one C."""
    if "sequential" in by_c:
        return {str(concurrencies[0]): by_c}
    return by_c


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=600)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per rollout")
    parser.add_argument("--reflection-s", type=float, default=2.0, help="seconds per reflection")
    parser.add_argument(
        "--tasks",
        nargs="*",
        default=["single", "two-module", "three-module-noisy"],
        choices=list(FAMILY),
    )
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    parser.add_argument("--quick", action="store_true", help="tiny run (seconds) for the tests")
    parser.add_argument("--out", default=str(RESULTS / "concurrency_quality.json"))
    args = parser.parse_args(argv)
    if args.quick:
        # C=64 at this budget is where a wait below the clock's resolution once livelocked
        # the runner on the virtual clock: the quick run keeps it covered.
        args.seeds, args.budget, args.tasks, args.concurrency = 2, 120, ["two-module"], [16, 64]
    if "sequential" not in args.settings:
        parser.error("--settings must include sequential (the reference of every row)")
    params = {
        "seeds": args.seeds,
        "budget": args.budget,
        "concurrency": args.concurrency,
        "latency": args.latency,
        "reflection_s": args.reflection_s,
        "tasks": args.tasks,
        "settings": {name: SETTINGS[name] for name in args.settings},
        "quick": args.quick,
    }
    jobs = [
        (task, seed, c, setting, params)
        for task in args.tasks
        for c in args.concurrency
        for setting in args.settings
        for seed in range(args.seeds)
    ]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(_run_job, jobs, chunksize=4))
    else:
        runs = [_run_job(job) for job in jobs]
    rows: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for (task, _, c, setting, _), run in zip(jobs, runs, strict=True):
        rows.setdefault(task, {}).setdefault(str(c), {}).setdefault(setting, []).append(run)
    results = {
        "benchmark": "concurrency_quality",
        "command": command("concurrency_quality", argv),
        "machine": machine(),
        "params": params,
        "rows": rows,
    }
    publish(args.out, results, markdown(results))
    print(f"results in {args.out}")
    return results


if __name__ == "__main__":
    main()
