"""The GEPA loop, steady state. It decides through its strategies and acts through its
collaborators: the proposers (gepa_graph/proposers/: merge, reflective mutation) make children,
the strategies (gepa_graph/strategies/) choose parent, modules, minibatch, acceptance,
validation, merges and when to stop; the Evaluator runs rollouts, the EventBus tells listeners,
the store persists. The engine itself runs the loop, admits children (validation, the pool) and
stops.

Instead of rounds that wait for their slowest member, the engine keeps up to ``concurrency``
rollouts in flight: whenever a slot frees it asks its proposers for the next work, from the pool
as it is at that moment, and each piece settles on its own when its rollouts come back. Which proposal
finishes first depends on timing, so every step that acts on the search takes a journaled turn
(turns.py): a killed run resumes exactly, and with one proposal in flight (``concurrency=1``, or
``parallel_proposals=1``) or a deterministic clock the same seed gives the same result.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Sequence

from gepa_graph import pareto
from gepa_graph.budget import Budget, BudgetExhausted
from gepa_graph.candidate import Candidate
from gepa_graph.config import OptimizeConfig
from gepa_graph.evaluation import EvalResult, Evaluator
from gepa_graph.events import (
    BudgetUpdated,
    CandidateAccepted,
    Event,
    EventBus,
    MinibatchEvaluated,
    OptimizationFinished,
    OptimizationStarted,
    ProposalRejected,
)
from gepa_graph.example import Example
from gepa_graph.lm import ReflectionLM
from gepa_graph.proposers.base import Proposer, shown
from gepa_graph.result import CandidateRecord, Result
from gepa_graph.state import OptimizerState
from gepa_graph.store import RunStore
from gepa_graph.strategies import Strategies, build, contenders
from gepa_graph.strategies.base import scores_of
from gepa_graph.system import System, check_modules_used
from gepa_graph.turns import Turns

log = logging.getLogger("gepa_graph")

# A proposal starts beside others already in flight only once they have run this long without
# ending: work that finishes fast (a quick system, a cached minibatch) then goes one proposal
# at a time, each seeing the last one's outcome, as sequential GEPA does; slow rollouts (a
# remote LLM) fill the free slots after this short wait.
OVERLAP_AFTER_S = 0.1
# Proposals in a row from one parent that produced nothing new (its minibatch known, its child
# a repeat) before the parent counts as exhausted and selection turns to other candidates.
EXHAUSTED_AFTER = 5


class Engine:
    """One optimization run: ``optimize`` builds it from its collaborators and awaits ``run``.

    It is also the view the strategies read (``iteration``, ``best_id``, ``mean``, ``known``,
    ``exhausted``, ``budget_stop_reason``, and the pool in ``candidates``/``scores``); those
    reads see the search only as of the last turn taken, never mid-step.
    """

    def __init__(
        self,
        system: System,
        trainset: Sequence[Example],
        valset: Sequence[Example],
        evaluator: Evaluator,
        reflection_lm: ReflectionLM,
        proposers: Sequence[Proposer],
        config: OptimizeConfig,
        budget: Budget,
        bus: EventBus,
        seed_prompts: dict[str, str],
        store: RunStore,
        strategies: Strategies | None = None,
    ) -> None:
        self.system = system
        self.trainset = list(trainset)
        self.valset = list(valset)
        self.val_keys = [ex.key for ex in self.valset]
        self.evaluator = evaluator
        self.reflection_lm = reflection_lm
        self.proposers = list(proposers)  # asked in order for the next work: merge first
        self.config = config
        self.budget = budget
        self.bus = bus
        self.store = store
        self.run_dir = store.directory
        self.journal = store.journal
        self.rng = random.Random(config.seed)
        self.strategies = strategies or build(config)
        self.modules = list(seed_prompts)
        self.seed = Candidate(prompts=dict(seed_prompts))
        self.turns = Turns(self.journal, self.journal.turns)
        # Proposals in flight at most: by default enough for half the slots to run minibatches
        # while the rest validate (benchmarks/concurrency_quality.py: more in flight buys wall
        # time with rollouts, since proposals from a pool about to change repeat each other);
        # 1 is the sequential GEPA loop.
        self.proposal_cap = config.parallel_proposals or max(
            1, math.ceil(config.concurrency / (2 * config.minibatch_size))
        )
        self.evaluator.on_rollout_done.append(self._on_rollout_done)
        self._slot_waiters: list[asyncio.Future] = []
        self._plans = 0  # planning steps taken (their turns are plan.0, plan.1, ...)
        self._best_seen = -math.inf
        self._started = time.monotonic()
        self.validating: set[str] = set()  # candidates being validated now
        self._known: dict[tuple[str, str], float] = {}  # (candidate, example uid) -> score

        self.candidates: dict[str, Candidate] = {}
        self.scores: dict[str, dict[str, float]] = {}
        self.reflected: set[tuple[str, tuple[str, ...], tuple[str, ...]]] = set()
        self.attempts: dict[tuple[str, str], list[tuple[str, str]]] = {}  # rejected rewrites
        self.proposed: set[str] = set()  # ids of every mutation child proposed so far
        self.parent_idle: dict[str, int] = {}  # parent id -> proposals in a row with nothing new
        self.stale_iterations = 0
        self.idle_iterations = 0
        self.state = OptimizerState(
            reflection_lm=reflection_lm.name,
            config=config.model_dump(mode="json"),
            seed_prompts=dict(seed_prompts),
            train_keys=[ex.key for ex in self.trainset],
            val_keys=self.val_keys,
        )

    # ---------------------------------------------------------------- the view strategies read

    @property
    def iteration(self) -> int:
        """Proposals and merges started so far (each takes the next number; the seed is 0).
        With several in flight, the highest started, not the last finished."""
        return self.state.iteration

    @property
    def best_id(self) -> str:
        """The pool's best candidate: highest mean validation score among those scored on
        every validation example, the earliest on ties. Needs the seed in the pool."""
        return pareto.best_candidate(self.scores, self.val_keys, list(self.scores))

    def mean(self, candidate_id: str) -> float:
        """Mean validation score of a pooled candidate over the examples it has run (a child
        stopped early by screening has a partial mean); KeyError if it is not in the pool."""
        return pareto.mean_score(self.scores[candidate_id], self.val_keys)

    @property
    def exhausted(self) -> set[str]:
        """Candidates whose last proposals yielded nothing new: parent selection skips them
        while others remain, so a run explores instead of stalling."""
        return {cid for cid, idle in self.parent_idle.items() if idle >= EXHAUSTED_AFTER}

    def known(self, candidate_id: str, examples: Sequence[Example]) -> dict[str, float]:
        """Scores the search has seen: results reach it at a step's turn, never the moment a
        rollout lands in the evaluator's cache, so decisions do not depend on timing."""
        return {
            ex.key: self._known[(candidate_id, ex.uid)]
            for ex in examples
            if (candidate_id, ex.uid) in self._known
        }

    def unknown(self, candidate: Candidate, examples: Sequence[Example]) -> int:
        """How many of ``examples`` the search has not yet seen ``candidate`` run."""
        return len(examples) - len(self.known(candidate.id, examples))

    def budget_stop_reason(self) -> str | None:
        """The budget limit reached (``max_rollouts``, ``max_cost_usd``, ``max_seconds``), or
        None while every limit leaves room: for the stop strategy."""
        return self.budget.stop_reason()

    async def evaluate(self, candidate: Candidate, examples: Sequence[Example]) -> list[EvalResult]:
        """Scores of a candidate on examples; the step after it waits for its turn. Raises
        BudgetExhausted, spending nothing, once the cost or time budget is used up, so work
        in flight stops at its next batch."""
        reason = self.budget.stop_reason()
        if reason in ("max_cost_usd", "max_seconds") and not self.turns.replaying:
            raise BudgetExhausted(reason)
        results = await self.evaluator.evaluate(candidate, examples)
        await self.turns.take()
        for example, result in zip(examples, results, strict=True):
            self._known[(candidate.id, example.uid)] = result.score
        return results

    # ---------------------------------------------------------------- plumbing

    def emit(self, event: Event) -> None:
        """Tell listeners, except while a resumed run replays its journal (they were told)."""
        if self.turns.replaying and not isinstance(
            event, (OptimizationStarted, OptimizationFinished)
        ):
            return
        self.bus.emit(event)

    def _ledger(self):
        self.state.ledger = self.budget.snapshot()
        return self.state.ledger

    def _checkpoint(self) -> None:
        self._ledger()
        self.store.save_state(self.state)

    def reject(
        self,
        kind: str,
        reason: str,
        detail: str = "",
        module: str | None = None,
        parent_ids: tuple[str, ...] = (),
        text: str | None = None,
        iteration: int | None = None,
    ) -> None:
        """Record a proposal that does not join the pool (kept in the checkpoint) and tell
        listeners; ``iteration`` defaults to the latest started."""
        rejection = ProposalRejected(
            iteration=self.state.iteration if iteration is None else iteration,
            kind=kind,
            reason=reason,
            detail=detail,
            module=module,
            parent_ids=parent_ids,
            proposed_text=text,
        )
        self.state.rejected.append(rejection)
        self.emit(rejection)

    # ---------------------------------------------------------------- the loop

    async def run(self) -> Result:
        """Evaluate the seed, then run proposals until the stop strategy or the budget ends
        the search; the Result of the checkpoint as it stands. Call it once per Engine.

        Emits OptimizationStarted first and OptimizationFinished last. On an error or an
        interrupt the exception propagates after the checkpoint is saved as ``running`` (so
        the run can resume); BudgetExhausted is a normal stop, not an error."""
        self.emit(
            OptimizationStarted(
                run_dir=str(self.run_dir) if self.run_dir else None,
                resumed=self.turns.replaying,
                config=self.state.config,
                seed_prompts=self.seed.prompts,
                n_train=len(self.trainset),
                n_val=len(self.valset),
                reflection_lm=self.reflection_lm.name,
            )
        )
        self._started = time.monotonic()
        stop_reason = None
        interrupted = False
        try:
            self.turns.own("seed")
            await self.admit(self.seed, 0)
            check_modules_used(
                self.modules,
                [
                    result.trace
                    for example in self.valset
                    if (result := self.evaluator.cached(self.seed.id, example)) is not None
                ],
            )
            self._best_seen = self.mean(self.best_id)
            stop_reason = await self._steady_state()
            await self._complete_contenders()
        except BudgetExhausted:
            stop_reason = self.budget.stop_reason() or "max_rollouts"
        except (asyncio.CancelledError, KeyboardInterrupt):
            interrupted = True  # Ctrl-C
            raise
        finally:
            # An error or interrupt leaves stop_reason None: the checkpoint then stays
            # "running" (or says "interrupted"), so the run can be resumed.
            self.state.stop_reason = stop_reason
            self.state.status = (
                "finished"
                if stop_reason is not None
                else "interrupted"
                if interrupted
                else "running"
            )
            if self.candidates:
                self._checkpoint()
            self.journal.close()
        result = self.state.to_result(self.run_dir)
        self.emit(OptimizationFinished.of(result))
        return result

    async def _steady_state(self) -> str:
        """Keep up to ``concurrency`` rollouts in flight: start a due merge or a proposal
        (from a child being validated, else from the pool as it is now) whenever a slot is
        free and fewer than ``proposal_cap`` are running; a proposal that ended is replaced
        at once, and one starts beside others only once they outlast OVERLAP_AFTER_S. Each
        settles on its own as its rollouts come back. Returns why the run stopped."""
        tasks: dict[asyncio.Task, str] = {}
        blocked = False  # nothing worth starting fit: wait for work in flight to end
        owed = 0  # proposals that ended and are not yet replaced
        burst = False  # work in flight outlasted OVERLAP_AFTER_S: fill the free slots now
        last_start = -math.inf
        clock = asyncio.get_running_loop()
        try:
            while True:
                ended = _reap(tasks)
                if ended:
                    blocked, owed = False, owed + ended
                label = f"plan.{self._plans}"
                if self.turns.replaying:
                    if self.turns.next == label:
                        await self._start_next(tasks, label)
                    elif self.turns.next_owner not in tasks.values():
                        self.turns.diverge(
                            f"the journal's step {self.turns.next} belongs to no work in flight"
                        )
                    else:
                        await _first_of(tasks, self.turns.changed())
                    continue
                stop = self.strategies.stop.stop_reason(self)
                wait = None
                if stop is not None:
                    if not tasks:
                        return stop
                elif (
                    not blocked
                    and len(tasks) < self.proposal_cap
                    and self.evaluator.pending < self.config.concurrency
                ):
                    overlap = bool(tasks) and (
                        burst or clock.time() - last_start >= OVERLAP_AFTER_S
                    )
                    if not tasks or owed or overlap:
                        if await self._start_next(tasks, label):
                            last_start = clock.time()
                            burst, owed = overlap and not owed, max(owed - 1, 0)
                            continue
                        if not tasks:
                            return "max_rollouts"
                        blocked = True
                    else:
                        wait = OVERLAP_AFTER_S - (clock.time() - last_start)
                burst = False
                await _first_of(tasks, self._slot_freed(), wait)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _start_next(self, tasks: dict[asyncio.Task, str], label: str) -> bool:
        """Ask the proposers, in order, for the next work and start it as a task named by its
        iteration; False if none has work that fits the budget."""
        await self.turns.take(label)
        self._plans += 1
        for proposer in self.proposers:
            work = proposer.start(self, self.budget.available, not tasks)
            if work is not None:
                tasks[asyncio.create_task(work)] = str(self.state.iteration)
                return True
        return False

    def _slot_freed(self) -> asyncio.Future:
        """A future done when the next rollout frees its slot."""
        future = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(future)
        return future

    def _on_rollout_done(self) -> None:
        waiters, self._slot_waiters = self._slot_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def finished(self, spent: bool) -> None:
        """Book-keeping when a proposal or merge ends: the stale and idle counters the stop
        conditions read, and the budget event."""
        best = self.mean(self.best_id)
        improved = best > self._best_seen
        self._best_seen = max(best, self._best_seen)
        self.stale_iterations = 0 if improved else self.stale_iterations + 1
        self.idle_iterations = 0 if spent else self.idle_iterations + 1
        self._emit_budget()

    def _emit_budget(self) -> None:
        best = self.best_id
        elapsed = time.monotonic() - self._started
        self.emit(
            BudgetUpdated(
                iteration=self.state.iteration,
                ledger=self._ledger(),
                best_score=self.mean(best),
                best_id=best,
                pool_size=len(self.candidates),
                pareto_score=pareto.pareto_aggregate(self.scores, self.val_keys),
                rollouts_in_flight=self.evaluator.running,
                slot_utilization=(
                    self.evaluator.busy_seconds / (self.config.concurrency * elapsed)
                    if elapsed > 0
                    else None
                ),
            )
        )

    # ---------------------------------------------------------------- validation

    async def admit(self, candidate: Candidate, iteration: int) -> bool:
        """Validate a candidate as the validation policy says and add it to the pool; True if
        it joined. Its validation's rollouts are held first, so work started meanwhile cannot
        take them; a candidate the budget cannot validate is rejected (the seed: the run
        stops with BudgetExhausted)."""
        need = self.unknown(candidate, self.valset)
        room = self.budget.available
        if room is not None and need > room:
            if candidate.origin == "seed":
                raise BudgetExhausted("the budget does not cover evaluating the seed")
            self.reject(
                candidate.origin,
                "budget_exhausted",
                "no budget left to validate it",
                next(iter(candidate.changed_modules), None),
                candidate.parent_ids,
                iteration=iteration,
            )
            return False
        hold = self.budget.hold(need)
        self.budget.charge(hold)
        self.validating.add(candidate.id)
        try:
            (verdict,) = await self.strategies.validation.validate(self, [candidate])
            # The policy may have run its steps in tasks of its own: act only at a turn taken
            # here, so nothing else moves between the last rollout and the pool changing.
            await self.turns.take()
        finally:
            self.budget.release(hold)
            self.validating.discard(candidate.id)
        if verdict.rejection is None:
            self._register(candidate, verdict.scores, iteration)
            return True
        reason, detail = verdict.rejection
        module = "+".join(candidate.changed_modules) or None
        self.reject(
            candidate.origin,
            reason,
            detail,
            module,
            candidate.parent_ids,
            shown({m: candidate.prompts[m] for m in candidate.changed_modules}),
            iteration=iteration,
        )
        return False

    async def _complete_contenders(self) -> None:
        """Final selection: run the partial candidates that could still beat the best
        (``strategies.contenders``) on the rest of the validation set, the most promising
        first, while the budget allows, so the best is the best on the whole set."""
        self.turns.own("final")
        while fits := [
            c
            for c in contenders(self)
            if self.budget.available is None
            or self.unknown(c, self.valset) <= self.budget.available
        ]:
            done = scores_of(await self.evaluate(fits[0], self.valset))
            self.scores[fits[0].id] = done
            at = next(i for i, r in enumerate(self.state.candidates) if r.id == fits[0].id)
            self.state.candidates[at] = self.state.candidates[at].model_copy(
                update={
                    "val_scores": done,
                    "mean_score": self.mean(fits[0].id),
                    "rollouts_at_discovery": self.budget.ledger.rollouts_used,
                }
            )
            self.state.best_id = self.best_id

    def _register(self, candidate: Candidate, scores: dict[str, float], iteration: int) -> None:
        best_before = self.mean(self.best_id) if self.scores else None
        self.candidates[candidate.id] = candidate
        self.scores[candidate.id] = {k: scores[k] for k in self.val_keys if k in scores}
        mean = self.mean(candidate.id)
        record = CandidateRecord(
            id=candidate.id,
            prompts=candidate.prompts,
            parent_ids=candidate.parent_ids,
            origin=candidate.origin,
            changed_modules=candidate.changed_modules,
            val_scores=self.scores[candidate.id],
            mean_score=mean,
            iteration=iteration,
            rollouts_at_discovery=self.budget.ledger.rollouts_used,
        )
        self.state.candidates.append(record)
        self.state.best_id = self.best_id
        complete = pareto.is_complete(self.scores[candidate.id], self.val_keys)
        self.emit(
            CandidateAccepted(
                candidate=record,
                is_best=best_before is None or (complete and mean > best_before),
            )
        )
        self._checkpoint()

    def emit_minibatch(
        self,
        iteration: int,
        candidate: Candidate,
        role: str,
        examples: Sequence[Example],
        results: Sequence[EvalResult],
    ) -> None:
        """Tell listeners how a candidate scored on a minibatch (``role``: parent or child)."""
        self.emit(
            MinibatchEvaluated(
                iteration=iteration,
                candidate_id=candidate.id,
                role=role,
                example_keys=tuple(ex.key for ex in examples),
                scores=tuple(r.score for r in results),
            )
        )


def _reap(tasks: dict[asyncio.Task, str]) -> int:
    """Forget finished work (how many ended); an error in one (a bug, an interrupt) stops
    the run."""
    done = [t for t in tasks if t.done()]
    for task in done:
        del tasks[task]
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()
    return len(done)


async def _first_of(
    tasks: dict[asyncio.Task, str], signal: Awaitable[None], timeout: float | None = None
) -> None:
    """Wait until some work in flight finishes or ``signal`` fires (or ``timeout`` passes)."""
    waiter = asyncio.ensure_future(signal)
    try:
        await asyncio.wait([*tasks, waiter], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
