"""The GEPA loop. It decides; collaborators act: the Evaluator runs rollouts, the proposers
write candidates, the EventBus tells listeners, the journal and checkpoint persist.

Every decision depends only on the seed and on results (never on timing or completion order),
which is what makes runs reproducible and resume exact.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gepa_graph import pareto
from gepa_graph.budget import Budget, BudgetExhausted
from gepa_graph.candidate import Candidate
from gepa_graph.config import OptimizeConfig
from gepa_graph.evaluation import EvalResult, Evaluator
from gepa_graph.events import (
    BudgetUpdated,
    CandidateAccepted,
    CandidateInfo,
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
from gepa_graph.journal import Journal
from gepa_graph.lm import LMCallFailed, ReflectionLM
from gepa_graph.proposers.merge import balanced_subsample, find_merge
from gepa_graph.proposers.reflective import Reflection, ReflectiveProposer
from gepa_graph.reflection import InvalidProposal
from gepa_graph.replay import ReflectionReplay
from gepa_graph.result import CandidateRecord, Result
from gepa_graph.state import OptimizerState, save_state
from gepa_graph.system import System, node_of

log = logging.getLogger("gepa_graph")

# Iterations in a row that ran no rollout at all (every proposal rejected before running,
# every minibatch cached) before the run stops as stalled instead of spinning.
MAX_IDLE_ITERATIONS = 25


@dataclass
class _Plan:
    iteration: int
    parent: Candidate
    module_index: int
    module: str
    minibatch: list[Example]


@dataclass
class _Outcome:
    plan: _Plan
    parent_results: list[EvalResult]
    reflection: Reflection | None = None
    child: Candidate | None = None
    child_results: list[EvalResult] | None = None
    rejection: tuple[str, str, str | None] | None = None  # reason, detail, proposed text


class MinibatchSampler:
    """Epoch-shuffled minibatches: every training example is seen once per epoch."""

    def __init__(self, examples: Sequence[Example], size: int, rng: random.Random) -> None:
        self.examples = list(examples)
        self.size = min(size, len(self.examples))
        self.rng = rng
        self._queue: list[int] = []

    def next(self) -> list[Example]:
        while len(self._queue) < self.size:
            order = list(range(len(self.examples)))
            self.rng.shuffle(order)
            pending = set(self._queue)
            # Examples still queued from the last epoch go to the end of the new one, so a
            # minibatch never holds the same example twice.
            self._queue += [i for i in order if i not in pending] + [i for i in order if i in pending]
        batch, self._queue = self._queue[: self.size], self._queue[self.size :]
        return [self.examples[i] for i in batch]


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
        run_dir: Path | None,
        journal: Journal,
        replay_until_iteration: int | None = None,
    ) -> None:
        self.system = system
        self.trainset = list(trainset)
        self.valset = list(valset)
        self.val_keys = [ex.key for ex in self.valset]
        # A fixed quarter of the validation set for adaptive validation, drawn from its own
        # generator so that switching the feature on does not change the search's draws.
        screen_size = max(1, len(self.valset) // 4) if len(self.valset) >= 8 else len(self.valset)
        self.screening_sample = random.Random(config.seed + 1).sample(self.valset, screen_size)
        self.evaluator = evaluator
        self.reflection_lm = reflection_lm
        self.proposer = ReflectiveProposer(reflection_lm, replay, config.max_chars_per_field)
        self.config = config
        self.budget = budget
        self.bus = bus
        self.run_dir = run_dir
        self.journal = journal
        self.rng = random.Random(config.seed)
        self.sampler = MinibatchSampler(self.trainset, config.minibatch_size, self.rng)
        self.modules = list(seed_prompts)
        self.seed = Candidate(prompts=dict(seed_prompts))
        self.replay_until = replay_until_iteration

        self.candidates: dict[str, Candidate] = {}
        self.scores: dict[str, dict[str, float]] = {}
        self.next_module: dict[str, int] = {}
        self.tried_merges: set[str] = set()
        self.merges_due = 0
        self.merges_done = 0
        self.stale_iterations = 0
        self.idle_iterations = 0
        self.state = OptimizerState(
            reflection_lm=reflection_lm.name,
            config=config.model_dump(mode="json"),
            seed_prompts=dict(seed_prompts),
            train_keys=[ex.key for ex in self.trainset],
            val_keys=self.val_keys,
        )

    # ---------------------------------------------------------------- plumbing

    def _emit(self, event: Event) -> None:
        """Tell listeners, except for iterations a resumed run is replaying (they were told)."""
        replaying = self.replay_until is not None and self.state.iteration <= self.replay_until
        if replaying and not isinstance(event, (OptimizationStarted, OptimizationFinished)):
            return
        self.bus.emit(event)

    def _ledger(self):
        ledger = self.budget.snapshot()
        ledger.reflection_calls = self.state.ledger.reflection_calls
        ledger.lm_retries = self.reflection_lm.retries
        ledger.lm_failures = self.reflection_lm.failures
        self.state.ledger = ledger
        return ledger

    def _checkpoint(self) -> None:
        self._ledger()
        self.journal.sync()
        if self.run_dir is not None:
            save_state(self.state, self.run_dir)

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

    @property
    def best_id(self) -> str:
        return pareto.best_candidate(self.scores, self.val_keys, list(self.scores))

    def _mean(self, candidate_id: str) -> float:
        return pareto.mean_score(self.scores[candidate_id], self.val_keys)

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
            await self._admit([(self.seed, 0)])
            while (stop_reason := self._stop_reason()) is None:
                iteration_before = self.state.iteration
                spent_before = self.budget.ledger.rollouts_used
                best_before = self._mean(self.best_id)
                if not await self._try_merge():
                    await self._mutation_round()
                steps = self.state.iteration - iteration_before
                improved = self._mean(self.best_id) > best_before
                self.stale_iterations = 0 if improved else self.stale_iterations + steps
                spent = self.budget.ledger.rollouts_used > spent_before
                self.idle_iterations = 0 if spent else self.idle_iterations + steps
                self._emit_budget()
        except BudgetExhausted:
            stop_reason = "max_rollouts"
        finally:
            self.state.stop_reason = stop_reason
            self.state.status = "finished" if stop_reason != "unknown" else "running"
            if self.candidates:
                self._checkpoint()
            self.journal.close()
        result = self.state.to_result(self.run_dir)
        result._system = self.system
        self._emit(OptimizationFinished(
            stop_reason=stop_reason, best_id=result.best_id, best_score=result.best_score,
            seed_score=result.seed_score, ledger=result.ledger, iterations=result.iterations,
            result=result,
        ))
        return result

    def _stop_reason(self) -> str | None:
        reason = self.budget.stop_reason()
        if reason:
            return reason
        config = self.config
        if config.max_iterations is not None and self.state.iteration >= config.max_iterations:
            return "max_iterations"
        if config.max_stale_iterations is not None and self.stale_iterations >= config.max_stale_iterations:
            return "max_stale_iterations"
        if self.idle_iterations >= MAX_IDLE_ITERATIONS:
            return "stalled"
        if self._mean(self.best_id) >= config.perfect_score:
            return "perfect_score"
        return None

    def _emit_budget(self) -> None:
        best = self.best_id
        self._emit(BudgetUpdated(
            iteration=self.state.iteration,
            ledger=self._ledger(),
            best_score=self._mean(best),
            best_id=best,
            pool_size=len(self.candidates),
            pareto_score=pareto.pareto_aggregate(self.scores, self.val_keys),
        ))

    # ---------------------------------------------------------------- steps

    def _select_parent(self) -> Candidate:
        order = list(self.scores)
        if self.config.candidate_selection == "current_best":
            return self.candidates[self.best_id]
        return self.candidates[pareto.sample_parent(self.scores, self.val_keys, order, self.rng)]

    def _round_width(self) -> int:
        """How many proposals run at once this round (``parallel_proposals``), narrowed so the
        worst case (every minibatch rollout uncached) fits the rollout budget: a round never
        races for budget, which keeps runs reproducible."""
        width = self.config.parallel_proposals
        left = self.budget.rollouts_left
        if left is not None:
            width = min(width, left // (2 * self.sampler.size))
        if self.config.max_iterations is not None:
            width = min(width, self.config.max_iterations - self.state.iteration)
        return max(1, width)

    def _plan(self) -> _Plan:
        """Parent, module and minibatch of one proposal: every random draw happens here, in
        order, before anything runs concurrently."""
        self.state.iteration += 1
        parent = self._select_parent()
        index = self.next_module[parent.id] % len(self.modules)
        self.next_module[parent.id] = index + 1
        plan = _Plan(self.state.iteration, parent, index, self.modules[index], self.sampler.next())
        self._emit(IterationStarted(
            iteration=plan.iteration, kind="mutation", parent_ids=(parent.id,), module=plan.module
        ))
        return plan

    async def _mutation_round(self) -> None:
        plans = [self._plan() for _ in range(self._round_width())]
        outcomes = await asyncio.gather(*(self._propose(p) for p in plans), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        # Settle in plan order, not completion order: events, rejections and the pool come
        # out the same however the concurrent proposals interleaved.
        passed: list[tuple[Candidate, int]] = []
        for outcome in outcomes:
            child = self._settle(outcome, {c.id for c, _ in passed})
            if child is not None:
                passed.append((child, outcome.plan.module_index + 1))
        added = await self._admit(passed)
        if self.config.use_merge:
            room = self.config.max_merge_attempts - self.merges_done - self.merges_due
            self.merges_due += max(0, min(added, room))

    async def _propose(self, plan: _Plan) -> _Outcome:
        """Run one proposal: parent minibatch, reflection, child minibatch. Emits nothing."""
        parent, module = plan.parent, plan.module
        outcome = _Outcome(plan, await self.evaluator.evaluate(parent, plan.minibatch))
        if self.config.skip_perfect_score and all(
            r.score >= self.config.perfect_score for r in outcome.parent_results
        ):
            outcome.rejection = ("parent_perfect_on_minibatch", "nothing to learn from", None)
            return outcome
        try:
            outcome.reflection = await self.proposer.reflect(
                parent, module, node_of(self.system, module), plan.minibatch, outcome.parent_results
            )
        except LMCallFailed as exc:
            outcome.rejection = ("reflection_failed", str(exc), None)
            return outcome
        try:
            child = self.proposer.child(parent, module, outcome.reflection)
        except InvalidProposal as exc:
            outcome.rejection = (exc.reason, exc.detail, exc.text)
            return outcome
        outcome.child = child
        if child.id in self.candidates:
            outcome.rejection = ("duplicate_candidate", f"same prompts as {child.id}",
                                 child.prompts[module])
            return outcome
        outcome.child_results = await self.evaluator.evaluate(child, plan.minibatch)
        before = sum(r.score for r in outcome.parent_results)
        after = sum(r.score for r in outcome.child_results)
        if after <= before:
            outcome.rejection = ("not_better_on_minibatch",
                                 f"minibatch score {after:g} vs parent {before:g}",
                                 child.prompts[module])
        return outcome

    def _settle(self, outcome: _Outcome, taken: set[str]) -> Candidate | None:
        """Report a proposal's outcome; the child if it earned a validation run."""
        plan, child = outcome.plan, outcome.child
        self._emit_minibatch(plan.iteration, plan.parent, "parent", plan.minibatch,
                             outcome.parent_results)
        reflection = outcome.reflection
        if reflection is not None:
            self.state.ledger.reflection_calls += 1
            self.budget.add_reflection_cost(reflection.response.usage.cost_usd)
            self._emit(ReflectionCalled(
                iteration=plan.iteration, module=plan.module, parent_id=plan.parent.id,
                prompt=reflection.prompt, reply=reflection.response.text,
                cost_usd=reflection.response.usage.cost_usd,
            ))
        if outcome.child_results is not None:
            self._emit_minibatch(plan.iteration, child, "child", plan.minibatch,
                                 outcome.child_results)
        rejection = outcome.rejection
        if rejection is None and child.id in taken:
            rejection = ("duplicate_candidate", f"same prompts as {child.id}",
                         child.prompts[plan.module])
        if rejection is not None:
            reason, detail, text = rejection
            self._reject("mutation", reason, detail, plan.module, (plan.parent.id,), text,
                         iteration=plan.iteration)
            return None
        return child

    async def _try_merge(self) -> bool:
        """Attempt one merge if one is due and an eligible pair exists; True if attempted."""
        if not (self.config.use_merge and self.merges_due > 0):
            return False
        frontier = pareto.nondominated(self.scores, self.val_keys, list(self.scores))
        means = {cid: self._mean(cid) for cid in self.scores}
        plan = find_merge(frontier, self.candidates, means, self.tried_merges, self.rng)
        if plan is None:
            return False
        self.merges_due -= 1
        self.merges_done += 1
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
        subsample = [by_key[k] for k in keys]
        results = await self.evaluator.evaluate(child, subsample)
        merged = sum(r.score for r in results)
        best_parent = max(sum(self.scores[p][k] for k in keys) for p in parents)
        if merged < best_parent:
            self._reject("merge", "worse_than_parents_on_subsample",
                         f"subsample score {merged:g} vs best parent {best_parent:g}",
                         parent_ids=parents)
            return True
        await self._admit([(child, self.next_module[plan.left])])
        return True

    async def _admit(self, candidates: Sequence[tuple[Candidate, int]]) -> int:
        """Validate candidates (concurrently) and add them to the pool in the given order.

        Each entry is (candidate, index of the module its lineage mutates next). Budget is
        reserved in order before anything runs; a candidate it cannot cover is rejected and
        the run stops after this batch with BudgetExhausted. Returns how many were added.
        """
        fits: list[tuple[Candidate, int]] = []
        short = None
        left = self.budget.rollouts_left
        for candidate, next_module in candidates:
            need = self.evaluator.uncached_count(candidate, self.valset)
            if left is not None and need > left:
                short = candidate
                break
            left = None if left is None else left - need
            fits.append((candidate, next_module))
        if self.config.adaptive_validation:
            fits = await self._screen(fits)
        all_results = await asyncio.gather(
            *(self.evaluator.evaluate(candidate, self.valset) for candidate, _ in fits)
        )
        for (candidate, next_module), results in zip(fits, all_results):
            self._register(candidate, results, next_module)
        if short is not None:
            if short.origin == "seed":
                raise BudgetExhausted("the budget does not cover evaluating the seed")
            self._reject(short.origin, "budget_exhausted", "no budget left to validate it",
                         next(iter(short.changed_modules), None), short.parent_ids,
                         iteration=self.state.iteration)
            raise BudgetExhausted("no budget left to validate a candidate")
        return len(fits)

    async def _screen(self, entries: list[tuple[Candidate, int]]) -> list[tuple[Candidate, int]]:
        """Adaptive validation: run mutation children on a quarter of the validation set first
        and drop those that do worse there than their parent while reaching no new per-example
        best, before they spend the other three quarters."""
        sample = self.screening_sample
        mutations = [c for c, _ in entries if c.origin == "mutation"]
        if not mutations or len(sample) == len(self.valset):
            return entries
        results = await asyncio.gather(*(self.evaluator.evaluate(c, sample) for c in mutations))
        hopeless = set()
        for child, child_results in zip(mutations, results):
            parent = self.scores[child.parent_ids[0]]
            mine = {r.example_key: r.score for r in child_results}
            top = {k: max(scores[k] for scores in self.scores.values()) for k in mine}
            if sum(mine.values()) < sum(parent[k] for k in mine) and not any(
                mine[k] > top[k] for k in mine
            ):
                hopeless.add(child.id)
                self._reject("mutation", "worse_than_parent_on_validation_sample",
                             f"{sum(mine.values()):g} vs parent {sum(parent[k] for k in mine):g} "
                             f"on {len(mine)} validation examples", child.changed_modules[0],
                             child.parent_ids, child.prompts[child.changed_modules[0]])
        return [(c, m) for c, m in entries if c.id not in hopeless]

    def _register(self, candidate: Candidate, results: Sequence[EvalResult],
                  next_module: int) -> None:
        best_before = self._mean(self.best_id) if self.scores else None
        self.candidates[candidate.id] = candidate
        self.scores[candidate.id] = {r.example_key: r.score for r in results}
        self.next_module[candidate.id] = next_module
        mean = self._mean(candidate.id)
        record = CandidateRecord(
            id=candidate.id, prompts=candidate.prompts, parent_ids=candidate.parent_ids,
            origin=candidate.origin, changed_modules=candidate.changed_modules,
            val_scores=self.scores[candidate.id], mean_score=mean,
            iteration=self.state.iteration, rollouts_at_discovery=self.budget.ledger.rollouts_used,
        )
        self.state.candidates.append(record)
        self.state.best_id = self.best_id
        self._emit(CandidateAccepted(
            iteration=self.state.iteration,
            candidate=CandidateInfo(**candidate.model_dump(exclude={"id"}), id=candidate.id),
            val_scores=record.val_scores, mean_score=mean,
            rollouts_used=record.rollouts_at_discovery,
            is_best=best_before is None or mean > best_before,
        ))
        self._checkpoint()

    def _emit_minibatch(self, iteration: int, candidate: Candidate, role: str,
                        examples: Sequence[Example], results: Sequence[EvalResult]) -> None:
        self._emit(MinibatchEvaluated(
            iteration=iteration, candidate_id=candidate.id, role=role,
            example_keys=tuple(ex.key for ex in examples),
            scores=tuple(r.score for r in results),
        ))
