"""Benchmark 4: both optimizers on a real model, the embedded local Qwen2.5-Coder-1.5B
(``gepa_graph.local``, ``pip install ".[local]"``) as task model *and* reflection LM.

The task is small on purpose (the model generates about 10 tokens/s on 2 cores): a one-node
LangGraph sentiment classifier whose seed prompt does not say what to answer; the metric wants
exactly one lowercase word (positive / negative / neutral) and its feedback says what was
expected and why the answer failed. gepa_graph optimizes the compiled graph with the model
string as reflection LM; gepa 0.1.4 runs its LangChainAdapter over the same graph with the same
reflection model string (through its own LiteLLM wrapper). Same budget, minibatch and seed.

Without the local extra (the llama.cpp runtime + the model parts) it prints why and exits 0.
Expected run time with the defaults (budget 30 rollouts each, 6 train / 6 validation / 12 test
examples): roughly 10-20 minutes on a 2-core CPU, dominated by the reflection replies
(up to 512 tokens each); see benchmarks/README.md.

With ``--seeds N`` it repeats the whole comparison for seeds ``--seed`` .. ``--seed + N - 1``
(each seed its own train/validation/test split and optimizer seed) and reports, per optimizer,
the seed prompt's and the best candidate's validation and held-out test scores as mean ± sd
over the seeds.

    python -m benchmarks.real_model
    python -m benchmarks.real_model --seeds 3
    python -m benchmarks.real_model --budget 60 --optimizers gepa_graph
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

from benchmarks._common import (
    RESULTS,
    command,
    machine,
    mean_sd,
    publish,
    table,
)

LABELS = ("positive", "negative", "neutral")
DATA = [
    ("The battery lasts two full days and charging is quick.", "positive"),
    ("It broke after a week and support never answered.", "negative"),
    ("The parcel arrived on Tuesday.", "neutral"),
    ("Absolutely love the colour, it fits perfectly!", "positive"),
    ("Too loud, too slow, and the manual is useless.", "negative"),
    ("The box contains a charger and a cable.", "neutral"),
    ("Best purchase I made this year.", "positive"),
    ("I want my money back.", "negative"),
    ("It is available in blue and grey.", "neutral"),
    ("Setup took two minutes and it just works.", "positive"),
    ("The screen cracked on the first drop.", "negative"),
    ("The store opens at nine.", "neutral"),
    ("Great value, my kids use it every day.", "positive"),
    ("Stopped working after the update, very disappointing.", "negative"),
    ("The item weighs 300 grams.", "neutral"),
    ("Friendly staff and fast delivery.", "positive"),
    ("The strap smells of plastic and gave me a rash.", "negative"),
    ("Orders placed after 5 pm ship the next day.", "neutral"),
    ("Sound quality blew me away.", "positive"),
    ("Arrived late and the wrong size.", "negative"),
    ("The warranty covers one year.", "neutral"),
    ("Comfortable enough to wear all day.", "positive"),
    ("Customer service hung up on me twice.", "negative"),
    ("The manual is printed in four languages.", "neutral"),
]
SEED_PROMPT = "Read the customer's text and tell me about it."


def unavailable_reason() -> str | None:
    """None when the local model can run here, else why not."""
    from gepa_graph import local

    problem = local.runtime_problem()
    if problem:
        return problem
    if importlib.util.find_spec("langchain_litellm") is None:
        return 'langchain-litellm is not installed: pip install ".[local]"'
    try:
        local.model_path(progress=None)
    except local.LocalModelError as exc:
        return str(exc)
    return None


class State(TypedDict, total=False):
    text: str
    answer: str


def build_graph(prompt: str, max_tokens: int) -> Any:
    from langchain_core.prompts import ChatPromptTemplate
    from langgraph.graph import START, StateGraph

    from gepa_graph import local

    model = local.chat_model(max_tokens=max_tokens)
    template = ChatPromptTemplate.from_messages([("system", prompt), ("human", "{text}")])
    chain = template | model

    def classify(state: State) -> dict[str, str]:
        return {"answer": chain.invoke({"text": state["text"]}).text}

    builder = StateGraph(State)
    builder.add_node("classify", classify)
    builder.add_edge(START, "classify")
    return builder.compile()


def score(example: dict[str, Any], answer: str) -> tuple[float, str]:
    said = (answer or "").strip()
    if said == example["label"]:
        return 1.0, "correct"
    return 0.0, (
        f"wrong: the expected answer is exactly '{example['label']}' (one lowercase word "
        f"out of {', '.join(LABELS)}, nothing else); the answer was {said[:120]!r}"
    )


Rows = list[dict[str, Any]]


def split(seed: int, n_train: int, n_val: int, n_test: int) -> tuple[Rows, Rows, Rows]:
    import random

    rows = [{"id": f"s{i}", "text": t, "label": y} for i, (t, y) in enumerate(DATA)]
    random.Random(seed).shuffle(rows)
    return (
        rows[:n_train],
        rows[n_train : n_train + n_val],
        rows[n_train + n_val : n_train + n_val + n_test],
    )


def test_score(prompt: str, test: list[dict[str, Any]], max_tokens: int) -> float:
    graph = build_graph(prompt, max_tokens)
    return sum(score(ex, graph.invoke({"text": ex["text"]})["answer"])[0] for ex in test) / len(
        test
    )


def run_gepa_graph(args: Any, train: Rows, val: Rows) -> dict[str, Any]:
    import gepa_graph as gg
    from gepa_graph import local

    def metric(example: Any, prediction: Any) -> gg.Score:
        value, feedback = score(example, prediction.get("answer", ""))
        return gg.Score(value=value, feedback=feedback)

    config = gg.OptimizeConfig(
        max_rollouts=args.budget,
        minibatch_size=3,
        concurrency=2,
        seed=args.seed,
        reflection_max_tokens=512,
    )
    with tempfile.TemporaryDirectory(prefix="gg-real-") as tmp:
        started = time.perf_counter()
        result = gg.optimize(
            build_graph(SEED_PROMPT, args.max_tokens),
            train,
            val,
            metric=metric,
            reflection_lm=local.resolve(local.DEFAULT_MODEL),
            config=config,
            run_dir=Path(tmp) / "run",
            progress=False,
        )
        seconds = time.perf_counter() - started
    (prompt,) = result.best_candidate.values()
    rejected: dict[str, int] = {}
    for record in result.rejected:
        rejected[record.reason] = rejected.get(record.reason, 0) + 1
    return {
        "seconds": seconds,
        "rollouts": result.rollouts_used,
        "seed_val": result.seed_score,
        "best_val": result.best_score,
        "best_prompt": prompt,
        "candidates": len(result.candidates),
        "iterations": result.iterations,
        "stop_reason": result.stop_reason,
        "rejected": rejected,
        "proposals": [r.proposed_text for r in result.rejected],
    }


def run_gepa(args: Any, train: Rows, val: Rows) -> dict[str, Any]:
    import gepa
    from gepa.adapters.langchain_adapter import LangChainAdapter

    from gepa_graph import local

    graphs: dict[str, Any] = {}
    module = "system_prompt"

    def rollout_fn(candidate: dict[str, str], example: Any) -> dict[str, Any]:
        prompt = candidate[module]
        if prompt not in graphs:
            graphs[prompt] = build_graph(prompt, args.max_tokens)
        state: dict[str, Any] = graphs[prompt].invoke({"text": example["text"]})
        return state

    def eval_fn(example: Any, state: dict[str, Any]) -> tuple[float, str]:
        return score(example, state.get("answer", ""))

    class Quiet:
        def log(self, message: str) -> None:
            pass

    started = time.perf_counter()
    result: Any = gepa.optimize(  # type: ignore[attr-defined]
        seed_candidate={module: SEED_PROMPT},
        trainset=train,
        valset=val,
        adapter=LangChainAdapter(rollout_fn, eval_fn, num_threads=2, show_progress=False),
        reflection_lm=local.resolve(local.DEFAULT_MODEL),
        reflection_lm_kwargs={"max_tokens": 512},
        max_metric_calls=args.budget,
        reflection_minibatch_size=3,
        use_merge=True,
        seed=args.seed,
        logger=Quiet(),
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rollouts": result.total_metric_calls,
        "seed_val": result.val_aggregate_scores[0],
        "best_val": result.val_aggregate_scores[result.best_idx],
        "best_prompt": result.candidates[result.best_idx][module],
        "candidates": len(result.candidates),
    }


def by_optimizer(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each optimizer's runs, one per seed (a single-seed result file holds one run each)."""
    return {
        name: runs if isinstance(runs, list) else [runs] for name, runs in results["runs"].items()
    }


