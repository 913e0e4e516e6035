import asyncio
import itertools

import pytest

import gepa_graph as gg
from gepa_graph.testing.clock import run_on_virtual_clock
from gepa_graph.testing.rules import RuleTask


def _costly_system(task, cost):
    def answer(prompts, example, trace):
        out = task.answer(prompts, example, trace)
        trace.records[-1].usage = gg.Usage(prompt_tokens=10, completion_tokens=2, cost_usd=cost)
        return out

    return gg.FunctionSystem(modules=task.seed_prompts(), fn=answer)


def _optimize(system, task, tmp_path, **kwargs):
    return gg.optimize(
        system,
        task.examples(12, seed=1, prefix="t"),
        task.examples(6, seed=2, prefix="v"),
        metric=task.metric,
        reflection_lm=task.reflection_lm(),
        run_dir=tmp_path / "r",
        progress=False,
        **kwargs,
    )


def test_cost_budget_stops_the_run_and_is_counted_from_task_usage(tmp_path):
    task = RuleTask(n_types=12)
    result = _optimize(
        _costly_system(task, 0.01),
        task,
        tmp_path,
        config=gg.OptimizeConfig(max_rollouts=None, max_cost_usd=0.25),
    )
    assert result.stop_reason == "max_cost_usd"
    assert abs(result.ledger.task_cost_usd - 0.01 * result.rollouts_used) < 1e-9
    # Checked before every batch: the overshoot is at most one batch (a full validation here)
    # per proposal in flight (at most 2 at concurrency 8, minibatch 3).
    assert 0.25 <= result.ledger.cost_usd <= 0.25 + 0.01 * 6 * 2


@pytest.mark.parametrize("in_flight", [1, 3])
def test_stale_iterations_stop_a_run_that_no_longer_improves(tmp_path, in_flight):
    task = RuleTask(n_types=4)
    result = gg.optimize(
        task.system(),
        task.examples(8, seed=1),
        metric=task.metric,
        reflection_lm=lambda prompt: "```\nsomething unhelpful\n```",
        run_dir=tmp_path / "r",
        max_rollouts=500,
        progress=False,
        config=gg.OptimizeConfig(max_stale_iterations=4, parallel_proposals=in_flight),
    )
    # Four proposals ended without a new best; those already in flight then finish.
    assert result.stop_reason == "max_stale_iterations"
    assert 4 <= result.iterations <= 4 + in_flight - 1


def test_time_budget_and_rollout_timeout(tmp_path):
    async def slow(prompts, example):
        await asyncio.sleep(5 if example["id"] == "stuck" else 0.02)
        return "x"

    system = gg.FunctionSystem(modules={"m": "p"}, fn=slow)
    calls = itertools.count()
    data = [{"id": "stuck"}] + [{"id": f"e{i}"} for i in range(5)]
    result = gg.optimize(
        system,
        data,
        metric=lambda example, prediction: 0.0,
        reflection_lm=lambda prompt: f"```\nprompt number {next(calls)}\n```",
        run_dir=tmp_path / "r",
        progress=False,
        config=gg.OptimizeConfig(max_rollouts=None, max_seconds=2.0, rollout_timeout_s=0.5),
    )
    assert result.stop_reason == "max_seconds"
    assert result.candidates[0].val_scores["stuck"] == 0.0
    assert result.ledger.failed_rollouts >= 1


def test_rollouts_run_concurrently_up_to_the_limit(tmp_path):
    in_flight = peak = 0

    async def fn(prompts, example):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return "x"

    data = [{"id": i} for i in range(20)]
    run_on_virtual_clock(  # a busy machine's pauses cannot let one rollout end before 5 start
        gg.aoptimize(
            gg.FunctionSystem(modules={"m": "p"}, fn=fn),
            data,
            metric=lambda example, prediction: 1.0,
            reflection_lm=lambda p: "",
            max_rollouts=20,
            config=gg.OptimizeConfig(concurrency=5),
            run_dir=tmp_path / "r",
            progress=False,
        )
    )
    assert peak == 5


def test_sync_systems_also_reach_the_concurrency_limit(tmp_path):
    import threading
    import time

    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def fn(prompts, example):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.3)  # far longer than starting 12 threads on a busy machine
        with lock:
            state["now"] -= 1
        return "x"

    data = [{"id": i} for i in range(24)]
    gg.optimize(
        gg.FunctionSystem(modules={"m": "p"}, fn=fn),
        data,
        metric=lambda example, prediction: 1.0,
        reflection_lm=lambda p: "",
        max_rollouts=24,
        config=gg.OptimizeConfig(concurrency=12),
        run_dir=tmp_path / "r",
        progress=False,
    )
    assert state["peak"] == 12


def test_a_run_whose_proposals_all_repeat_stops_as_stalled_instead_of_spinning(tmp_path):
    data = [{"id": i} for i in range(4)]
    result = gg.optimize(
        gg.FunctionSystem(modules={"m": "p"}, fn=lambda prompts, example: "x"),
        data,
        metric=lambda example, prediction: 0.0,
        reflection_lm=lambda p: "```\nsame\n```",
        max_rollouts=10_000,
        run_dir=tmp_path / "r",
        progress=False,
    )
    assert result.stop_reason == "stalled"
    assert result.rollouts_used < 20  # seed validation plus one child minibatch
