"""``gepa-graph demo``: a real optimization of a small LangGraph agent, offline, in minutes.

The agent reads a short business text and must answer with the date it mentions, normalised to
ISO 8601 (``YYYY-MM-DD``). The texts come from a British company: numeric dates are written
day/month/year, so ``03/04/2024`` is 3 April. The seed prompt says neither, so the agent answers
in prose or in the text's own format and scores poorly; the metric's feedback says exactly what
was wrong, and GEPA's reflection turns that into a better prompt.

By default both the agent and the reflection LM are the embedded local model
(``gepa_graph.local``, ``local/qwen2.5-coder-1.5b``); ``task_lm``/``reflection_lm`` take any
LiteLLM model string instead (``openai/gpt-4.1-mini``, ``anthropic/claude-...``,
``ollama/llama3.1``...). The run is tracked in MLflow (experiment ``gepa-graph-demo``), the winner is
registered in the Prompt Registry under alias ``candidate``, and the seed and the winner are
compared on held-out examples the optimizer never saw.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import difflib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import typer

from gepa_graph.cli.common import app, say, user_errors
from gepa_graph.metric import Score

EXPERIMENT = "gepa-graph-demo"
REGISTRY_NAME = "date-extractor"

SEED_PROMPT = "Find the date in the text."

# (text, ISO date). Numeric dates are day/month/year: the texts are from a UK company.
DATA: list[tuple[str, str]] = [
    ("Invoice 2291 was issued on 03/04/2024 and is payable within 30 days.", "2024-04-03"),
    ("The board meets again on the 7th of November 2023 in Leeds.", "2023-11-07"),
    ("Our new office opened on March 15, 2022, after a year of works.", "2022-03-15"),
    ("Delivery is booked for 12.01.2025; please keep the loading bay clear.", "2025-01-12"),
    ("Contract signed 2021-09-30 by both parties.", "2021-09-30"),
    ("Payment received on 5 Feb 2024, thank you.", "2024-02-05"),
    ("The audit covering the last year ended on 31/12/2023.", "2023-12-31"),
    ("Please return the signed form by Friday 9 August 2024.", "2024-08-09"),
    ("The warranty expires on 01/06/2026 unless renewed.", "2026-06-01"),
    ("Minutes of the meeting held on 22nd January 2025.", "2025-01-22"),
    ("Shipment 77 left the warehouse on 10/11/2023 by road.", "2023-11-10"),
    ("Launch day is set for Sept. 3, 2024.", "2024-09-03"),
    ("The lease starts 04-07-2025 and runs for two years.", "2025-07-04"),
    ("Refund issued 2024/03/08 to the original card.", "2024-03-08"),
    ("We last spoke on 14 March 2023 about the renewal.", "2023-03-14"),
    ("Training is scheduled for 06/05/2024 at 9am.", "2024-05-06"),
    ("The price list is valid from 1st April 2025.", "2025-04-01"),
    ("Order placed 11/02/2025, dispatched the next morning.", "2025-02-11"),
    ("Your appointment: Tuesday, 19 November 2024, 14:30.", "2024-11-19"),
    ("The survey closed on 08.10.2023 with 412 replies.", "2023-10-08"),
    ("Statement date: 02/03/2025.", "2025-03-02"),
    ("The charity gala takes place on June 21, 2025.", "2025-06-21"),
    ("Keys handed over 29/02/2024 at the front desk.", "2024-02-29"),
    ("Probation ends on the 5th of December 2024.", "2024-12-05"),
    ("Inspection completed 07/09/2023; no issues found.", "2023-09-07"),
    ("Quarter closed on 30 Sep 2024 with record sales.", "2024-09-30"),
    ("Tickets go on sale 10.04.2025 at noon.", "2025-04-10"),
    ("The policy was last reviewed on 12/08/2022.", "2022-08-12"),
]

_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def examples() -> list[dict[str, Any]]:
    """Every labelled text as an example (``id``, ``text``, ``answer``), in DATA's order."""
    return [{"id": f"d{i:02d}", "text": text, "answer": iso} for i, (text, iso) in enumerate(DATA)]


