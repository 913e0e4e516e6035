"""Benchmark 6: rollouts on a Ray cluster against rollouts in one process.

Every rollout burns a fixed amount of CPU time in pure Python (a busy loop, ``--burn`` seconds
of its thread's CPU time) and answers a rule-learning task (``gepa_graph.testing.rules``), so
the search is real but the model costs nothing. The same optimization (budget, concurrency,
seed) runs twice: with the local executor, where the rollouts share one process and its GIL
(ideal wall = rollouts x burn), and with ``RayExecutor`` on a cluster of ``--workers`` CPUs
(ideal = rollouts x burn / workers). It reports both wall times, their ratio, the distinct
worker processes that ran rollouts, and whether both runs found the same prompts.

    python -m benchmarks.ray_cluster                 # local 2-CPU cluster, 60 rollouts x 0.2 s
    python -m benchmarks.ray_cluster --quick         # seconds, for the tests
    python -m benchmarks.ray_cluster --address HEAD_IP:6379 --workers 16 --concurrency 16

Without ``--address`` it starts a cluster on 127.0.0.1 (``ray start --head``, no dashboard) and
stops it by its process ids at the end; cluster start-up is reported, not counted in the wall
time. With ``--address`` it connects to a running (multi-machine) cluster, whose nodes need
gepa-graph[ray] installed; the benchmark's own functions travel by value.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, command, fmt, machine, publish, table

ROOT = Path(__file__).resolve().parents[1]


def burn(seconds: float) -> int:
    """Spin for ``seconds`` of this thread's CPU time; the loop count."""
    end = time.thread_time() + seconds
    count = 0
    while time.thread_time() < end:
        count += 1
    return count


def make_system(burn_s: float) -> Any:
    from gepa_graph.system import FunctionSystem
    from gepa_graph.testing.rules import RuleTask

    task = RuleTask(n_types=6)

    def rollout(prompts, example, trace):
        burn(burn_s)
        return {"answer": task.answer(prompts, example, trace), "pid": os.getpid()}

    return task, FunctionSystem(task.seed_prompts(), rollout)


def run(executor: Any, burn_s: float, budget: int, concurrency: int, seed: int) -> dict[str, Any]:
    import gepa_graph as gg
    from gepa_graph.journal import Journal

    task, system = make_system(burn_s)
    examples = task.examples(16, seed=seed)
    config = gg.OptimizeConfig(
        max_rollouts=budget, concurrency=concurrency, seed=seed, minibatch_size=3
    )
    with tempfile.TemporaryDirectory(prefix="gg-ray-bench-") as tmp:
        started = time.perf_counter()
        result = gg.optimize(
            system,
            examples[:8],
            examples[8:],
            metric=lambda ex, out: task.metric(ex, out["answer"]),
            reflection_lm=task.reflection_lm(),
            config=config,
            run_dir=Path(tmp) / "run",
            progress=False,
            executor=executor,
        )
        seconds = time.perf_counter() - started
        rollouts, _ = Journal(Path(tmp) / "run" / "journal.jsonl").load()
    pids = sorted({entry["output"]["pid"] for entry in rollouts.values() if entry["output"]})
    return {
        "seconds": seconds,
        "rollouts": result.rollouts_used,
        "best_val": result.best_score,
        "best_candidate": result.best_candidate,
        "pids": pids,
        "driver_pid_ran_rollouts": os.getpid() in pids,
        "failed_rollouts": result.ledger.failed_rollouts,
        "ideal_seconds": result.rollouts_used * burn_s / max(1, len(pids)),
    }


def markdown(results: dict[str, Any]) -> str:
    p = results["params"]
    local, remote = results["local"], results["ray"]
    start = results["cluster_start_seconds"]
    started = f"{start:.1f} s to start, not counted" if start is not None else "already running"
    lines = [
        (
            f"Rollouts burn {p['burn']} s of CPU each (pure Python); budget {p['budget']} rollouts, "
            f"concurrency {p['concurrency']}, seed {p['seed']}. Local: one process. Ray: "
            f"{p['cluster']} ({started}). Load average (1 min) at the start: "
            f"{fmt(p['load_average'], 2)}. Ideal = rollouts x burn / processes."
        ),
        "",
        table(
            ["executor", "wall", "ideal", "rollouts", "processes that ran rollouts", "best val"],
            [
                [
                    "local",
                    fmt(local["seconds"], 2, " s"),
                    fmt(local["ideal_seconds"], 2, " s"),
                    local["rollouts"],
                    f"{len(local['pids'])} (the driver)",
                    fmt(local["best_val"], 3),
                ],
                [
                    "ray",
                    fmt(remote["seconds"], 2, " s"),
                    fmt(remote["ideal_seconds"], 2, " s"),
                    remote["rollouts"],
                    f"{len(remote['pids'])} workers, pids {remote['pids']}",
                    fmt(remote["best_val"], 3),
                ],
            ],
        ),
        "",
        (
            f"Local wall / Ray wall: **{fmt(results['speedup'], 2, 'x')}**; same best prompts: "
            f"{results['same_best']}."
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burn", type=float, default=0.2, help="CPU seconds per rollout")
    parser.add_argument("--budget", type=int, default=60, help="rollouts")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local cluster")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--address", default=None, help="a running cluster (HEAD_IP:6379) instead of a local one"
    )
    parser.add_argument("--quick", action="store_true", help="tiny run (seconds) for the tests")
    parser.add_argument("--out", default=str(RESULTS / "ray_cluster.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.burn, args.budget = 0.02, 24

    import ray
    from ray import cloudpickle

    from gepa_graph.integrations.ray import LocalCluster, RayExecutor

    # The rollout function travels by value: cluster nodes need gepa-graph, not this folder.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    load = os.getloadavg()[0]
    cluster, start_seconds, connected_here = None, None, False
    try:
        if args.address is None:
            started = time.perf_counter()
            cluster = LocalCluster(num_cpus=args.workers, pythonpath=[ROOT]).start()
            address = cluster.address
            where = f"a local cluster of {args.workers} worker CPUs on 127.0.0.1"
        else:
            address, where = args.address, f"the cluster at {args.address}"
        if not ray.is_initialized():
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
            connected_here = True
        if cluster is not None:
            start_seconds = time.perf_counter() - started
        print(f"local executor: {args.budget} rollouts x {args.burn} s ...", flush=True)
        local = run("local", args.burn, args.budget, args.concurrency, args.seed)
        print(f"ray executor on {where} ...", flush=True)
        remote = run(
            RayExecutor(address=address), args.burn, args.budget, args.concurrency, args.seed
        )
    finally:
        if connected_here:
            ray.shutdown()
        if cluster is not None:
            cluster.stop()
    results = {
        "benchmark": "ray_cluster",
        "command": command("ray_cluster", argv),
        "machine": machine(),
        "params": {
            "burn": args.burn,
            "budget": args.budget,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "seed": args.seed,
            "cluster": where,
            "load_average": load,
            "quick": args.quick,
        },
        "cluster_start_seconds": start_seconds,
        "local": local,
        "ray": remote,
        "speedup": local["seconds"] / remote["seconds"],
        "same_best": local["best_candidate"] == remote["best_candidate"],
    }
    publish(args.out, results, markdown(results))
    print(f"results in {args.out}")
    return results


if __name__ == "__main__":
    main()
