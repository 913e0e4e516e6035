"""The GEPA loop, steady state. It decides through its strategies and acts through its
collaborators: the strategies (gepa_graph/strategies/) choose parent, modules, minibatch,
acceptance, validation, merges and when to stop; the Evaluator runs rollouts, the reflective
proposer writes prompts, the EventBus tells listeners, the journal and checkpoint persist.

Instead of rounds that wait for their slowest member, the engine keeps up to ``concurrency``
rollouts in flight: whenever a slot frees it starts the next proposal from the pool as it is at
that moment, and each proposal settles on its own when its rollouts come back. Which proposal
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
from dataclasses import dataclass, field

from gepa_graph import pareto
from gepa_graph.budget import Budget, BudgetExhausted, Hold
from gepa_graph.candidate import Candidate
from gepa_graph.config import OptimizeConfig
from gepa_graph.evaluation import EvalResult, Evaluator
from gepa_graph.events import (
    BudgetUpdated,
    CandidateAccepted,
    Event,
    EventBus,
    IterationStarted,
    MinibatchEvaluated,
    OptimizationFinished,
    OptimizationStarted,
    ProposalRejected,
    ReflectionCalled,
)
from gepa_graph.example import Example
from gepa_graph.lm import LMCallFailed, ReflectionLM
from gepa_graph.proposers.merge import MergePlan, balanced_subsample
from gepa_graph.proposers.reflective import Reflection, ReflectiveProposer
from gepa_graph.reflection import InvalidProposal
from gepa_graph.replay import ReflectionReplay
from gepa_graph.result import CandidateRecord, Result
from gepa_graph.state import OptimizerState
from gepa_graph.store import RunStore
from gepa_graph.strategies import ProposalOutcome, Strategies, build
from gepa_graph.system import System, check_modules_used, node_of
from gepa_graph.turns import Turns

log = logging.getLogger("gepa_graph")

# Minibatches drawn for one proposal before giving up on finding one not yet reflected on
# for the same parent and modules.
MINIBATCH_DRAWS = 4
# A proposal starts beside others already in flight only once they have run this long without
# ending: work that finishes fast (a quick system, a cached minibatch) then goes one proposal
# at a time, each seeing the last one's outcome, as sequential GEPA does; slow rollouts (a
# remote LLM) fill the free slots after this short wait.
OVERLAP_AFTER_S = 0.1
# Proposals in a row from one parent that produced nothing new (its minibatch known, its child
# a repeat) before the parent counts as exhausted and selection turns to other candidates.
EXHAUSTED_AFTER = 5


@dataclass
class _Plan:
    iteration: int
    parent: Candidate
    modules: tuple[str, ...]
    minibatch: list[Example]
    repeat: bool = False  # every draw was a (parent, modules, minibatch) already reflected on
    fresh: bool = False  # the parent had not yet run some of the minibatch
    hold: Hold | None = None  # its worst case held: minibatches and the child's validation
    # When its parent was still being validated as it started: whether the parent joined.
    parent_verdict: asyncio.Future | None = None


@dataclass
class _Outcome:
    plan: _Plan
    parent_results: list[EvalResult]
    reflections: list[tuple[str, Reflection]] = field(default_factory=list)
    child: Candidate | None = None
    child_results: list[EvalResult] | None = None
    rejection: tuple[str, str, str | None] | None = None  # reason, detail, proposed text
    status: str = "passed"  # for the module selector: skipped, invalid, tied, worse, passed
    implicated: tuple[str, ...] = ()


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
        replay: ReflectionReplay,
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
        self.proposer = ReflectiveProposer(reflection_lm, replay, config.max_chars_per_field)
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
            1, math.ceil(config.concurrency / (2 * config.minibatch_size)))
        self.evaluator.on_rollout_done.append(self._on_rollout_done)
        self._slot_waiters: list[asyncio.Future] = []
        self._plans = 0  # planning steps taken (their turns are plan.0, plan.1, ...)
        self._best_seen = -math.inf
        self._started = time.monotonic()
        self.validating: set[str] = set()  # candidates being validated now
        self._known: dict[tuple[str, str], float] = {}  # (candidate, example) -> score seen
        # Children that won their minibatch and are being validated, not yet continued: the
        # next proposal starts from one of them (speculatively, as sequential GEPA would most
        # likely pick the child it just accepted), instead of from a pool about to change.
        self._chain: list[Candidate] = []
        self._verdicts: dict[str, asyncio.Future] = {}  # child id -> did it join the pool

        self.candidates: dict[str, Candidate] = {}
        self.scores: dict[str, dict[str, float]] = {}
        self.tried_merges: set[str] = set()
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
        return {ex.key: self._known[(candidate_id, ex.key)] for ex in examples
                if (candidate_id, ex.key) in self._known}

    def _unknown(self, candidate: Candidate, examples: Sequence[Example]) -> int:
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
        for result in results:
            self._known[(candidate.id, result.example_key)] = result.score
        return results

    # ---------------------------------------------------------------- plumbing

    def _emit(self, event: Event) -> None:
        """Tell listeners, except while a resumed run replays its journal (they were told)."""
        if self.turns.replaying and not isinstance(event, (OptimizationStarted,
                                                            OptimizationFinished)):
            return
        self.bus.emit(event)

    def _ledger(self):
        self.state.ledger = self.budget.snapshot()
        return self.state.ledger

    def _checkpoint(self) -> None:
        self._ledger()
        self.store.save_state(self.state)

    def _reject(self, kind: str, reason: str, detail: str = "", module: str | None = None,
                parent_ids: tuple[str, ...] = (), text: str | None = None,
                iteration: int | None = None) -> None:
        rejection = ProposalRejected(
            iteration=self.state.iteration if iteration is None else iteration, kind=kind,
            reason=reason, detail=detail, module=module, parent_ids=parent_ids,
            proposed_text=text,
        )
        self.state.rejected.append(rejection)
        self._emit(rejection)

    # ---------------------------------------------------------------- the loop

    async def run(self) -> Result:
        """Evaluate the seed, then run proposals until the stop strategy or the budget ends
        the search; the Result of the checkpoint as it stands. Call it once per Engine.

        Emits OptimizationStarted first and OptimizationFinished last. On an error or an
        interrupt the exception propagates after the checkpoint is saved as ``running`` (so
        the run can resume); BudgetExhausted is a normal stop, not an error."""
        self._emit(OptimizationStarted(
            run_dir=str(self.run_dir) if self.run_dir else None,
            resumed=self.turns.replaying,
            config=self.state.config,
            seed_prompts=self.seed.prompts,
            n_train=len(self.trainset),
            n_val=len(self.valset),
            reflection_lm=self.reflection_lm.name,
        ))
        self._started = time.monotonic()
        stop_reason = None
        try:
            self.turns.own("seed")
            await self._admit(self.seed, 0)
            check_modules_used(self.modules, [
                result.trace for example in self.valset
                if (result := self.evaluator.cached(self.seed.id, example.key)) is not None
            ])
            self._best_seen = self.mean(self.best_id)
            stop_reason = await self._steady_state()
        except BudgetExhausted:
            stop_reason = self.budget.stop_reason() or "max_rollouts"
        finally:
            # An error or interrupt leaves stop_reason None: the checkpoint then stays
            # "running", so the run can be resumed.
            self.state.stop_reason = stop_reason
            self.state.status = "running" if stop_reason is None else "finished"
            if self.candidates:
                self._checkpoint()
            self.journal.close()
        result = self.state.to_result(self.run_dir)
        self._emit(OptimizationFinished(
            stop_reason=stop_reason, best_id=result.best_id, best_score=result.best_score,
            seed_score=result.seed_score, ledger=result.ledger, iterations=result.iterations,
            result=result,
        ))
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
                    elif self.turns.next.rsplit(".", 1)[0] not in tasks.values():
                        self.turns.diverge(f"the journal's step {self.turns.next} belongs to "
                                           "no work in flight")
                    else:
                        await _first_of(tasks, self.turns.changed())
                    continue
                stop = self.strategies.stop.stop_reason(self)
                wait = None
                if stop is not None:
                    if not tasks:
                        return stop
                elif (not blocked and len(tasks) < self.proposal_cap
                      and self.evaluator.pending < self.config.concurrency):
                    overlap = bool(tasks) and (
                        burst or clock.time() - last_start >= OVERLAP_AFTER_S)
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
        """Plan the next merge or proposal and start it; False if none fits the budget."""
        await self.turns.take(label)
        self._plans += 1
        merge = self._plan_merge()
        if merge is not None:
            tasks[asyncio.create_task(self._merge(*merge))] = str(merge[0])
            return True
        parent = self._chain.pop(0) if self._chain else None
        plan = self._plan(self.budget.available, alone=not tasks, parent=parent)
        if plan is None:
            return False
        tasks[asyncio.create_task(self._proposal(plan))] = str(plan.iteration)
        return True

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

    def _finished(self, spent: bool) -> None:
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
        self._emit(BudgetUpdated(
            iteration=self.state.iteration,
            ledger=self._ledger(),
            best_score=self.mean(best),
            best_id=best,
            pool_size=len(self.candidates),
            pareto_score=pareto.pareto_aggregate(self.scores, self.val_keys),
            rollouts_in_flight=self.evaluator.running,
            slot_utilization=(self.evaluator.busy_seconds / (self.config.concurrency * elapsed)
                              if elapsed > 0 else None),
        ))

    # ---------------------------------------------------------------- mutation

    def _plan(self, room: int | None, alone: bool = True,
              parent: Candidate | None = None) -> _Plan | None:
        """Parent, modules and minibatch of one proposal: every random draw happens here, in
        the main task, when the proposal starts. None when the proposal's worst case (its
        minibatch rollouts and its child's full validation) does not fit in ``room``, or when
        it would only repeat a reflection while other work is in flight (``alone`` False):
        such a proposal cannot fill a slot usefully, so it waits for the pool to move."""
        strategies = self.strategies
        verdict = self._verdicts.get(parent.id) if parent is not None else None
        parent = parent or strategies.parent_selector.select(self)
        modules = strategies.module_selector.select(self, parent)
        for _ in range(MINIBATCH_DRAWS):
            minibatch = strategies.sampler.sample(self, parent)
            key = (parent.id, modules, tuple(sorted(ex.key for ex in minibatch)))
            if key not in self.reflected:
                break
        if key in self.reflected and not alone:
            return None
        parent_runs = len(minibatch) - len(self.known(parent.id, minibatch))
        worst = parent_runs + len(minibatch) + len(self.valset)
        if room is not None and worst > room:
            strategies.module_selector.update(self, parent, modules, ProposalOutcome("skipped"))
            return None
        self.state.iteration += 1
        plan = _Plan(self.state.iteration, parent, modules, minibatch, key in self.reflected,
                     fresh=parent_runs > 0, hold=self.budget.hold(worst),
                     parent_verdict=verdict)
        self.reflected.add(key)
        self._emit(IterationStarted(iteration=plan.iteration, kind="mutation",
                                    parent_ids=(parent.id,), module="+".join(modules)))
        return plan

    async def _proposal(self, plan: _Plan) -> None:
        """One proposal from start to end: minibatches and reflection, then (if its child
        wins the minibatch) validation and the pool."""
        self.turns.own(str(plan.iteration))
        self.budget.charge(plan.hold)
        await self.turns.take()
        try:
            outcome = await self._propose(plan)
        except BudgetExhausted as exc:
            self._reject("mutation", "budget_exhausted", str(exc), "+".join(plan.modules),
                         (plan.parent.id,), iteration=plan.iteration)
            return
        finally:
            self.budget.release(plan.hold)
        child = outcome.child
        if self._settle(outcome):
            if plan.parent_verdict is not None and not await self._parent_joined(plan):
                self._reject("mutation", "parent_rejected", "its parent did not join the pool",
                             "+".join(plan.modules), (plan.parent.id,),
                             _shown({m: child.prompts[m] for m in child.changed_modules}),
                             iteration=plan.iteration)
                self._finished(spent=True)
                return
            verdict = asyncio.get_running_loop().create_future()
            self._verdicts[child.id] = verdict
            self._chain.append(child)
            self.strategies.module_selector.inherit(child.id, plan.parent.id)
            joined = False
            try:
                joined = await self._admit(child, plan.iteration)
            except BudgetExhausted as exc:
                self._reject("mutation", "budget_exhausted", str(exc), "+".join(plan.modules),
                             (plan.parent.id,), iteration=plan.iteration)
                return
            finally:
                if child in self._chain:
                    self._chain.remove(child)
                verdict.set_result(joined)
                self._verdicts.pop(child.id)  # its continuations hold the future
            gain = 0.0
            if joined:
                keys = list(self.scores[child.id])
                gain = self.mean(child.id) - pareto.mean_score(self.scores[plan.parent.id], keys)
            self._tell_selector(outcome, "accepted" if joined else "rejected", child.id, gain)
            if not joined:
                self._remember_attempt(plan, child, "worse on validation")
            self.strategies.merge_scheduler.on_accepted(self, int(joined))
        self._finished(spent=plan.fresh or outcome.child_results is not None)

    async def _parent_joined(self, plan: _Plan) -> bool:
        """Wait for the verdict on a speculative proposal's parent; act at a turn after it."""
        joined = await plan.parent_verdict
        await self.turns.take()
        return joined

    def _tell_selector(self, outcome: _Outcome, status: str, child_id: str | None = None,
                       gain: float = 0.0) -> None:
        self.strategies.module_selector.update(
            self, outcome.plan.parent, outcome.plan.modules,
            ProposalOutcome(status, child_id, gain, outcome.implicated),
        )

    def _remember_attempt(self, plan: _Plan, child: Candidate, why: str) -> None:
        for module in plan.modules:
            if child.prompts[module] != plan.parent.prompts[module]:
                self.attempts.setdefault((plan.parent.id, module), []).append(
                    (child.prompts[module], why))

    def _implicated(self, results: Sequence[EvalResult]) -> tuple[str, ...]:
        """Modules whose feedback names a failure on these results."""
        perfect = self.config.perfect_score
        return tuple(m for m in self.modules
                     if any(r.score < perfect and r.feedback_for(m) for r in results))

    async def _propose(self, plan: _Plan) -> _Outcome:
        """Parent minibatch, reflection(s), child minibatch. Emits nothing."""
        parent = plan.parent
        outcome = _Outcome(plan, await self.evaluate(parent, plan.minibatch))
        outcome.implicated = self._implicated(outcome.parent_results)
        if self.config.skip_perfect_score and all(
            r.score >= self.config.perfect_score for r in outcome.parent_results
        ):
            outcome.rejection = ("parent_perfect_on_minibatch", "nothing to learn from", None)
            outcome.status = "skipped"
            return outcome
        if plan.repeat:
            outcome.rejection = ("already_reflected", "the same parent, modules and minibatch "
                                 "were reflected on before", None)
            outcome.status = "invalid"
            return outcome
        shown = self.config.rejected_attempts_shown
        try:
            replies = await asyncio.gather(*(
                self.proposer.reflect(
                    parent, module, node_of(self.system, module), plan.minibatch,
                    outcome.parent_results,
                    self.attempts.get((parent.id, module), [])[-shown:] if shown else (),
                )
                for module in plan.modules
            ))
        except LMCallFailed as exc:
            await self.turns.take()
            outcome.rejection = ("reflection_failed", str(exc), None)
            outcome.status = "invalid"
            return outcome
        await self.turns.take()
        outcome.reflections = list(zip(plan.modules, replies, strict=True))
        texts: dict[str, str] = {}
        invalid: InvalidProposal | None = None
        for module, reflection in outcome.reflections:
            try:
                texts[module] = self.proposer.proposal(parent, module, reflection)
            except InvalidProposal as exc:
                invalid = invalid or exc
        if not texts:
            outcome.rejection = (invalid.reason, invalid.detail, invalid.text)
            outcome.status = "invalid"
            return outcome
        child = outcome.child = parent.mutate_many(texts)
        if child.id in self.candidates or child.id in self.validating:
            outcome.rejection = ("duplicate_candidate", f"same prompts as {child.id}",
                                 _shown(texts))
            outcome.status = "invalid"
            return outcome
        outcome.child_results = await self.evaluate(child, plan.minibatch)
        reason = self.strategies.acceptance.reject_reason(outcome.parent_results,
                                                          outcome.child_results)
        if reason is not None:
            outcome.rejection = ("not_better_on_minibatch", reason, _shown(texts))
            before = sum(r.score for r in outcome.parent_results)
            after = sum(r.score for r in outcome.child_results)
            outcome.status = "tied" if after == before else "worse"
        return outcome

    def _settle(self, outcome: _Outcome) -> bool:
        """Report a proposal's outcome; True if its child earned a validation run."""
        plan, child = outcome.plan, outcome.child
        new = plan.fresh or (child is not None and child.id not in self.proposed)
        self.parent_idle[plan.parent.id] = 0 if new else self.parent_idle.get(plan.parent.id, 0) + 1
        if child is not None:
            self.proposed.add(child.id)
        self._emit_minibatch(plan.iteration, plan.parent, "parent", plan.minibatch,
                             outcome.parent_results)
        for module, reflection in outcome.reflections:
            self.budget.add_reflection_call()
            self.budget.add_reflection_cost(reflection.response.usage.cost_usd)
            self._emit(ReflectionCalled(
                iteration=plan.iteration, module=module, parent_id=plan.parent.id,
                prompt=reflection.prompt, reply=reflection.response.text,
                cost_usd=reflection.response.usage.cost_usd,
            ))
        if outcome.child_results is not None:
            self._emit_minibatch(plan.iteration, child, "child", plan.minibatch,
                                 outcome.child_results)
        rejection = outcome.rejection
        if rejection is None and (child.id in self.candidates or child.id in self.validating):
            rejection = ("duplicate_candidate", f"same prompts as {child.id}",
                         _shown({m: child.prompts[m] for m in child.changed_modules}))
            outcome.status = "invalid"
        if rejection is None:
            return True
        reason, detail, text = rejection
        self._reject("mutation", reason, detail, "+".join(plan.modules), (plan.parent.id,),
                     text, iteration=plan.iteration)
        self._tell_selector(outcome, outcome.status)
        if child is not None and reason in ("not_better_on_minibatch", "duplicate_candidate"):
            self._remember_attempt(plan, child, detail)
        return False

    # ---------------------------------------------------------------- merge

    def _plan_merge(self) -> tuple[int, MergePlan, list[Example], Hold] | None:
        """A due merge that fits the budget: (iteration, plan, subsample, rollouts held)."""
        if not self.config.use_merge:
            return None
        room = self.budget.available
        if room is not None and room < self.config.merge_subsample_size + len(self.valset):
            return None
        plan = self.strategies.merge_scheduler.next_merge(self, self.tried_merges)
        if plan is None:
            return None
        self.state.iteration += 1
        self.tried_merges.add(plan.child.id)
        self._emit(IterationStarted(iteration=self.state.iteration, kind="merge",
                                    parent_ids=(plan.left, plan.right)))
        keys = balanced_subsample(
            self.val_keys, self.scores[plan.left], self.scores[plan.right],
            self.config.merge_subsample_size, self.rng,
        )
        by_key = {ex.key: ex for ex in self.valset}
        subsample = [by_key[k] for k in keys]
        hold = self.budget.hold(self._unknown(plan.child, subsample) + len(self.valset))
        return self.state.iteration, plan, subsample, hold

    async def _merge(self, iteration: int, plan: MergePlan, subsample: list[Example],
                     hold: Hold) -> None:
        """Run a merge child on its subsample; if it does no worse than its better parent
        there, validate it."""
        self.turns.own(str(iteration))
        self.budget.charge(hold)
        await self.turns.take()
        child, parents = plan.child, (plan.left, plan.right)
        try:
            results = await self.evaluate(child, subsample)
        except BudgetExhausted as exc:
            self._reject("merge", "budget_exhausted", str(exc), parent_ids=parents,
                         iteration=iteration)
            return
        finally:
            self.budget.release(hold)
        merged = sum(r.score for r in results)
        best_parent = max(sum(self.scores[p][ex.key] for ex in subsample) for p in parents)
        if merged < best_parent:
            self._reject("merge", "worse_than_parents_on_subsample",
                         f"subsample score {merged:g} vs best parent {best_parent:g}",
                         parent_ids=parents, iteration=iteration)
        elif child.id in self.candidates or child.id in self.validating:
            self._reject("merge", "duplicate_candidate", f"same prompts as {child.id}",
                         parent_ids=parents, iteration=iteration)
        else:
            self.strategies.module_selector.inherit(child.id, plan.left)
            try:
                await self._admit(child, iteration)
            except BudgetExhausted:
                pass  # the run is at its cost or time limit: the merge ends unvalidated
        self._finished(spent=True)

    # ---------------------------------------------------------------- validation

    async def _admit(self, candidate: Candidate, iteration: int) -> bool:
        """Validate a candidate as the validation policy says and add it to the pool; True if
        it joined. Its validation's rollouts are held first, so work started meanwhile cannot
        take them; a candidate the budget cannot validate is rejected (the seed: the run
        stops with BudgetExhausted)."""
        need = self._unknown(candidate, self.valset)
        room = self.budget.available
        if room is not None and need > room:
            if candidate.origin == "seed":
                raise BudgetExhausted("the budget does not cover evaluating the seed")
            self._reject(candidate.origin, "budget_exhausted", "no budget left to validate it",
                         next(iter(candidate.changed_modules), None), candidate.parent_ids,
                         iteration=iteration)
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
        self._reject(candidate.origin, reason, detail, module, candidate.parent_ids,
                     _shown({m: candidate.prompts[m] for m in candidate.changed_modules}),
                     iteration=iteration)
        return False

    def _register(self, candidate: Candidate, scores: dict[str, float], iteration: int) -> None:
        best_before = self.mean(self.best_id) if self.scores else None
        self.candidates[candidate.id] = candidate
        self.scores[candidate.id] = {k: scores[k] for k in self.val_keys if k in scores}
        mean = self.mean(candidate.id)
        record = CandidateRecord(
            id=candidate.id, prompts=candidate.prompts, parent_ids=candidate.parent_ids,
            origin=candidate.origin, changed_modules=candidate.changed_modules,
            val_scores=self.scores[candidate.id], mean_score=mean,
            iteration=iteration, rollouts_at_discovery=self.budget.ledger.rollouts_used,
        )
        self.state.candidates.append(record)
        self.state.best_id = self.best_id
        complete = pareto.is_complete(self.scores[candidate.id], self.val_keys)
        self._emit(CandidateAccepted(
            candidate=record, is_best=best_before is None or (complete and mean > best_before),
        ))
        self._checkpoint()

    def _emit_minibatch(self, iteration: int, candidate: Candidate, role: str,
                        examples: Sequence[Example], results: Sequence[EvalResult]) -> None:
        self._emit(MinibatchEvaluated(
            iteration=iteration, candidate_id=candidate.id, role=role,
            example_keys=tuple(ex.key for ex in examples),
            scores=tuple(r.score for r in results),
        ))


def _shown(texts: dict[str, str]) -> str | None:
    """A proposal's text as a rejection records it: the module's text, or for a joint
    proposal each module's text under its name."""
    if not texts:
        return None
    if len(texts) == 1:
        return next(iter(texts.values()))
    return "\n\n".join(f"[{module}]\n{text}" for module, text in texts.items())


def _reap(tasks: dict[asyncio.Task, str]) -> int:
    """Forget finished work (how many ended); an error in one (a bug, an interrupt) stops
    the run."""
    done = [t for t in tasks if t.done()]
    for task in done:
        del tasks[task]
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()
    return len(done)


async def _first_of(tasks: dict[asyncio.Task, str], signal: Awaitable[None],
                    timeout: float | None = None) -> None:
    """Wait until some work in flight finishes or ``signal`` fires (or ``timeout`` passes)."""
    waiter = asyncio.ensure_future(signal)
    try:
        await asyncio.wait([*tasks, waiter], timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
