"""The GEPA loop. It decides through its strategies and acts through its collaborators: the
strategies (gepa_graph/strategies/) choose parent, modules, minibatch, acceptance, validation,
merges and when to stop; the Evaluator runs rollouts, the reflective proposer writes prompts,
the EventBus tells listeners, the journal and checkpoint persist.

Every decision depends only on the seed and on results (never on timing or completion order),
which is what makes runs reproducible and resume exact.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

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
    IterationStarted,
    MinibatchEvaluated,
    OptimizationFinished,
    OptimizationStarted,
    ProposalRejected,
    ReflectionCalled,
)
from gepa_graph.example import Example
from gepa_graph.lm import LMCallFailed, ReflectionLM
from gepa_graph.proposers.merge import balanced_subsample
from gepa_graph.proposers.reflective import Reflection, ReflectiveProposer
from gepa_graph.reflection import InvalidProposal
from gepa_graph.replay import ReflectionReplay
from gepa_graph.result import CandidateRecord, Result
from gepa_graph.state import OptimizerState
from gepa_graph.store import RunStore
from gepa_graph.strategies import ProposalOutcome, Strategies, build
from gepa_graph.system import System, check_modules_used, node_of

log = logging.getLogger("gepa_graph")

# Minibatches drawn for one proposal before giving up on finding one not yet reflected on
# for the same parent and modules.
MINIBATCH_DRAWS = 4
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
        replay_until_iteration: int | None = None,
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
        self.replay_until = replay_until_iteration

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
        return self.state.iteration

    @property
    def best_id(self) -> str:
        return pareto.best_candidate(self.scores, self.val_keys, list(self.scores))

    def mean(self, candidate_id: str) -> float:
        return pareto.mean_score(self.scores[candidate_id], self.val_keys)

    @property
    def exhausted(self) -> set[str]:
        """Candidates whose last proposals yielded nothing new: parent selection skips them
        while others remain, so a run explores instead of stalling."""
        return {cid for cid, idle in self.parent_idle.items() if idle >= EXHAUSTED_AFTER}

    def known(self, candidate_id: str, examples: Sequence[Example]) -> dict[str, float]:
        found = {ex.key: self.evaluator.cached(candidate_id, ex.key) for ex in examples}
        return {key: result.score for key, result in found.items() if result is not None}

    def budget_stop_reason(self) -> str | None:
        return self.budget.stop_reason()

    async def evaluate(self, candidate: Candidate, examples: Sequence[Example]) -> list[EvalResult]:
        return await self.evaluator.evaluate(candidate, examples)

    # ---------------------------------------------------------------- plumbing

    def _emit(self, event: Event) -> None:
        """Tell listeners, except for iterations a resumed run is replaying (they were told)."""
        replaying = self.replay_until is not None and self.state.iteration <= self.replay_until
        if replaying and not isinstance(event, (OptimizationStarted, OptimizationFinished)):
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
        self._emit(OptimizationStarted(
            run_dir=str(self.run_dir) if self.run_dir else None,
            resumed=self.replay_until is not None,
            config=self.state.config,
            seed_prompts=self.seed.prompts,
            n_train=len(self.trainset),
            n_val=len(self.valset),
            reflection_lm=self.reflection_lm.name,
        ))
        stop_reason = "unknown"
        try:
            await self._admit([self.seed])
            check_modules_used(self.modules, [
                result.trace for example in self.valset
                if (result := self.evaluator.cached(self.seed.id, example.key)) is not None
            ])
            while (stop_reason := self.strategies.stop.stop_reason(self)) is None:
                iteration_before = self.state.iteration
                spent_before = self.budget.ledger.rollouts_used
                best_before = self.mean(self.best_id)
                if not await self._try_merge():
                    await self._mutation_round()
                steps = self.state.iteration - iteration_before
                improved = self.mean(self.best_id) > best_before
                self.stale_iterations = 0 if improved else self.stale_iterations + steps
                spent = self.budget.ledger.rollouts_used > spent_before
                self.idle_iterations = 0 if spent else self.idle_iterations + steps
                self._emit_budget()
        except BudgetExhausted:
            stop_reason = "max_rollouts"
        finally:
            # An error or interrupt inside the loop leaves stop_reason None (the walrus reset
            # it): the checkpoint then stays "running", so the run can be resumed.
            finished = stop_reason not in (None, "unknown")
            self.state.stop_reason = stop_reason if finished else None
            self.state.status = "finished" if finished else "running"
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

    def _emit_budget(self) -> None:
        best = self.best_id
        self._emit(BudgetUpdated(
            iteration=self.state.iteration,
            ledger=self._ledger(),
            best_score=self.mean(best),
            best_id=best,
            pool_size=len(self.candidates),
            pareto_score=pareto.pareto_aggregate(self.scores, self.val_keys),
        ))

    # ---------------------------------------------------------------- mutation

    def _plan(self, room: int | None) -> _Plan | None:
        """Parent, modules and minibatch of one proposal: every random draw happens here, in
        order, before anything runs concurrently. None when the proposal's worst case (its
        minibatch rollouts and its child's full validation) does not fit in ``room``."""
        strategies = self.strategies
        parent = strategies.parent_selector.select(self)
        modules = strategies.module_selector.select(self, parent)
        for _ in range(MINIBATCH_DRAWS):
            minibatch = strategies.sampler.sample(self, parent)
            key = (parent.id, modules, tuple(sorted(ex.key for ex in minibatch)))
            if key not in self.reflected:
                break
        need = (len(minibatch) - len(self.known(parent.id, minibatch)) + len(minibatch)
                + len(self.valset))
        if room is not None and need > room:
            strategies.module_selector.update(self, parent, modules, ProposalOutcome("skipped"))
            return None
        self.state.iteration += 1
        plan = _Plan(self.state.iteration, parent, modules, minibatch, key in self.reflected,
                     fresh=len(self.known(parent.id, minibatch)) < len(minibatch))
        self.reflected.add(key)
        self._emit(IterationStarted(iteration=plan.iteration, kind="mutation",
                                    parent_ids=(parent.id,), module="+".join(modules)))
        return plan

    async def _mutation_round(self) -> None:
        """``parallel_proposals`` proposals at once, narrowed so that their worst case fits the
        rollout budget: a round never races for budget, which keeps runs reproducible."""
        width = self.config.parallel_proposals
        if self.config.max_iterations is not None:
            width = min(width, self.config.max_iterations - self.state.iteration)
        plans: list[_Plan] = []
        room = self.budget.rollouts_left
        for _ in range(max(1, width)):
            plan = self._plan(room)
            if plan is None:
                break
            plans.append(plan)
            if room is not None:
                room -= 2 * len(plan.minibatch) + len(self.valset)
        if not plans:
            raise BudgetExhausted("no proposal's minibatch and validation fit in the budget")
        outcomes = await asyncio.gather(*(self._propose(p) for p in plans), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        # Settle in plan order, not completion order: events, rejections and the pool come
        # out the same however the concurrent proposals interleaved.
        passed: list[_Outcome] = []
        for outcome in outcomes:
            if self._settle(outcome, {o.child.id for o in passed}):
                passed.append(outcome)
        joined = await self._admit([o.child for o in passed])
        for outcome in passed:
            plan, child = outcome.plan, outcome.child
            gain = 0.0
            if child.id in joined:
                keys = list(self.scores[child.id])
                gain = self.mean(child.id) - pareto.mean_score(self.scores[plan.parent.id], keys)
            status = "accepted" if child.id in joined else "rejected"
            self._tell_selector(outcome, status, child.id, gain)
            if status == "rejected":
                self._remember_attempt(plan, child, "worse on validation")
        self.strategies.merge_scheduler.on_accepted(self, len(joined))

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
        """Run one proposal: parent minibatch, reflection(s), child minibatch. Emits nothing."""
        parent = plan.parent
        outcome = _Outcome(plan, await self.evaluator.evaluate(parent, plan.minibatch))
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
            outcome.rejection = ("reflection_failed", str(exc), None)
            outcome.status = "invalid"
            return outcome
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
        if child.id in self.candidates:
            outcome.rejection = ("duplicate_candidate", f"same prompts as {child.id}",
                                 _shown(texts))
            outcome.status = "invalid"
            return outcome
        outcome.child_results = await self.evaluator.evaluate(child, plan.minibatch)
        reason = self.strategies.acceptance.reject_reason(outcome.parent_results,
                                                          outcome.child_results)
        if reason is not None:
            outcome.rejection = ("not_better_on_minibatch", reason, _shown(texts))
            before = sum(r.score for r in outcome.parent_results)
            after = sum(r.score for r in outcome.child_results)
            outcome.status = "tied" if after == before else "worse"
        return outcome

    def _settle(self, outcome: _Outcome, taken: set[str]) -> bool:
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
        if rejection is None and child.id in taken:
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

    async def _try_merge(self) -> bool:
        """Attempt one merge if the scheduler has one that fits the budget; True if attempted."""
        if not self.config.use_merge:
            return False
        left = self.budget.rollouts_left
        if left is not None and left < self.config.merge_subsample_size + len(self.valset):
            return False
        plan = self.strategies.merge_scheduler.next_merge(self, self.tried_merges)
        if plan is None:
            return False
        self.state.iteration += 1
        child = plan.child
        self.tried_merges.add(child.id)
        parents = (plan.left, plan.right)
        self._emit(IterationStarted(iteration=self.state.iteration, kind="merge", parent_ids=parents))
        keys = balanced_subsample(
            self.val_keys, self.scores[plan.left], self.scores[plan.right],
            self.config.merge_subsample_size, self.rng,
        )
        by_key = {ex.key: ex for ex in self.valset}
        results = await self.evaluator.evaluate(child, [by_key[k] for k in keys])
        merged = sum(r.score for r in results)
        best_parent = max(sum(self.scores[p][k] for k in keys) for p in parents)
        if merged < best_parent:
            self._reject("merge", "worse_than_parents_on_subsample",
                         f"subsample score {merged:g} vs best parent {best_parent:g}",
                         parent_ids=parents)
            return True
        self.strategies.module_selector.inherit(child.id, plan.left)
        await self._admit([child])
        return True

    # ---------------------------------------------------------------- validation

    async def _admit(self, candidates: Sequence[Candidate]) -> set[str]:
        """Validate candidates (concurrently, as the validation policy says) and add them to
        the pool in the given order; the ids of those that joined.

        Budget for a full validation is reserved in order before anything runs; a candidate it
        cannot cover is rejected and the run stops after this batch with BudgetExhausted.
        """
        fits: list[Candidate] = []
        short = None
        left = self.budget.rollouts_left
        for candidate in candidates:
            need = self.evaluator.uncached_count(candidate, self.valset)
            if left is not None and need > left:
                short = candidate
                break
            left = None if left is None else left - need
            fits.append(candidate)
        verdicts = await self.strategies.validation.validate(self, fits) if fits else []
        joined = set()
        for candidate, verdict in zip(fits, verdicts, strict=True):
            if verdict.rejection is None:
                self._register(candidate, verdict.scores)
                joined.add(candidate.id)
            else:
                reason, detail = verdict.rejection
                module = "+".join(candidate.changed_modules) or None
                self._reject(candidate.origin, reason, detail, module, candidate.parent_ids,
                             _shown({m: candidate.prompts[m] for m in candidate.changed_modules}))
        if short is not None:
            if short.origin == "seed":
                raise BudgetExhausted("the budget does not cover evaluating the seed")
            self._reject(short.origin, "budget_exhausted", "no budget left to validate it",
                         next(iter(short.changed_modules), None), short.parent_ids,
                         iteration=self.state.iteration)
            raise BudgetExhausted("no budget left to validate a candidate")
        return joined

    def _register(self, candidate: Candidate, scores: dict[str, float]) -> None:
        best_before = self.mean(self.best_id) if self.scores else None
        self.candidates[candidate.id] = candidate
        self.scores[candidate.id] = {k: scores[k] for k in self.val_keys if k in scores}
        mean = self.mean(candidate.id)
        record = CandidateRecord(
            id=candidate.id, prompts=candidate.prompts, parent_ids=candidate.parent_ids,
            origin=candidate.origin, changed_modules=candidate.changed_modules,
            val_scores=self.scores[candidate.id], mean_score=mean,
            iteration=self.state.iteration, rollouts_at_discovery=self.budget.ledger.rollouts_used,
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
