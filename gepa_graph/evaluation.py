"""Runs a System on examples: bounded concurrency, metric scoring, failures as scores, and a
(candidate, example) cache so no candidate ever runs twice on the same example."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from gepa_graph.budget import Budget, call_limit
from gepa_graph.candidate import Candidate
from gepa_graph.config import OptimizeConfig
from gepa_graph.errors import SubstitutionLeak
from gepa_graph.example import Example
from gepa_graph.executor import Executor, LocalExecutor
from gepa_graph.journal import Journal
from gepa_graph.jsonable import to_jsonable
from gepa_graph.metric import Metric, MetricError, Score, call_metric, metric_arity
from gepa_graph.redact import clip, redact_text
from gepa_graph.reuse import RolloutReuse
from gepa_graph.system import (
    MAX_ERROR_CHARS,
    Rollout,
    System,
    Trace,
    TraceRecord,
    Usage,
    failed_rollout,
)
from gepa_graph.usercode import check_threads, describe, run_bounded

log = logging.getLogger("gepa_graph")


class EvalResult(BaseModel):
    """One scored rollout, reduced to JSON values (see jsonable.py for why): what the journal
    stores and a resumed run reads back.

    Fields: ``example_key`` (the example it ran on), ``score`` (the metric's value, or
    ``failure_score`` when the system or the metric failed), ``feedback`` (the metric's text for
    reflection; on a failure, the error), ``module_feedback`` (per-module feedback, None when the
    metric gave none), ``output`` (the system's output, JSON-safe), ``trace`` (its LM calls and
    records), ``error`` (None on success; else the system's or the metric's error, secrets
    masked and size-bounded), ``usage`` (tokens and USD of every attempt, retries included),
    ``metric_calls`` (how often the metric judged this output: ``score_repeats``, 0 when the
    system failed), ``samples`` (with ``score_repeats`` > 1, every value the metric gave, in
    order: ``score`` is their mean, ``feedback`` the first call's; empty when scored once),
    ``reused_from`` (the candidate whose rollout this is, taken without running: reuse.py;
    None for a rollout of its own).
    """

    example_key: str
    score: float
    feedback: str = ""
    module_feedback: dict[str, str] | None = None
    output: Any = None
    trace: Trace = Field(default_factory=Trace)
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    metric_calls: int = 0
    samples: list[float] = Field(default_factory=list)
    reused_from: str | None = None

    @property
    def score_count(self) -> int:
        """How many metric values ``score`` is the mean of."""
        return max(1, len(self.samples))

    @property
    def score_sd(self) -> float:
        """The sample standard deviation of the metric's values (0 when scored once): the
        metric's own noise on this output."""
        return statistics.stdev(self.samples) if len(self.samples) > 1 else 0.0

    def feedback_for(self, module: str) -> str:
        """The feedback a reflection on ``module`` reads: its own, else the general one."""
        return Score(
            value=self.score, feedback=self.feedback, module_feedback=self.module_feedback
        ).feedback_for(module)


class Evaluator:
    """Runs rollouts for one run: at most ``concurrency`` at a time, each retried and time
    limited as the config says, scored by the metric, charged to the budget and journaled.

    It caches every result by (candidate id, example uid: see Example), so a candidate never
    runs twice on an example and a training and a validation example that share an id never
    share a score. It takes a result from another candidate that agrees with it on every
    prompt that rollout read instead of running it (``config.reuse_rollouts``: reuse.py), and
    rollouts a killed run already journaled (``journaled``) instead of running them again.
    ``pending``, ``running`` and ``busy_seconds`` are what the engine reads to fill slots and
    report their utilisation.
    """

    def __init__(
        self,
        system: System,
        metric: Metric,
        config: OptimizeConfig,
        budget: Budget,
        journal: Journal,
        journaled: dict[tuple[str, str], dict[str, Any]] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.system = system
        # Where rollouts run (this process, or a Ray cluster); everything else stays here.
        self.executor = executor if executor is not None else LocalExecutor()
        self.metric = metric
        self._arity = metric_arity(metric)
        self.config = config
        self.budget = budget
        self.journal = journal
        self._cache: dict[tuple[str, str], EvalResult] = {}
        self._reuse: RolloutReuse[EvalResult] | None = (
            RolloutReuse() if config.reuse_rollouts else None
        )
        # Rollouts a killed run already paid for: free to run, but counted again when first
        # used so the resumed ledger matches an uninterrupted one exactly.
        self._journaled = dict(journaled or {})
        self._inflight: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._metric_warned = False
        self.pending = 0  # rollouts waiting for a slot or running
        self.running = 0  # rollouts holding a slot
        self.busy_seconds = 0.0  # slot-seconds spent running rollouts
        self.on_rollout_done: list[Callable[[], None]] = []  # told whenever a slot frees

    def cached(self, candidate_id: str, example: Example) -> EvalResult | None:
        """The result this run already has for the pair, or None (not run yet, or still in
        flight). Spends nothing and waits for nothing."""
        return self._cache.get((candidate_id, example.uid))

    async def evaluate(self, candidate: Candidate, examples: Sequence[Example]) -> list[EvalResult]:
        """Scores of ``candidate`` on ``examples``, in order. Raises BudgetExhausted (spending
        nothing) when the rollouts not yet cached do not fit in the budget. A rollout another
        caller has already started is awaited, not run twice."""
        missing: dict[str, Example] = {}
        waiting: list[asyncio.Future[None]] = []
        for example in examples:
            key = (candidate.id, example.uid)
            if key in self._cache or example.uid in missing or self._reused(candidate, example):
                continue
            if key in self._inflight:
                waiting.append(self._inflight[key])
            else:
                missing[example.uid] = example
        self.budget.reserve_rollouts(len(missing))
        to_run = []
        for example in missing.values():
            stored = self._journaled.pop((candidate.id, example.uid), None)
            if stored is not None:
                self._remember(candidate, example, EvalResult.model_validate(stored), journal=False)
            else:
                to_run.append(example)
        if to_run:
            loop = asyncio.get_running_loop()
            for example in to_run:
                self._inflight[(candidate.id, example.uid)] = loop.create_future()
            try:
                await asyncio.gather(*(self._run_and_remember(candidate, ex) for ex in to_run))
            finally:
                for example in to_run:
                    future = self._inflight.pop((candidate.id, example.uid))
                    if not future.done():
                        future.set_result(None)
        if waiting:
            await asyncio.gather(*waiting)
        return [self._cache[(candidate.id, ex.uid)] for ex in examples]

    def _reused(self, candidate: Candidate, example: Example) -> bool:
        """Cache a result another candidate's rollout gives this one (reuse.py), free: not
        journaled (a resumed run reuses it again) and not charged; whether there was one."""
        found = self._reuse.find(example.uid, candidate.prompts) if self._reuse else None
        if found is None:
            return False
        source, result = found
        self._cache[(candidate.id, example.uid)] = result.model_copy(
            update={"reused_from": source, "usage": Usage()}
        )
        self.budget.add_reused_rollout()
        return True

    def _remember(
        self, candidate: Candidate, example: Example, result: EvalResult, *, journal: bool
    ) -> None:
        self._cache[(candidate.id, example.uid)] = result
        if self._reuse is not None and result.error is None:
            self._reuse.add(example.uid, candidate.id, candidate.prompts, result.trace.read, result)
        self.budget.add_task_cost(result.usage.cost_usd)
        self.budget.add_metric_calls(result.metric_calls)
        if result.error is not None:
            self.budget.add_failed_rollout()
        if journal:
            self.journal.record_rollout(candidate.id, example, result.model_dump(mode="json"))

    def _limit(self) -> tuple[float | None, bool]:
        """Seconds one call of the system or the metric may take (see budget.call_limit)."""
        return call_limit(self.config.rollout_timeout_s, self.budget.seconds_left())

    async def _run_and_remember(self, candidate: Candidate, example: Example) -> None:
        self.pending += 1
        try:
            async with self._semaphore:
                self.running += 1
                started = time.monotonic()
                try:
                    result = await self._attempts(candidate, example)
                finally:
                    self.running -= 1
                    self.busy_seconds += time.monotonic() - started
            # A failure at the run's deadline (a call cut off at max_seconds) is not journaled:
            # a resumed run with time left runs it again instead of inheriting the cut-off.
            left = self.budget.seconds_left()
            late = result.error is not None and left is not None and left <= 0
            self._remember(candidate, example, result, journal=not late)
        finally:
            self.pending -= 1
            for listener in self.on_rollout_done:
                listener()

    async def _attempts(self, candidate: Candidate, example: Example) -> EvalResult:
        """Run one rollout, again while it fails transiently, and score it."""
        spent = Usage()
        for attempt in range(self.config.rollout_retries + 1):
            check_threads()  # too many hung calls hold threads: stop the run, in one line
            rollout = await self._run(candidate, example)
            spent = spent + rollout.trace.usage()
            if not (rollout.error and rollout.retryable) or attempt == self.config.rollout_retries:
                break
            # A rate limit or dropped connection says nothing about the prompt: run again
            # rather than score it. One (candidate, example) still counts one rollout.
            self.budget.add_rollout_retry()
            await asyncio.sleep(self.config.lm_backoff_s * 2**attempt)
        result = await self._score(example, rollout)
        check_threads()
        result.usage = spent  # every attempt was paid for, not only the last
        return result

    async def _run(self, candidate: Candidate, example: Example) -> Rollout:
        limit, by_deadline = self._limit()
        task = await run_bounded(self.executor.run(self.system, candidate.prompts, example), limit)
        if task is None:
            # Our own limit: a candidate that makes the system hang is scored, not retried.
            why = "the run reached max_seconds" if by_deadline else "rollout_timeout_s"
            return Rollout(error=f"RolloutTimeout: no result after {limit:g}s ({why})")
        if task.cancelled():
            return Rollout(error="CancelledError: the system cancelled its own rollout")
        exc = task.exception()
        if isinstance(exc, SubstitutionLeak):  # not a score: the candidate did not run
            raise exc
        if exc is not None:  # a failing rollout is a score, never a crash
            return failed_rollout(exc)
        rollout = task.result()
        if not isinstance(rollout, Rollout):
            return Rollout(
                error=f"TypeError: System.arun returned {type(rollout).__name__}, not gg.Rollout"
            )
        return rollout

    async def _metric(self, example: Example, rollout: Rollout) -> Score:
        limit, _ = self._limit()
        task = await run_bounded(
            call_metric(self.metric, self._arity, example, rollout.output, rollout.trace), limit
        )
        if task is None:
            raise MetricError(f"no result after {limit:g}s")
        if task.cancelled():
            raise MetricError("the metric raised CancelledError")
        score: Score = task.result()
        low_high = self.config.score_range
        if low_high is not None and not low_high[0] <= score.value <= low_high[1]:
            raise MetricError(
                f"score {score.value} is outside score_range {low_high} (set "
                "OptimizeConfig.score_range to your metric's scale)"
            )
        return score

    async def _score(self, example: Example, rollout: Rollout) -> EvalResult:
        failure = self.config.failure_score
        base = dict(
            example_key=example.key,
            output=to_jsonable(rollout.output),
            trace=Trace.model_validate(to_jsonable(rollout.trace.model_dump(mode="python"))),
            usage=rollout.trace.usage(),
        )
        if rollout.error is not None:
            error = _stored(rollout.error)  # a System's own error text: masked, bounded
            return EvalResult(
                score=failure, feedback=f"The system failed with {error}", error=error, **base
            )
        repeats = self.config.score_repeats
        try:
            scores = await self._metric_repeats(example, rollout, repeats)
        except Exception as exc:
            error = _stored(f"metric failed on example {example.key!r}: {describe(exc)}")
            if not self._metric_warned:
                self._metric_warned = True
                log.warning(
                    "%s (scored %s; later metric failures are recorded silently)", error, failure
                )
            base["trace"].records.append(TraceRecord(kind="error", error=error))
            return EvalResult(
                score=failure, feedback=error, error=error, metric_calls=repeats, **base
            )
        values = [score.value for score in scores]
        return EvalResult(
            score=statistics.fmean(values),
            feedback=to_jsonable(scores[0].feedback),
            module_feedback=to_jsonable(scores[0].module_feedback),
            metric_calls=repeats,
            samples=values if repeats > 1 else [],
            **base,
        )

    async def _metric_repeats(
        self, example: Example, rollout: Rollout, repeats: int
    ) -> list[Score]:
        """The metric's verdicts on one output, ``repeats`` calls at once (an LLM judge's
        calls overlap); any failing call fails them all, as one failing call would."""
        if repeats == 1:
            return [await self._metric(example, rollout)]
        outcomes = await asyncio.gather(
            *(self._metric(example, rollout) for _ in range(repeats)), return_exceptions=True
        )
        scores: list[Score] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            scores.append(outcome)
        return scores


def _stored(text: str) -> str:
    """Error text as stored: secrets masked, size bounded (a 10 MB message stays 2 KB)."""
    return clip(redact_text(str(text)), MAX_ERROR_CHARS)