def splits(n_train: int = 8, n_val: int = 6, n_test: int = 10) -> tuple[list, list, list]:
    """Train, validation (the optimizer's Pareto set) and held-out test examples, disjoint."""
    data = examples()
    if n_train + n_val + n_test > len(data):
        raise ValueError(f"the demo has {len(data)} examples; asked for {n_train + n_val + n_test}")
    # Interleave so every split mixes numeric, written-out and ISO dates.
    order = data[0::3] + data[1::3] + data[2::3]
    train = order[:n_train]
    val = order[n_train : n_train + n_val]
    test = order[n_train + n_val : n_train + n_val + n_test]
    return train, val, test


def _readable(iso: str) -> str:
    day = dt.date.fromisoformat(iso)
    return f"{day.day} {day:%B %Y}"


def metric(example: Any, prediction: Any) -> Score:
    """1.0 for exactly the ISO date; 0.5 for the right ISO date inside other text; else 0.
    The feedback says what the answer should have been and why."""
    expected = example["answer"]
    got = ""
    if isinstance(prediction, dict):
        got = str(prediction.get("date") or "").strip()
    if got == expected:
        return Score(value=1.0, feedback=f"Correct: {expected}.")
    rule = (
        "The answer must be only the date in ISO 8601 format YYYY-MM-DD, with no other words. "
        "Numeric dates in these texts are written day/month/year (British style), so 03/04/2024 "
        "means 3 April 2024 (2024-04-03)."
    )
    found = _ISO.findall(got)
    if found and "-".join(found[-1]) == expected:
        return Score(
            value=0.5,
            feedback=(
                f"Right date but extra text: the answer was {got!r}; it should be exactly "
                f"{expected!r}. {rule}"
            ),
        )
    return Score(
        value=0.0,
        feedback=(
            f"Wrong: the answer was {got!r}; the date in the text is {_readable(expected)}, so the "
            f"answer should be exactly {expected!r}. {rule}"
        ),
    )


class DateState(TypedDict, total=False):
    """The graph's state: the ``text`` in, the ``date`` the agent answered out."""

    text: str
    date: str


def build_graph(model: Any, instructions: str = SEED_PROMPT) -> Any:
    """The agent: one LangGraph node, ``extract``, whose system prompt is the one module."""
    from langchain_core.prompts import ChatPromptTemplate
    from langgraph.graph import END, START, StateGraph

    prompt = ChatPromptTemplate.from_messages([("system", instructions), ("human", "{text}")])
    chain = prompt | model

    async def extract(state: DateState) -> dict[str, str]:
        reply = await chain.ainvoke({"text": state["text"]})
        return {"date": reply.text.strip()}

    builder = StateGraph(DateState)
    builder.add_node("extract", extract)
    builder.add_edge(START, "extract")
    builder.add_edge("extract", END)
    return builder.compile(name="date_extractor")


def task_model(task_lm: str, max_tokens: int = 48) -> Any:
    """The agent's chat model: ChatLiteLLM on ``task_lm`` (the local model with its defaults)."""
    from gepa_graph import local

    if local.is_local(task_lm):
        return local.chat_model(task_lm, max_tokens=max_tokens)
    from langchain_litellm import ChatLiteLLM

    return ChatLiteLLM(model=task_lm, max_tokens=max_tokens, temperature=0.0)


@dataclass
class DemoReport:
    """What the demo found, for ``summary`` and for tests: the Result, the held-out scores of
    the seed and the best (mean and per example), the prompt diff, the MLflow run and the
    registered versions."""

    result: Any
    seed_test: float
    best_test: float
    seed_test_scores: list[float]
    best_test_scores: list[float]
    n_test: int
    diff: str
    seconds: float
    run_id: str | None = None
    experiment: str = EXPERIMENT
    registered: dict[str, int] = field(default_factory=dict)
    registry_name: str = REGISTRY_NAME
    tracking_uri: str | None = None


