"""Soak (outside the default run: ``pytest -m soak -s tests/test_reliability_soak.py``):
2,000 rollouts at concurrency 64 with 10 % of system, metric and reflection calls faulty in
every way the reliability tests cover one at a time, including calls that never return. The
run must use its whole budget, leak no secret, and leave no file descriptor, thread or memory
behind; it prints RSS growth, threads and fds left, and the journal's size."""

import asyncio
import decimal
import gc
import os
import threading
from collections import Counter

import litellm
import numpy as np
import pytest

import gepa_graph as gg
from gepa_graph.store import JOURNAL_FILE, STATE_FILE
from gepa_graph.testing.rules import RuleTask

pytestmark = pytest.mark.soak

SECRET = "soak-svc-9f8e7d6c5b4a"
SYSTEM_FAULTS = (
    "TimeoutError",
    "ConnectionError",
    "ValueError",
    "StopIteration",
    "CancelledError",
    "str() raises",
    "lone surrogate",
    "1 MB error",
    "secret in trace",
    "coroutine",
    "never returns",
)
METRIC_FAULTS = (
    "raises",
    "NaN",
    "None",
    "numpy.float32",
    "Decimal",
    "StopIteration",
    "never returns",
)
REFLECTION_FAULTS = (
    "rate limit",
    "502",
    "empty",
    "no fence",
    "ValueError",
    "bytes",
    "never returns",
)


class Faults:
    """Every 10th call gets a fault, the kinds taken in turn, so each kind is injected."""

    def __init__(self, kinds):
        self.kinds = kinds
        self.calls = 0
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()

    def pick(self):
        with self.lock:
            self.calls += 1
            if self.calls % 10:
                return None
            fault = self.kinds[self.calls // 10 % len(self.kinds)]
            self.injected[fault] += 1
            return fault


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("no str")


def _rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _fds():
    return len(os.listdir("/proc/self/fd"))


def test_soak_2000_rollouts_at_concurrency_64_with_10_percent_faults(tmp_path, monkeypatch):
    monkeypatch.setenv("SOAK_SERVICE_TOKEN", SECRET)
    task = RuleTask(n_types=80, modules=("a", "b"))
    release = threading.Event()  # what never-returning user code waits on
    system_faults, metric_faults = Faults(SYSTEM_FAULTS), Faults(METRIC_FAULTS)
    reflection_faults = Faults(REFLECTION_FAULTS)

    async def late(value):
        await asyncio.sleep(0)
        return value

    def system(prompts, example, trace):
        fault = system_faults.pick()
        answer = task.answer(prompts, example, trace)
        if fault == "TimeoutError":
            raise TimeoutError("read timed out")
        if fault == "ConnectionError":
            raise ConnectionResetError("connection reset by peer")
        if fault == "ValueError":
            raise ValueError("tool failed")
        if fault == "StopIteration":
            next(iter(()))
        if fault == "CancelledError":
            raise asyncio.CancelledError()
        if fault == "str() raises":
            raise BadStr()
        if fault == "lone surrogate":
            return answer + "\udcff"
        if fault == "1 MB error":
            raise ValueError("x" * 1_000_000)
        if fault == "secret in trace":
            trace.add("tool", node="a", inputs={"token": SECRET}, outputs=f"used {SECRET}")
        if fault == "coroutine":
            return late(answer)
        if fault == "never returns":
            release.wait()
        return answer

    def metric(example, prediction):
        fault = metric_faults.pick()
        score = task.metric(example, prediction if isinstance(prediction, str) else "")
        if fault == "raises":
            raise KeyError("label")
        if fault == "NaN":
            return float("nan")
        if fault == "None":
            return None
        if fault == "numpy.float32":
            return np.float32(score.value)
        if fault == "Decimal":
            return decimal.Decimal(score.value)
        if fault == "StopIteration":
            next(iter(()))
        if fault == "never returns":
            release.wait()
        return score

    scripted = task.reflection_lm()

    def reflection(prompt):
        fault = reflection_faults.pick()
        if fault == "rate limit":
            raise litellm.RateLimitError("429", llm_provider="p", model="m")
        if fault == "502":
            raise litellm.BadGatewayError("502 Bad Gateway", llm_provider="p", model="m")
        if fault == "empty":
            return ""
        if fault == "no fence":
            return "I think it should be better. " * 1000
        if fault == "ValueError":
            raise ValueError("reflection tool failed")
        if fault == "never returns":
            release.wait()
        reply = scripted(prompt)
        return reply.encode() if fault == "bytes" else reply

    data = task.examples(160, seed=11)
    gc.collect()
    threads_before, fds_before, rss_before = threading.active_count(), _fds(), _rss_mb()
    try:
        result = gg.optimize(
            gg.FunctionSystem(modules=task.seed_prompts(), fn=system),
            data[:140],
            data[140:],
            metric=metric,
            reflection_lm=reflection,
            max_rollouts=2000,
            run_dir=tmp_path / "run",
            progress=False,
            config=gg.OptimizeConfig(
                concurrency=64,
                minibatch_size=3,
                parallel_proposals=16,
                rollout_timeout_s=0.5,
                reflection_timeout_s=0.5,
                lm_backoff_s=0.001,
                seed=5,
            ),
        )
        hung_threads = threading.active_count() - threads_before
    finally:
        release.set()  # let the abandoned calls finish so their threads can exit
    for _ in range(100):
        if threading.active_count() <= threads_before:
            break
        threading.Event().wait(0.1)
    gc.collect()
    threads_left = threading.active_count() - threads_before
    fds_left = _fds() - fds_before
    rss_growth = _rss_mb() - rss_before
    journal = tmp_path / "run" / JOURNAL_FILE
    journal_mb = journal.stat().st_size / 2**20
    state_kb = (tmp_path / "run" / STATE_FILE).stat().st_size / 1024
    print(
        f"\nsoak: {result.rollouts_used} rollouts, stop {result.stop_reason}, best "
        f"{result.best_score:.3f} (seed {result.seed_score:.3f}), {result.ledger.seconds:.1f}s; "
        f"failed rollouts {result.ledger.failed_rollouts}, rollout retries "
        f"{result.ledger.rollout_retries}, reflection retries {result.ledger.lm_retries}, "
        f"rejected proposals {len(result.rejected)}\n"
        f"faults injected: system {sum(system_faults.injected.values())} "
        f"{dict(system_faults.injected)}; metric {sum(metric_faults.injected.values())} "
        f"{dict(metric_faults.injected)}; reflection {sum(reflection_faults.injected.values())} "
        f"{dict(reflection_faults.injected)}\n"
        f"RSS growth {rss_growth:+.1f} MB; threads still blocked in abandoned calls at return "
        f"{hung_threads}, threads left after release {threads_left}; fds left {fds_left}; "
        f"journal {journal_mb:.2f} MB; state.json {state_kb:.0f} kB"
    )
    # The last round stops short of a batch it cannot fit: the budget is used to within it.
    assert result.rollouts_used > 1900 and result.stop_reason == "max_rollouts"
    for faults in (system_faults, metric_faults, reflection_faults):
        assert set(faults.injected) == set(faults.kinds)
    assert SECRET not in journal.read_text(encoding="utf-8")
    assert threads_left <= 0 and fds_left <= 0
    assert rss_growth < 300 and journal_mb < 50
