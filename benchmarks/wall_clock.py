"""Benchmark 2: wall clock on a LangGraph agent whose model sleeps L seconds per call.

With a budget of N rollouts at concurrency C, no optimizer can beat N·L/C (the *ideal*). For
each C this reports each optimizer's wall time, its efficiency (ideal / wall, using the
rollouts it actually ran), and gepa's wall time over gepa_graph's. gepa 0.1.4 runs its own
``LangChainAdapter`` (threads = C) over the same graph, metric, feedback and reflection LM;
gepa_graph runs the compiled graph with ``ainvoke`` at ``OptimizeConfig(concurrency=C)``.

    python -m benchmarks.wall_clock                      # L=0.1 s, N=300, C in 1 4 16 (~3 min)
    python -m benchmarks.wall_clock --latency 0.5 --concurrency 16 64 \
        --out benchmarks/results/wall_clock_L0.5.json    # the issue's setting (~3 min)
    python -m benchmarks.wall_clock --quick              # seconds, for the tests
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import agent
from benchmarks._common import (
    RESULTS,
    command,
    fmt,
    machine,
    publish,
    table,
)


class _Quiet:
    def log(self, message: str) -> None:
        pass


def run_gepa_graph(
    task: Any, budget: int, latency: float, concurrency: int, seed: int, options: dict[str, Any]
) -> dict[str, Any]:
    import gepa_graph as gg

    graph = agent.build_agent(task.seed_prompts()[agent.MODULE], latency)
    config = gg.OptimizeConfig(max_rollouts=budget, concurrency=concurrency, seed=seed, **options)
    with tempfile.TemporaryDirectory(prefix="gg-wall-") as tmp:
        started = time.perf_counter()
        result = gg.optimize(
            graph,
            task.train,
            task.val,
            metric=agent.gg_metric(task),
            reflection_lm=task.reflection_lm(seed),
            config=config,
            run_dir=Path(tmp) / "run",
            progress=False,
        )
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rollouts": result.rollouts_used,
        "best_val": result.best_score,
        "stop_reason": result.stop_reason,
        "iterations": result.iterations,
        "config": config.model_dump(mode="json", exclude_defaults=True),
    }


def run_gepa(task: Any, budget: int, latency: float, concurrency: int, seed: int) -> dict[str, Any]:
    import gepa

    logging.getLogger("gepa.adapters.langchain_adapter.langchain_adapter").setLevel(logging.ERROR)
    agent.cached_agent.cache_clear()
    started = time.perf_counter()
    result = gepa.optimize(
        seed_candidate=task.seed_prompts(),
        trainset=task.train,
        valset=task.val,
        adapter=agent.gepa_adapter(task, latency, concurrency),
        reflection_lm=task.reflection_lm(seed),
        max_metric_calls=budget,
        reflection_minibatch_size=3,
        use_merge=True,
        seed=seed,
        logger=_Quiet(),
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rollouts": result.total_metric_calls,
        "best_val": result.val_aggregate_scores[result.best_idx],
        "iterations": len(result.candidates),
    }


def markdown(results: dict[str, Any]) -> str:
    p = results["params"]
    lines = [
        (
            f"Agent: `create_agent` with a scripted model sleeping L = {p['latency']} s per call "
            f"(one call per rollout); budget N = {p['budget']} rollouts; {p['n_val']} validation "
            f"examples; minibatch 3; merge on; seed {p['seed']}. Ideal = rollouts run × L / C. "
            f"Efficiency = ideal / wall (target ≥ 0.8 at C=16); speed-up = gepa wall / gepa_graph "
            f"wall (target ≥ 3 at C=16)."
        ),
        "",
    ]
    if p.get("gg_options"):
        lines += [f"gepa_graph options: `{p['gg_options']}`", ""]
    rows = []
    for r in results["rows"]:
        g, ref = r["gepa_graph"], r["gepa"]
        rows.append(
            [
                r["concurrency"],
                r.get("optimizer", "gepa_graph"),
                f"{g['seconds']:.2f} s ({g['rollouts']} rollouts)",
                fmt(g["efficiency"], 2),
                f"{ref['seconds']:.2f} s ({ref['rollouts']} rollouts)",
                fmt(ref["efficiency"], 2),
                fmt(r["speedup"], 2, "x"),
                fmt(r["speedup_per_rollout"], 2, "x"),
                f"{g['best_val']:.3f} / {ref['best_val']:.3f}",
            ]
        )
    lines.append(
        table(
            [
                "C",
                "optimizer",
                "wall",
                "efficiency",
                "gepa wall",
                "gepa efficiency",
                "speed-up",
                "speed-up per rollout",
                "best val (vs gepa)",
            ],
            rows,
        )
    )
    return "\n".join(lines)


def parse_options(items: list[str]) -> dict[str, Any]:
    import json

    options = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per model call")
    parser.add_argument("--budget", type=int, default=300, help="rollouts")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 4, 16])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--gg-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra gg.OptimizeConfig field for gepa_graph (JSON value)",
    )
    parser.add_argument(
        "--no-sequential",
        dest="sequential",
        action="store_false",
        help="skip the gepa_graph row with one proposal at a time "
        "(parallel_proposals=1, the engine before the steady state)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny run (seconds) for the tests")
    parser.add_argument("--out", default=str(RESULTS / "wall_clock.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.latency, args.budget, args.concurrency = 0.01, 80, [6]
    options = parse_options(args.gg_option)
    task = agent.make_task(args.seed)
    rows = []
    for c in args.concurrency:
        ref = run_gepa(task, args.budget, args.latency, c, args.seed)
        variants = [("gepa_graph", options)]
        if args.sequential and c > 1 and "parallel_proposals" not in options:
            variants.append(("gepa_graph sequential", {**options, "parallel_proposals": 1}))
        for name, opts in variants:
            g = run_gepa_graph(task, args.budget, args.latency, c, args.seed, opts)
            row = {"concurrency": c, "optimizer": name, "gepa_graph": g, "gepa": ref}
            for r in (g, ref):
                r["ideal_seconds"] = r["rollouts"] * args.latency / c
                r["efficiency"] = r["ideal_seconds"] / r["seconds"]
            row["speedup"] = ref["seconds"] / g["seconds"]
            row["speedup_per_rollout"] = (ref["seconds"] / ref["rollouts"]) / (
                g["seconds"] / g["rollouts"]
            )
            rows.append(row)
            print(
                f"C={c} {name}: {g['seconds']:.2f} s / {g['rollouts']} rollouts; "
                f"gepa {ref['seconds']:.2f} s / {ref['rollouts']} rollouts",
                flush=True,
            )
    results = {
        "benchmark": "wall_clock",
        "command": command("wall_clock", argv),
        "machine": machine(),
        "params": {
            "latency": args.latency,
            "budget": args.budget,
            "seed": args.seed,
            "concurrency": args.concurrency,
            "n_val": len(task.val),
            "gg_options": options,
            "quick": args.quick,
        },
        "rows": rows,
    }
    publish(args.out, results, markdown(results))
    print(f"results in {args.out}")
    return results


if __name__ == "__main__":
    main()
