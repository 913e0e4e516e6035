"""The GEPA loop: one run, from the seed to the stop. It decides through its strategies
(gepa_graph/strategies/: parent, modules, minibatch, acceptance, validation, merges, stop) and
acts through its collaborators: the proposers (gepa_graph/proposers/) plan children as data, the
runner (runner.py) keeps rollout slots busy with their work, the pool (pool.py) holds candidates
and scores, the Evaluator runs rollouts, the reporter (reporter.py) tells listeners, the store
persists. Strategies and proposers read the search through the view (view.py), never the engine.

The engine alone acts on the search: it numbers each piece of work, holds and charges its
rollouts, takes its journaled turns (turns.py), reports it, admits or rejects its child
(validation, the pool), tells its proposer what became of it, and checkpoints. Which work
finishes first depends on timing, so every step that acts on the search takes a turn: a killed
run resumes exactly, and with one proposal in flight (``concurrency=1``, or
``parallel_proposals=1``) or a deterministic clock the same seed gives the same result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from gepa_graph.budget import Budget, BudgetExhausted, Hold
from gepa_graph.candidate import Candidate
from gepa_graph.config import OptimizeConfig
from gepa_graph.evaluation import Evaluator
from gepa_graph.events import (
    CandidateAccepted,
    EventBus,
    OptimizationFinished,
    OptimizationStarted,
)
from gepa_graph.example import Example
from gepa_graph.lm import ReflectionLM
from gepa_graph.pool import Pool
from gepa_graph.proposers.base import Kind, Proposer, Work, shown
from gepa_graph.records import Ledger
from gepa_graph.reporter import Reporter
from gepa_graph.result import Result
from gepa_graph.runner import Runner
from gepa_graph.state import OptimizerState
from gepa_graph.store import RunStore
from gepa_graph.strategies import Strategies, build, contenders
from gepa_graph.strategies.base import scores_of
from gepa_graph.system import System, check_modules_used
from gepa_graph.turns import Turns
from gepa_graph.view import SearchView


class Engine:
    """One optimization run: ``optimize`` builds it from its collaborators and awaits ``run``.
    Strategies and proposers see it through ``view`` (view.py)."""

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
        finish: Callable[[Result], Awaitable[Result]] | None = None,
    ) -> None:
        self.trainset = list(trainset)
        # A last step on the finished search's result before listeners hear the end (api: the
        # held-out testset, scored and saved, so the end event carries its scores).
        self.finish = finish
        self.valset = list(valset)
        self.evaluator = evaluator
        self.reflection_lm = reflection_lm
        self.proposers = list(proposers)  # asked in order for the next work: merge first
        self.concurrency = config.concurrency
        self.budget = budget
        self.store = store
        self.strategies = strategies or build(config)
        self.seed = Candidate(prompts=dict(seed_prompts))
        self.turns = Turns(store.journal, store.journal.turns)
        self.state = OptimizerState(
            reflection_lm=reflection_lm.name,
            config=config.model_dump(mode="json"),
            seed_prompts=dict(seed_prompts),
            train_keys=[ex.key for ex in self.trainset],
            val_keys=[ex.key for ex in self.valset],
        )
        self.pool = Pool(self.state)
        self.report = Reporter(bus, self.turns, self.state)
        self.view = SearchView(
            config=config,
            trainset=self.trainset,
            valset=self.valset,
            modules=list(seed_prompts),
            system=system,
            strategies=self.strategies,
            pool=self.pool,
            state=self.state,
            budget=budget,
            evaluator=evaluator,
            turns=self.turns,
        )
        self.runner = Runner(
            config,
            evaluator,
            self.turns,
            self._next_work,
            lambda: self.strategies.stop.stop_reason(self.view),
        )
        self._started = time.monotonic()

    # ---------------------------------------------------------------- the run

    async def run(self) -> Result:
        """Evaluate the seed, then run work until the stop strategy or the budget ends the
        search; the Result of the checkpoint as it stands. Call it once per Engine.

        Emits OptimizationStarted first and OptimizationFinished last. On an error or an
        interrupt the exception propagates after the checkpoint is saved as ``running`` (so
        the run can resume); BudgetExhausted is a normal stop, not an error."""
        self.report.emit(
            OptimizationStarted(
                run_dir=str(self.store.directory) if self.store.directory else None,
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
            seed_traces = [
                cached.trace
                for example in self.valset
                if (cached := self.evaluator.cached(self.seed.id, example)) is not None
            ]
            check_modules_used(self.view.modules, seed_traces)
            stop_reason = await self.runner.run()
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
            if self.pool.candidates:
                self._checkpoint()
            self.store.journal.close()
        result = self.state.to_result(self.store.directory)
        if self.finish is not None:
            result = await self.finish(result)
        self.report.emit(OptimizationFinished.of(result))
        return result

    def _next_work(self, alone: bool) -> tuple[str, Coroutine[Any, Any, None]] | None:
        """Ask the proposers, in order, for the next work; number it, hold its worst case and
        announce it: its name (the iteration) and the coroutine that carries it out."""
        for proposer in self.proposers:
            work = proposer.ask(self.view, self.budget.available, alone)
            if work is not None:
                self.state.iteration += 1
                iteration = self.state.iteration
                hold = self.budget.hold(work.rollouts)
                self.report.started(iteration, work)
                return str(iteration), self._carry_out(proposer, work, iteration, hold)
        return None

    async def _carry_out(self, proposer: Proposer, work: Work, iteration: int, hold: Hold) -> None:
        """Run one piece of work under its turns and hold, then settle it: reject its child or
        validate it, and tell the proposer which."""
        self.turns.own(str(iteration))
        self.budget.charge(hold)
        await self.turns.take()
        try:
            outcome = await work.run()
        except BudgetExhausted as exc:
            self._reject_work(work, iteration, ("budget_exhausted", str(exc), None))
            proposer.tell(work, "unfinished")
            return
        finally:
            self.budget.release(hold)
        if outcome.novel is not None:
            self.pool.note_proposal(work.parent_ids[0], outcome.novel)
        for _, reflection in outcome.reflections:
            for call in reflection.calls:  # the reflection, and its compression if it had one
                self.budget.add_reflection_call()
                self.budget.add_reflection_cost(call.response.usage.cost_usd)
        self.report.found(iteration, work, outcome)
        if outcome.rejection is not None:
            self._reject_work(work, iteration, outcome.rejection)
            proposer.tell(work, "rejected")
            self._finished(outcome.productive)
            return
        child = outcome.child
        if child is None:
            raise RuntimeError(f"{work.kind} work ended with neither a child nor a rejection")
        if outcome.after is not None:  # its parent was still being validated
            parent_joined = await outcome.after
            await self.turns.take()
            if not parent_joined:
                texts = {m: child.prompts[m] for m in child.changed_modules}
                why = ("parent_rejected", "its parent did not join the pool", shown(texts))
                self._reject_work(work, iteration, why)
                proposer.tell(work, "parent_rejected")
                self._finished(True)
                return
        proposer.tell(work, "validating")
        self.strategies.module_selector.inherit(child.id, child.parent_ids[0])
        try:
            joined = await self.admit(child, iteration)
        except BudgetExhausted as exc:
            self._reject_work(work, iteration, ("budget_exhausted", str(exc), None))
            proposer.tell(work, "unfinished")
            return
        proposer.tell(work, "joined" if joined else "not_joined")
        self._finished(True)

    def _reject_work(
        self, work: Work, iteration: int, rejection: tuple[str, str, str | None]
    ) -> None:
        reason, detail, text = rejection
        module = "+".join(work.modules) or None
        self.report.rejected(work.kind, reason, detail, module, work.parent_ids, text, iteration)

    def _finished(self, productive: bool) -> None:
        """Book-keeping when work settles: the counters the stop conditions read, the budget
        event."""
        self.pool.settled(productive)
        elapsed = time.monotonic() - self._started
        self.report.budget(self._ledger(), self.pool, self.evaluator, self.concurrency * elapsed)

    # ---------------------------------------------------------------- admission

    async def admit(self, candidate: Candidate, iteration: int) -> bool:
        """Validate a candidate as the validation policy says and add it to the pool; True if
        it joined. Its validation's rollouts are held first, so work started meanwhile cannot
        take them; a candidate the budget cannot validate is rejected (the seed: the run
        stops with BudgetExhausted)."""
        need = self.pool.unknown(candidate, self.valset)
        kind: Kind = "merge" if candidate.origin == "merge" else "mutation"
        room = self.budget.available
        changed = candidate.changed_modules
        if room is not None and need > room:
            if candidate.origin == "seed":
                raise BudgetExhausted("the budget does not cover evaluating the seed")
            self.report.rejected(
                kind,
                "budget_exhausted",
                "no budget left to validate it",
                next(iter(changed), None),
                candidate.parent_ids,
                None,
                iteration,
            )
            return False
        hold = self.budget.hold(need)
        self.budget.charge(hold)
        self.pool.validating.add(candidate.id)
        try:
            (verdict,) = await self.strategies.validation.validate(self.view, [candidate])
            # The policy may have run its steps in tasks of its own: act only at a turn taken
            # here, so nothing else moves between the last rollout and the pool changing.
            await self.turns.take()
        finally:
            self.budget.release(hold)
            self.pool.validating.discard(candidate.id)
        if verdict.rejection is None:
            rollouts = self.budget.ledger.rollouts_used
            record, is_best = self.pool.add(candidate, verdict.scores, iteration, rollouts)
            self.report.emit(CandidateAccepted(candidate=record, is_best=is_best))
            self._checkpoint()
            return True
        reason, detail = verdict.rejection
        texts = {m: candidate.prompts[m] for m in changed}
        module = "+".join(changed) or None
        self.report.rejected(
            kind, reason, detail, module, candidate.parent_ids, shown(texts), iteration
        )
        return False

    async def _complete_contenders(self) -> None:
        """Final selection: run the partial candidates that could still beat the best
        (``strategies.contenders``) on the rest of the validation set, the most promising
        first, while the budget allows, so the best is the best on the whole set."""
        self.turns.own("final")
        room = self.budget.available
        while fits := [
            c
            for c in contenders(self.view)
            if room is None or self.pool.unknown(c, self.valset) <= room
        ]:
            scores = scores_of(await self.view.evaluate(fits[0], self.valset))
            self.pool.complete(fits[0].id, scores, self.budget.ledger.rollouts_used)
            room = self.budget.available

    def _ledger(self) -> Ledger:
        self.state.ledger = self.budget.snapshot()
        return self.state.ledger

    def _checkpoint(self) -> None:
        self._ledger()
        self.store.save_state(self.state)