async def held_out_scores(graph: Any, prompts: dict[str, str], test: Sequence[dict]) -> list[float]:
    """Run ``graph`` with ``prompts`` on each test example (one at a time) and score it."""
    from gepa_graph.integrations.langgraph import LangGraphSystem

    system = LangGraphSystem(graph)
    scores = []
    for example in test:
        rollout = await system.arun(prompts, example)
        value = 0.0 if rollout.error else metric(example, rollout.output).value
        scores.append(value)
    return scores


def prompt_diff(seed: dict[str, str], best: dict[str, str]) -> str:
    """A unified diff of each module whose best prompt differs from the seed's."""
    parts = []
    for module in sorted(best):
        if seed.get(module) == best[module]:
            continue
        lines = difflib.unified_diff(
            seed.get(module, "").splitlines(),
            best[module].splitlines(),
            fromfile=f"{module} (seed)",
            tofile=f"{module} (best)",
            lineterm="",
        )
        parts.append("\n".join(lines))
    return "\n".join(parts) or "(the best candidate is the seed: no prompt changed)"


def run_demo(
    *,
    task_lm: str | None = None,
    reflection_lm: str | None = None,
    max_rollouts: int = 60,
    max_seconds: float | None = 420.0,
    n_train: int = 8,
    n_val: int = 6,
    n_test: int = 10,
    seed: int = 0,
    tracking_uri: str | None = None,
    experiment: str = EXPERIMENT,
    registry_name: str | None = REGISTRY_NAME,
    run_dir: str | Path | None = None,
    progress: bool | None = None,
    say: Callable[[str], None] = print,
) -> DemoReport:
    """Optimize the date agent and compare seed and best on held-out examples.

    ``max_seconds`` bounds the optimization itself (the held-out evaluation comes after it).
    """
    import gepa_graph as gg
    from gepa_graph import local
    from gepa_graph.tracking import MLflowTracker, registry

    task_lm = task_lm or local.DEFAULT_MODEL
    reflection_lm = reflection_lm or task_lm
    uses_local = local.is_local(task_lm) or local.is_local(reflection_lm)
    if uses_local:
        local.register()
        started_model = time.monotonic()
        path = local.model_path(progress=say)
        say(f"local model: {path}")
        local.engine().chat([{"role": "user", "content": "Hi"}], max_tokens=1)  # load once
        say(f"local model loaded in {time.monotonic() - started_model:.1f}s")

    train, val, test = splits(n_train, n_val, n_test)
    graph = build_graph(task_model(task_lm))
    say(f"agent: LangGraph node 'extract' on {task_lm}; reflection LM: {reflection_lm}")
    say(f"data: {len(train)} train, {len(val)} validation, {len(test)} held-out test examples")

    tracker = MLflowTracker(experiment=experiment, tracking_uri=tracking_uri)
    config = gg.OptimizeConfig(
        minibatch_size=3,
        concurrency=4,  # the local model decodes up to 4 requests together (parallel slots)
        seed=seed,
        reflection_max_tokens=400 if local.is_local(reflection_lm) else 2048,
        reflection_temperature=0.7 if local.is_local(reflection_lm) else None,
        reflection_timeout_s=600.0,
        max_chars_per_field=600,
        max_merge_attempts=1,
        rollout_timeout_s=120.0,
    )
    started = time.monotonic()
    result = gg.optimize(
        graph,
        train,
        val,
        metric=metric,
        reflection_lm=reflection_lm,
        max_rollouts=max_rollouts,
        max_seconds=max_seconds,
        config=config,
        run_dir=run_dir,
        tracking=tracker,
        progress=progress,
    )
    say(
        f"optimization finished in {time.monotonic() - started:.0f}s ({result.stop_reason}): "
        f"validation {result.seed_score:.3f} -> {result.best_score:.3f}"
    )

    say(f"scoring seed and best on {len(test)} held-out examples ...")
    seed_scores = asyncio.run(held_out_scores(graph, result.seed_candidate, test))
    if result.best_candidate == result.seed_candidate:
        best_scores = list(seed_scores)
    else:
        best_scores = asyncio.run(held_out_scores(graph, result.best_candidate, test))

    registered: dict[str, int] = {}
    if registry_name:
        done = registry.register(
            result, registry_name, "candidate", tracking_uri, run_id=tracker.run_id
        )
        registered = dict(done.versions)
    return DemoReport(
        result=result,
        seed_test=sum(seed_scores) / len(seed_scores),
        best_test=sum(best_scores) / len(best_scores),
        seed_test_scores=seed_scores,
        best_test_scores=best_scores,
        n_test=len(test),
        diff=prompt_diff(result.seed_candidate, result.best_candidate),
        seconds=time.monotonic() - started,
        run_id=tracker.run_id,
        experiment=experiment,
        registered=registered,
        registry_name=registry_name or "",
        tracking_uri=tracking_uri,
    )