def spread(values: list[float], digits: int = 2) -> str:
    """``mean ± sd`` over seeds, the value alone for one seed, n/a for none."""
    if not values:
        return "n/a"
    mean, sd = mean_sd(values)
    return f"{mean:.{digits}f}" if len(values) == 1 else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def aggregate(results: dict[str, Any]) -> list[list[Any]]:
    """One row per optimizer: seeds, mean wall time and rollouts, then seed-prompt and best
    validation and test scores, and the test gain, each mean ± sd over the seeds."""
    rows = []
    for name, runs in by_optimizer(results).items():
        seed_test = [r["seed_test"] for r in runs if "seed_test" in r]
        gains = [r["test"] - r["seed_test"] for r in runs if "seed_test" in r]
        rows.append(
            [
                name,
                len(runs),
                f"{mean_sd(r['seconds'] for r in runs)[0] / 60:.1f} min",
                f"{mean_sd(r['rollouts'] for r in runs)[0]:.0f}",
                spread([r["seed_val"] for r in runs]),
                spread([r["best_val"] for r in runs]),
                spread(seed_test),
                spread([r["test"] for r in runs]),
                spread(gains),
                f"{mean_sd(r['candidates'] for r in runs)[0]:.1f}",
            ]
        )
    return rows


def markdown(results: dict[str, Any]) -> str:
    """The benchmark's table: per optimizer, mean ± sd over seeds."""
    if results.get("skipped"):
        return f"Not run: {results['skipped']}"
    p = results["params"]
    seeds = p.get("seeds", [p.get("seed")])
    header = [
        "optimizer",
        "seeds",
        "wall (mean)",
        "rollouts (mean)",
        "seed val",
        "best val",
        "seed test",
        "best test",
        "test gain",
        "candidates",
    ]
    return "\n".join(
        [
            (
                f"Local {p['model']} as task model and reflection LM; {p['n_train']} train / "
                f"{p['n_val']} validation / {p['n_test']} test examples; budget {p['budget']} "
                f"rollouts; seeds {', '.join(map(str, seeds))} (mean ± sd over seeds); total "
                f"{results['seconds'] / 60:.1f} min."
            ),
            "",
            table(header, aggregate(results)),
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Run the comparison for each seed and publish the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds, from --seed on")
    parser.add_argument("--n-train", type=int, default=6)
    parser.add_argument("--n-val", type=int, default=6)
    parser.add_argument("--n-test", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=16, help="task model reply limit")
    parser.add_argument(
        "--optimizers", nargs="*", default=["gepa_graph", "gepa"], choices=["gepa_graph", "gepa"]
    )
    parser.add_argument("--out", default=str(RESULTS / "real_model.json"))
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason is not None:
        print(f"benchmarks.real_model: skipped, the local model cannot run here: {reason}")
        return None
    from gepa_graph import local

    first = args.seed
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.optimizers}
    for seed in range(first, first + args.seeds):
        args.seed = seed
        train, val, test = split(seed, args.n_train, args.n_val, args.n_test)
        seed_test = test_score(SEED_PROMPT, test, args.max_tokens)
        for name in args.optimizers:
            runner = run_gepa_graph if name == "gepa_graph" else run_gepa
            run = runner(args, train, val)
            run.update(seed=seed, seed_test=seed_test)
            run["test"] = test_score(run["best_prompt"], test, args.max_tokens)
            runs[name].append(run)
            print(
                f"seed {seed}, {name}: {run['seconds']:.0f} s, val {run['seed_val']:.2f} -> "
                f"{run['best_val']:.2f}, test {seed_test:.2f} -> {run['test']:.2f}",
                flush=True,
            )
    results = {
        "benchmark": "real_model",
        "command": command("real_model", argv),
        "machine": machine(),
        "seconds": time.perf_counter() - started,
        "params": {
            "budget": args.budget,
            "seeds": list(range(first, first + args.seeds)),
            "n_train": len(train),
            "n_val": len(val),
            "n_test": len(test),
            "model": local.DEFAULT_MODEL,
            "max_tokens": args.max_tokens,
        },
        "runs": runs,
    }
    publish(args.out, results, markdown(results))
    return results


if __name__ == "__main__":
    main()
