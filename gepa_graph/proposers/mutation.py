"""GEPA's reflective mutation as a proposer: a parent runs a minibatch, the reflection LM reads
each chosen module's own traces and rewrites it, and the child that beats its parent on the same
minibatch is validated.

A child that won its minibatch is continued at once, while it is still being validated (as
sequential GEPA would most likely continue from the child it just accepted): the continuation's
own child waits for that verdict before validation, and is rejected if its parent was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gepa_graph import pareto
from gepa_graph.budget import BudgetExhausted, Hold
from gepa_graph.candidate import Candidate
from gepa_graph.events import IterationStarted, ReflectionCalled
from gepa_graph.example import Example
from gepa_graph.lm import LMCallFailed
from gepa_graph.proposers.base import shown
from gepa_graph.proposers.reflective import Reflection, ReflectiveProposer
from gepa_graph.reflection import InvalidProposal
from gepa_graph.strategies import ProposalOutcome
from gepa_graph.system import node_of

if TYPE_CHECKING:
    from gepa_graph.engine import Engine
    from gepa_graph.evaluation import EvalResult

# Minibatches drawn for one proposal before giving up on finding one not yet reflected on
# for the same parent and modules.
MINIBATCH_DRAWS = 4


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


class ReflectiveMutation:
    """The mutation proposer (see the module docstring); ``proposer`` writes the prompts."""

    def __init__(self, proposer: ReflectiveProposer) -> None:
        self.proposer = proposer
        self.search: Engine
        # Children that won their minibatch and are being validated, not yet continued.
        self._chain: list[Candidate] = []
        self._verdicts: dict[str, asyncio.Future] = {}  # child id -> did it join the pool

    def start(
        self, search: Engine, room: int | None, alone: bool
    ) -> Coroutine[Any, Any, None] | None:
        """A proposal from a child being validated, else from a parent the strategies pick."""
        self.search = search
        parent = self._chain.pop(0) if self._chain else None
        plan = self._plan(room, alone, parent)
        return None if plan is None else self._proposal(plan)

    def _plan(
        self, room: int | None, alone: bool = True, parent: Candidate | None = None
    ) -> _Plan | None:
        """Parent, modules and minibatch of one proposal: every random draw happens here, in
        the main task, when the proposal starts. None when the proposal's worst case (its
        minibatch rollouts and its child's full validation) does not fit in ``room``, or when
        it would only repeat a reflection while other work is in flight (``alone`` False):
        such a proposal cannot fill a slot usefully, so it waits for the pool to move."""
        search = self.search
        strategies = search.strategies
        verdict = self._verdicts.get(parent.id) if parent is not None else None
        parent = parent or strategies.parent_selector.select(search)
        modules = strategies.module_selector.select(search, parent)
        for _ in range(MINIBATCH_DRAWS):
            minibatch = strategies.sampler.sample(search, parent)
            key = (parent.id, modules, tuple(sorted(ex.key for ex in minibatch)))
            if key not in search.reflected:
                break
        if key in search.reflected and not alone:
            return None
        parent_runs = len(minibatch) - len(search.known(parent.id, minibatch))
        worst = parent_runs + len(minibatch) + len(search.valset)
        if room is not None and worst > room:
            strategies.module_selector.update(search, parent, modules, ProposalOutcome("skipped"))
            return None
        search.state.iteration += 1
        plan = _Plan(
            search.state.iteration,
            parent,
            modules,
            minibatch,
            key in search.reflected,
            fresh=parent_runs > 0,
            hold=search.budget.hold(worst),
            parent_verdict=verdict,
        )
        search.reflected.add(key)
        search.emit(
            IterationStarted(
                iteration=plan.iteration,
                kind="mutation",
                parent_ids=(parent.id,),
                module="+".join(modules),
            )
        )
        return plan

    async def _proposal(self, plan: _Plan) -> None:
        """One proposal from start to end: minibatches and reflection, then (if its child
        wins the minibatch) validation and the pool."""
        search = self.search
        search.turns.own(str(plan.iteration))
        search.budget.charge(plan.hold)
        await search.turns.take()
        try:
            outcome = await self._propose(plan)
        except BudgetExhausted as exc:
            search.reject(
                "mutation",
                "budget_exhausted",
                str(exc),
                "+".join(plan.modules),
                (plan.parent.id,),
                iteration=plan.iteration,
            )
            return
        finally:
            search.budget.release(plan.hold)
        child = outcome.child
        if self._settle(outcome):
            if plan.parent_verdict is not None and not await self._parent_joined(plan):
                search.reject(
                    "mutation",
                    "parent_rejected",
                    "its parent did not join the pool",
                    "+".join(plan.modules),
                    (plan.parent.id,),
                    shown({m: child.prompts[m] for m in child.changed_modules}),
                    iteration=plan.iteration,
                )
                search.finished(spent=True)
                return
            verdict = asyncio.get_running_loop().create_future()
            self._verdicts[child.id] = verdict
            self._chain.append(child)
            search.strategies.module_selector.inherit(child.id, plan.parent.id)
            joined = False
            try:
                joined = await search.admit(child, plan.iteration)
            except BudgetExhausted as exc:
                search.reject(
                    "mutation",
                    "budget_exhausted",
                    str(exc),
                    "+".join(plan.modules),
                    (plan.parent.id,),
                    iteration=plan.iteration,
                )
                return
            finally:
                if child in self._chain:
                    self._chain.remove(child)
                verdict.set_result(joined)
                self._verdicts.pop(child.id)  # its continuations hold the future
            gain = 0.0
            if joined:
                keys = list(search.scores[child.id])
                gain = search.mean(child.id) - pareto.mean_score(
                    search.scores[plan.parent.id], keys
                )
            self._tell_selector(outcome, "accepted" if joined else "rejected", child.id, gain)
            if not joined:
                self._remember_attempt(plan, child, "worse on validation")
            search.strategies.merge_scheduler.on_accepted(search, int(joined))
        search.finished(spent=plan.fresh or outcome.child_results is not None)

    async def _parent_joined(self, plan: _Plan) -> bool:
        """Wait for the verdict on a speculative proposal's parent; act at a turn after it."""
        search = self.search
        joined = await plan.parent_verdict
        await search.turns.take()
        return joined

    def _tell_selector(
        self, outcome: _Outcome, status: str, child_id: str | None = None, gain: float = 0.0
    ) -> None:
        search = self.search
        search.strategies.module_selector.update(
            search,
            outcome.plan.parent,
            outcome.plan.modules,
            ProposalOutcome(status, child_id, gain, outcome.implicated),
        )

    def _remember_attempt(self, plan: _Plan, child: Candidate, why: str) -> None:
        search = self.search
        for module in plan.modules:
            if child.prompts[module] != plan.parent.prompts[module]:
                search.attempts.setdefault((plan.parent.id, module), []).append(
                    (child.prompts[module], why)
                )

    def _implicated(self, results: Sequence[EvalResult]) -> tuple[str, ...]:
        """Modules whose feedback names a failure on these results."""
        search = self.search
        perfect = search.config.perfect_score
        return tuple(
            m
            for m in search.modules
            if any(r.score < perfect and r.feedback_for(m) for r in results)
        )

    async def _propose(self, plan: _Plan) -> _Outcome:
        """Parent minibatch, reflection(s), child minibatch. Emits nothing."""
        search = self.search
        parent = plan.parent
        outcome = _Outcome(plan, await search.evaluate(parent, plan.minibatch))
        outcome.implicated = self._implicated(outcome.parent_results)
        if search.config.skip_perfect_score and all(
            r.score >= search.config.perfect_score for r in outcome.parent_results
        ):
            outcome.rejection = ("parent_perfect_on_minibatch", "nothing to learn from", None)
            outcome.status = "skipped"
            return outcome
        if plan.repeat:
            outcome.rejection = (
                "already_reflected",
                "the same parent, modules and minibatch were reflected on before",
                None,
            )
            outcome.status = "invalid"
            return outcome
        keep = search.config.rejected_attempts_shown
        try:
            replies = await asyncio.gather(
                *(
                    self.proposer.reflect(
                        parent,
                        module,
                        node_of(search.system, module),
                        plan.minibatch,
                        outcome.parent_results,
                        search.attempts.get((parent.id, module), [])[-keep:] if keep else (),
                    )
                    for module in plan.modules
                )
            )
        except LMCallFailed as exc:
            await search.turns.take()
            outcome.rejection = ("reflection_failed", str(exc), None)
            outcome.status = "invalid"
            return outcome
        await search.turns.take()
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
        if child.id in search.candidates or child.id in search.validating:
            outcome.rejection = ("duplicate_candidate", f"same prompts as {child.id}", shown(texts))
            outcome.status = "invalid"
            return outcome
        outcome.child_results = await search.evaluate(child, plan.minibatch)
        reason = search.strategies.acceptance.reject_reason(
            outcome.parent_results, outcome.child_results
        )
        if reason is not None:
            outcome.rejection = ("not_better_on_minibatch", reason, shown(texts))
            before = sum(r.score for r in outcome.parent_results)
            after = sum(r.score for r in outcome.child_results)
            outcome.status = "tied" if after == before else "worse"
        return outcome

    def _settle(self, outcome: _Outcome) -> bool:
        """Report a proposal's outcome; True if its child earned a validation run."""
        search = self.search
        plan, child = outcome.plan, outcome.child
        new = plan.fresh or (child is not None and child.id not in search.proposed)
        search.parent_idle[plan.parent.id] = (
            0 if new else search.parent_idle.get(plan.parent.id, 0) + 1
        )
        if child is not None:
            search.proposed.add(child.id)
        search.emit_minibatch(
            plan.iteration, plan.parent, "parent", plan.minibatch, outcome.parent_results
        )
        for module, reflection in outcome.reflections:
            for call in reflection.calls:  # the reflection, and its compression if it had one
                search.budget.add_reflection_call()
                search.budget.add_reflection_cost(call.response.usage.cost_usd)
                search.emit(
                    ReflectionCalled(
                        iteration=plan.iteration,
                        module=module,
                        parent_id=plan.parent.id,
                        prompt=call.prompt,
                        reply=call.response.text,
                        cost_usd=call.response.usage.cost_usd,
                    )
                )
        if outcome.child_results is not None:
            search.emit_minibatch(
                plan.iteration, child, "child", plan.minibatch, outcome.child_results
            )
        rejection = outcome.rejection
        if rejection is None and (child.id in search.candidates or child.id in search.validating):
            rejection = (
                "duplicate_candidate",
                f"same prompts as {child.id}",
                shown({m: child.prompts[m] for m in child.changed_modules}),
            )
            outcome.status = "invalid"
        if rejection is None:
            return True
        reason, detail, text = rejection
        search.reject(
            "mutation",
            reason,
            detail,
            "+".join(plan.modules),
            (plan.parent.id,),
            text,
            iteration=plan.iteration,
        )
        self._tell_selector(outcome, outcome.status)
        if child is not None and reason in ("not_better_on_minibatch", "duplicate_candidate"):
            self._remember_attempt(plan, child, detail)
        return False