def summary(report: DemoReport) -> str:
    """What the demo prints at the end."""
    result = report.result
    lines = [
        "",
        f"held-out test ({report.n_test} examples never seen by the optimizer): "
        f"seed {report.seed_test:.3f} -> best {report.best_test:.3f}",
        f"validation: seed {result.seed_score:.3f} -> best {result.best_score:.3f}; "
        f"{result.rollouts_used} rollouts, {result.iterations} iterations, "
        f"{len(result.candidates)} candidates, stop: {result.stop_reason}",
        "",
        "prompt diff (seed -> best):",
        report.diff,
        "",
    ]
    uri = f" --backend-store-uri {report.tracking_uri}" if report.tracking_uri else ""
    lines.append(f"MLflow: experiment {report.experiment!r}, run {report.run_id}")
    lines.append(f"  see it: gepa-graph ui{uri}   then open http://127.0.0.1:5000")
    if report.registered:
        versions = ", ".join(f"{m}=v{v}" for m, v in sorted(report.registered.items()))
        lines.append(f"registered {report.registry_name}@candidate ({versions})")
        lines.append(
            f"  promote it: gepa-graph promote {report.registry_name} "
            "--from candidate --to production"
        )
        lines.append(
            f"  load it: gepa_graph.tracking.registry.with_registry_prompts(graph, "
            f"'{report.registry_name}@production')"
        )
    lines.append(f"run folder: {result.run_dir}  (gepa-graph show {result.run_dir})")
    return "\n".join(lines)


@app.command()
def demo(
    task_lm: str | None = typer.Option(
        None, "--task-lm", help="LiteLLM model for the agent (default: the embedded local model)"
    ),
    reflection_lm: str | None = typer.Option(
        None, "--reflection-lm", help="LiteLLM model for reflection (default: the task LM)"
    ),
    max_rollouts: int = typer.Option(60, help="rollout budget"),
    max_seconds: float = typer.Option(420.0, help="wall-clock budget of the optimization"),
    seed: int = typer.Option(0, help="random seed"),
    experiment: str = typer.Option(EXPERIMENT, help="MLflow experiment"),
    tracking_uri: str | None = typer.Option(None, help="MLflow tracking URI (default: MLflow's)"),
    register: str = typer.Option(
        REGISTRY_NAME, "--register", help="Prompt Registry name for the winner (alias candidate)"
    ),
    run_dir: Path | None = typer.Option(None, help="checkpoint folder (default: ./gepa_runs/...)"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Optimize a small real LangGraph agent (dates -> ISO 8601) with a local LLM, offline."""
    with user_errors():
        report = run_demo(
            task_lm=task_lm,
            reflection_lm=reflection_lm,
            max_rollouts=max_rollouts,
            max_seconds=max_seconds,
            seed=seed,
            tracking_uri=tracking_uri,
            experiment=experiment,
            registry_name=register,
            run_dir=run_dir,
            progress=progress,
            say=say,
        )
    say(summary(report))
