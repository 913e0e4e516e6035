"""Benchmark 3: gepa_graph's own cost per rollout, and MLflow tracking's share of a run.

With an instant scripted model (the agent of agent.py at latency 0), everything measured is
framework cost. Sequential (concurrency 1) on the same examples:

* ``bare invoke``: ``graph.invoke`` on each example: LangGraph alone;
* ``bare ainvoke``: ``await graph.ainvoke``: what gepa_graph builds on;
* ``hooked invoke``: ``graph.invoke`` once the model-boundary hook is installed, outside any
  rollout (what every other model call of a process pays once gepa_graph is imported);
* ``with_prompts invoke``: ``invoke`` on ``with_prompts(graph, candidate)``, the production
  path (the model-boundary rewrite of a changed prompt, no tracing);
* ``gepa_graph rollout``: ``LangGraphSystem.arun`` with a non-seed candidate: the rewrite at
  the model boundary + tracing attributed by prompt;
* ``interception layer on / off``: the same rollouts with the interception layer installed and
  with every patch put back (``intercept.disabled()``), in interleaved trials; the ratio is the
  layer's per-rollout cost (off, the model gets the seed and the audit says so: the leak is
  caught and the rollout counted, so both sides do the same work);
* ``gepa_graph optimize``: a whole ``gg.optimize`` run (concurrency 1), wall / rollouts: the
  above plus metric, ledger, journal, checkpoints, reflection, events;
* ``gepa optimize``: gepa 0.1.4 with its LangChainAdapter (1 thread), wall / metric calls;
* ``gepa_graph optimize + MLflow``: the same run with ``MLflowTracker`` writing to a SQLite
  store in a temp dir (MLflow import excluded, run set-up, logging and the final flush
  included; plots on and off).

Overhead = (cost per rollout − bare invoke) / bare invoke. Because a real rollout calls an LLM
that takes 0.3-3 s, the overhead also shows as a share of a rollout with one model call of
0.5 s (target ≤ 5 %).

    python -m benchmarks.overhead                # ~1 min
    python -m benchmarks.overhead --quick        # seconds, for the tests
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from benchmarks import agent
from benchmarks._common import (
    RESULTS,
    command,
    machine,
    publish,
    table,
)

REFERENCE_LLM_SECONDS = 0.5


class _Quiet:
    def log(self, message: str) -> None:
        pass


def _inputs(task: Any) -> list[dict[str, Any]]:
    return [{"messages": [HumanMessage(content=ex["question"])]} for ex in task.train + task.val]


def time_bare_invoke(graph: Any, inputs: list[Any], repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        for item in inputs:
            graph.invoke(item)
    return (time.perf_counter() - started) / (repeats * len(inputs))


def time_bare_ainvoke(graph: Any, inputs: list[Any], repeats: int) -> float:
    async def go() -> float:
        started = time.perf_counter()
        for _ in range(repeats):
            for item in inputs:
                await graph.ainvoke(item)
        return time.perf_counter() - started

    return asyncio.run(go()) / (repeats * len(inputs))


def _candidate(system: Any) -> dict[str, str]:
    return {agent.MODULE: system.modules()[agent.MODULE] + "\nrule-0. Apply procedure 0."}


def time_hooked_invoke(graph: Any, inputs: list[Any], repeats: int) -> float:
    from gepa_graph.integrations.langgraph import intercept

    intercept.install()
    return time_bare_invoke(graph, inputs, repeats)


def time_with_prompts_invoke(graph: Any, inputs: list[Any], repeats: int) -> float:
    from gepa_graph.integrations.langgraph import LangGraphSystem, with_prompts

    copy = with_prompts(graph, _candidate(LangGraphSystem(graph)))
    return time_bare_invoke(copy, inputs, repeats)


def time_system_rollout(graph: Any, task: Any, repeats: int) -> float:
    from gepa_graph.integrations.langgraph import LangGraphSystem

    system = LangGraphSystem(graph)
    candidate = _candidate(system)
    examples = task.train + task.val

    async def go() -> float:
        await system.arun(candidate, examples[0])  # the candidate's patterns are compiled once
        started = time.perf_counter()
        for _ in range(repeats):
            for example in examples:
                await system.arun(candidate, example)
        return time.perf_counter() - started

    return asyncio.run(go()) / (repeats * len(examples))


def time_interception(graph: Any, task: Any, repeats: int, trials: int) -> dict[str, float]:
    """ms per ``LangGraphSystem.arun`` with the interception layer on and off (medians of
    interleaved trials), and their ratio."""
    from gepa_graph.errors import SubstitutionLeak
    from gepa_graph.integrations.langgraph import LangGraphSystem, intercept

    system = LangGraphSystem(graph)
    candidate = _candidate(system)
    examples = task.train + task.val

    async def rollouts() -> float:
        started = time.perf_counter()
        for _ in range(repeats):
            for example in examples:
                try:
                    await system.arun(candidate, example)
                except SubstitutionLeak:  # off: the seed reached the model, as expected
                    pass
        return (time.perf_counter() - started) / (repeats * len(examples)) * 1000

    asyncio.run(rollouts())  # warm: the candidate's patterns are compiled once
    on, off = [], []
    for _ in range(trials):
        on.append(asyncio.run(rollouts()))
        with intercept.disabled():
            off.append(asyncio.run(rollouts()))
    on_ms, off_ms = statistics.median(on), statistics.median(off)
    return {"on_ms": on_ms, "off_ms": off_ms, "ratio": on_ms / off_ms}


def time_optimize(task: Any, budget: int, tracking: Any = None) -> dict[str, Any]:
    import gepa_graph as gg

    graph = agent.build_agent(task.seed_prompts()[agent.MODULE], 0.0)
    config = gg.OptimizeConfig(max_rollouts=budget, concurrency=1, seed=0)
    with tempfile.TemporaryDirectory(prefix="gg-overhead-") as tmp:
        started = time.perf_counter()
        result = gg.optimize(
            graph,
            task.train,
            task.val,
            metric=agent.gg_metric(task),
            reflection_lm=task.reflection_lm(0),
            config=config,
            run_dir=Path(tmp) / "run",
            progress=False,
            tracking=tracking(tmp) if tracking else None,
        )
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rollouts": result.rollouts_used,
        "per_rollout": seconds / result.rollouts_used,
    }


def time_gepa(task: Any, budget: int) -> dict[str, Any]:
    import logging

    import gepa

    logging.getLogger("gepa.adapters.langchain_adapter.langchain_adapter").setLevel(logging.ERROR)
    agent.cached_agent.cache_clear()
    started = time.perf_counter()
    result = gepa.optimize(
        seed_candidate=task.seed_prompts(),
        trainset=task.train,
        valset=task.val,
        adapter=agent.gepa_adapter(task, 0.0, 1),
        reflection_lm=task.reflection_lm(0),
        max_metric_calls=budget,
        reflection_minibatch_size=3,
        use_merge=True,
        seed=0,
        logger=_Quiet(),
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rollouts": result.total_metric_calls,
        "per_rollout": seconds / result.total_metric_calls,
    }


def mlflow_tracker(plots: bool):
    def make(tmp: str) -> Any:
        from gepa_graph.tracking import MLflowTracker

        return MLflowTracker(
            experiment="overhead-bench", tracking_uri=f"sqlite:///{tmp}/mlflow.db", plots=plots
        )

    return make


def markdown(results: dict[str, Any]) -> str:
    p, m = results["params"], results["measurements"]
    bare = m["bare_invoke_ms"]
    rows = []

    def row(name: str, ms: float, note: str = "") -> None:
        over = (ms - bare) / bare
        share = (ms - bare) / 1000 / REFERENCE_LLM_SECONDS
        rows.append([name, f"{ms:.2f}", f"{over * 100:+.0f} %", f"{share * 100:.1f} %", note])

    rows.append(["bare `graph.invoke`", f"{bare:.2f}", "—", "—", "LangGraph alone"])
    row("bare `graph.ainvoke`", m["bare_ainvoke_ms"])
    if "hooked_invoke_ms" in m:
        row(
            "`graph.invoke`, boundary hook installed",
            m["hooked_invoke_ms"],
            "outside rollouts: one config lookup per model call",
        )
        row(
            "`with_prompts(graph, ...).invoke`",
            m["with_prompts_invoke_ms"],
            "production: the prompt rewritten at the model",
        )
    row(
        "gepa_graph rollout (`LangGraphSystem.arun`)",
        m["system_rollout_ms"],
        "rewrite at the model boundary + tracing by prompt",
    )
    if "interception" in m:
        layer = m["interception"]
        for key, state in (("on_ms", "on"), ("off_ms", "off (patches put back)")):
            row(
                f"rollout, interception layer {state}",
                layer[key],
                f"on/off = {layer['ratio']:.3f}" if key == "on_ms" else "interleaved trials",
            )
    row(
        "gepa_graph `optimize`, per rollout",
        m["optimize"]["per_rollout"] * 1000,
        f"{m['optimize']['rollouts']} rollouts in {m['optimize']['seconds']:.2f} s",
    )
    row(
        "gepa 0.1.4 `optimize`, per rollout",
        m["gepa"]["per_rollout"] * 1000,
        f"{m['gepa']['rollouts']} rollouts in {m['gepa']['seconds']:.2f} s",
    )
    for key, label in (
        ("optimize_mlflow", "gepa_graph + MLflow (plots)"),
        ("optimize_mlflow_noplots", "gepa_graph + MLflow (no plots)"),
    ):
        if key in m:
            row(
                label + ", per rollout",
                m[key]["per_rollout"] * 1000,
                f"{m[key]['seconds']:.2f} s: MLflow adds {m[key]['seconds'] - m['optimize']['seconds']:.2f} s "
                f"= {m[key]['mlflow_share'] * 100:.0f} % of this run (incl. creating the SQLite store)",
            )
    lines = [
        (
            f"Instant scripted model, concurrency 1, {p['examples']} distinct inputs × {p['repeats']} "
            f"repeats for the per-call rows; optimize runs with a budget of {p['budget']} rollouts. "
            f"Times are medians of {p['trials']} trials. Last column: the overhead as a share of a "
            f"rollout with one {REFERENCE_LLM_SECONDS} s LLM call (target ≤ 5 %)."
        ),
        "",
        table(
            [
                "what",
                "ms / rollout",
                "vs bare invoke",
                f"share of a {REFERENCE_LLM_SECONDS} s call",
                "note",
            ],
            rows,
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny run (seconds) for the tests")
    parser.add_argument("--out", default=str(RESULTS / "overhead.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.budget, args.trials, args.no_mlflow = 1, 60, 1, True
    task = agent.make_task(0)
    graph = agent.build_agent(task.seed_prompts()[agent.MODULE], 0.0)
    inputs = _inputs(task)
    time_bare_invoke(graph, inputs[:5], 1)  # warm up imports and caches

    def med(fn, *a) -> Any:
        values = [fn(*a) for _ in range(args.trials)]
        if isinstance(values[0], dict):
            values.sort(key=lambda v: v["seconds"])
            return values[len(values) // 2]
        return statistics.median(values)

    m: dict[str, Any] = {
        "bare_invoke_ms": med(time_bare_invoke, graph, inputs, args.repeats) * 1000,
        "bare_ainvoke_ms": med(time_bare_ainvoke, graph, inputs, args.repeats) * 1000,
        # after the bare rows: installing the hook is once per process
        "hooked_invoke_ms": med(time_hooked_invoke, graph, inputs, args.repeats) * 1000,
        "with_prompts_invoke_ms": med(time_with_prompts_invoke, graph, inputs, args.repeats) * 1000,
        "system_rollout_ms": med(time_system_rollout, graph, task, args.repeats) * 1000,
        "interception": time_interception(graph, task, args.repeats, max(args.trials, 3)),
        "optimize": med(time_optimize, task, args.budget),
        "gepa": med(time_gepa, task, args.budget),
    }
    if not args.no_mlflow:
        import mlflow  # noqa: F401  (import time is a one-off, not a per-run cost)

        for key, plots in (("optimize_mlflow", True), ("optimize_mlflow_noplots", False)):
            run = med(time_optimize, task, args.budget, mlflow_tracker(plots))
            run["mlflow_share"] = (run["seconds"] - m["optimize"]["seconds"]) / run["seconds"]
            m[key] = run
    results = {
        "benchmark": "overhead",
        "command": command("overhead", argv),
        "machine": machine(),
        "params": {
            "repeats": args.repeats,
            "budget": args.budget,
            "trials": args.trials,
            "examples": len(inputs),
            "quick": args.quick,
        },
        "measurements": m,
    }
    publish(args.out, results, markdown(results))
    layer = m["interception"]
    print(
        f"interception layer per rollout: on {layer['on_ms']:.2f} ms, off {layer['off_ms']:.2f} "
        f"ms, ratio {layer['ratio']:.3f}"
    )
    print(f"results in {args.out}")
    return results


if __name__ == "__main__":
    main()
