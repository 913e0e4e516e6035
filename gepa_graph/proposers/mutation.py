"""GEPA's reflective mutation as a proposer: a parent runs a minibatch, the reflection LM reads
each chosen module's own traces and rewrites it, and the child that beats its parent on the same
minibatch is validated. With ``staged_minibatch`` (the default) a child runs first where its
parent fell short of the top score, and is rejected there when even the top score on the rest
could not make it pass (``_child_minibatch``): most children lose, and they lose cheaper.

A child that won its minibatch is continued at once, while it is still being validated (as
sequential GEPA would most likely continue from the child it just accepted): the continuation's
outcome asks the engine to wait for that verdict before validation (``Outcome.after``).

With ``catch_up``, a proposal catches up with a pool that changed while it ran: when a better
descendant of its parent joined meanwhile (a newer sibling), the rewrite is applied on top of
that sibling if the sibling left the rewritten modules alone (a rebase: the child is judged
against the sibling on the minibatch); otherwise a child that beat its parent must also beat
the sibling on the same minibatch, or it is rejected before its validation is paid for
(``superseded_on_minibatch``). Off by default: on benchmarks/concurrency_quality.py, beside
``cancel_stale``, it moves validation by at most 0.01 either way at concurrency 16 and 64.

With ``cancel_stale``, speculative work that lost is cancelled: a proposal whose parent the
parent selector would no longer pick (a candidate that joined since dominates it), or whose parent
being validated did not join, stops at its next step, before its reflection or its child's
minibatch (``_cancelled``), and its slot goes to a proposal from the pool as it is now.

The proposer's memory: what it reflected on (a repeat is not paid for twice), the rewrites of a
module that lost (shown to the reflection LM when ``rejected_attempts_shown`` is set), the
children it proposed, and the children being validated that it has not yet continued.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gepa_graph import pareto
from gepa_graph.candidate import Candidate, content_id
from gepa_graph.example import Example
from gepa_graph.lineage import ancestors
from gepa_graph.lm import LMCallFailed
from gepa_graph.proposers.base import MinibatchRun, Outcome, ProposerView, Told, Work, shown
from gepa_graph.proposers.reflective import ReflectiveProposer
from gepa_graph.reflection import InvalidProposal
from gepa_graph.strategies import ProposalOutcome, Selectable
from gepa_graph.strategies.acceptance import best_case

if TYPE_CHECKING:
    from gepa_graph.evaluation import EvalResult

# Minibatches drawn for one proposal before giving up on finding one not yet reflected on
# for the same parent and modules.
MINIBATCH_DRAWS = 4

_Reflected = tuple[str, tuple[str, ...], tuple[str, ...]]  # parent, modules, minibatch keys


@dataclass
class _Proposal:
    """One proposal's plan, and how it went so far (for ``tell``)."""

    parent: Candidate
    modules: tuple[str, ...]
    minibatch: list[Example]
    repeat: bool  # every draw was a (parent, modules, minibatch) already reflected on
    fresh: bool  # the parent had not yet run some of the minibatch
    # When its parent was still being validated as it started: whether the parent joined.
    parent_verdict: asyncio.Future[bool] | None
    pool_size: int  # candidates in the pool when it was planned
    key: _Reflected  # what it reflects on
    outcome: Outcome | None = None
    validating: bool = False  # its child's validation started (its verdict is awaited)
    status: str = "passed"  # for the module selector: skipped, invalid, tied, worse, passed
    cancelled: bool = False  # its parent was superseded while it ran (cancel_stale)
    implicated: tuple[str, ...] = ()


class ReflectiveMutation:
    """The mutation proposer (see the module docstring); ``proposer`` writes the prompts."""

    def __init__(self, proposer: ReflectiveProposer, catch_up: bool = False) -> None:
        self.proposer = proposer
        self.catch_up = catch_up
        self.view: ProposerView
        self.reflected: set[_Reflected] = set()
        self.attempts: dict[tuple[str, str], list[tuple[str, str]]] = {}  # rejected rewrites
        self.proposed: set[str] = set()  # ids of every child proposed so far
        # Children that won their minibatch and are being validated, not yet continued.
        self._chain: list[Candidate] = []
        self._verdicts: dict[str, asyncio.Future[bool]] = {}  # child id -> did it join
        self._open: dict[Work, _Proposal] = {}  # work not yet settled

    def ask(self, view: ProposerView, room: int | None, alone: bool) -> Work | None:
        """A proposal from a child being validated, else from a parent the strategies pick.

        Parent, modules and minibatch are drawn now. None when the proposal's worst case (its
        minibatch rollouts and its child's full validation) does not fit in ``room``, or when
        it would only repeat a reflection while other work is in flight (``alone`` False):
        such a proposal cannot fill a slot usefully, so it waits for the pool to move."""
        self.view = view
        strategies = view.strategies
        chained = self._chain.pop(0) if self._chain else None
        verdict = self._verdicts.get(chained.id) if chained is not None else None
        parent = chained or strategies.parent_selector.select(view)
        modules = strategies.module_selector.select(view, parent)
        for _ in range(MINIBATCH_DRAWS):
            minibatch = strategies.sampler.sample(view, parent)
            key = (parent.id, modules, tuple(sorted(ex.key for ex in minibatch)))
            if key not in self.reflected:
                break
        if key in self.reflected and not alone:
            return None
        parent_runs = len(minibatch) - len(view.known(parent.id, minibatch))
        worst = parent_runs + len(minibatch) + view.config.regression_screen + len(view.valset)
        if self.catch_up:
            worst += len(minibatch)  # a newer rival's minibatch
        if room is not None and worst > room:
            strategies.module_selector.update(view, parent, modules, ProposalOutcome("skipped"))
            return None
        proposal = _Proposal(
            parent,
            modules,
            minibatch,
            key in self.reflected,
            parent_runs > 0,
            verdict,
            len(view.candidates),
            key,
        )
        self.reflected.add(key)
        work = Work("mutation", (parent.id,), modules, worst, lambda: self._run(proposal))
        self._open[work] = proposal
        return work

    def tell(self, work: Work, told: Told) -> None:
        """Continue a child from the moment its validation starts; tell the module selector
        and the merge scheduler how the proposal ended; remember rewrites that lost."""
        proposal = self._open[work]
        child = proposal.outcome.child if proposal.outcome is not None else None
        if told == "validating" and child is not None:
            proposal.validating = True
            self._verdicts[child.id] = asyncio.get_running_loop().create_future()
            self._chain.append(child)
            return
        del self._open[work]
        if proposal.validating and child is not None:  # its validation ended
            if child in self._chain:
                self._chain.remove(child)
            self._verdicts.pop(child.id).set_result(told == "joined")  # continuations hold it
        if told == "rejected" and proposal.outcome is not None:
            self._tell_selector(proposal, proposal.status)
            reason, detail, _ = proposal.outcome.rejection or ("", "", None)
            if child is not None and reason in ("not_better_on_minibatch", "duplicate_candidate"):
                self._remember_attempt(proposal, child, detail)
        elif told in ("joined", "not_joined") and child is not None:
            view = self.view
            gain = 0.0
            if told == "joined":
                keys = list(view.scores[child.id])
                gain = view.mean(child.id) - pareto.mean_score(
                    view.scores[proposal.parent.id], keys
                )
            status = "accepted" if told == "joined" else "rejected"
            self._tell_selector(proposal, status, child.id, gain)
            if told == "not_joined":
                self._remember_attempt(proposal, child, "worse on validation")
            view.strategies.merge_scheduler.on_accepted(view, int(told == "joined"))

    def _tell_selector(
        self, proposal: _Proposal, status: str, child_id: str | None = None, gain: float = 0.0
    ) -> None:
        outcome = ProposalOutcome(status, child_id, gain, proposal.implicated)
        self.view.strategies.module_selector.update(
            self.view, proposal.parent, proposal.modules, outcome
        )

    def _remember_attempt(self, proposal: _Proposal, child: Candidate, why: str) -> None:
        for module in proposal.modules:
            if child.prompts[module] != proposal.parent.prompts[module]:
                self.attempts.setdefault((proposal.parent.id, module), []).append(
                    (child.prompts[module], why)
                )

    def _implicated(self, results: Sequence[EvalResult]) -> tuple[str, ...]:
        """Modules whose feedback names a failure on these results."""
        perfect = self.view.config.perfect_score
        return tuple(
            m
            for m in self.view.modules
            if any(r.score < perfect and r.feedback_for(m) for r in results)
        )

    async def _run(self, proposal: _Proposal) -> Outcome:
        """The proposal's rollouts and reflection; then what it brought is remembered."""
        outcome = proposal.outcome = await self._propose(proposal)
        child = outcome.child
        outcome.productive = proposal.fresh or outcome.child_minibatch is not None
        if proposal.cancelled:
            return outcome  # says nothing of what its parent can still bring
        outcome.novel = proposal.fresh or (child is not None and child.id not in self.proposed)
        outcome.after = proposal.parent_verdict
        if child is not None:
            self.proposed.add(child.id)
            if outcome.rejection is None and self.view.is_duplicate(child.id):
                outcome.rejection = self._duplicate(proposal, child)
        return outcome

    def _cancelled(
        self, proposal: _Proposal, outcome: Outcome, texts: dict[str, str] | None
    ) -> bool:
        """With ``cancel_stale``: whether the proposal's parent has been superseded since it
        was planned, so that what is left of it is speculative work that lost; if so it is
        rejected (``parent_superseded``) before paying for its next step. Its parent is
        superseded when its validation ended without it joining the pool, or when the parent
        selector would no longer pick it (a selector that cannot say, ``Selectable``, never
        makes it so). Proposals continuing a child still being validated go on: that is the
        speculation."""
        view, parent = self.view, proposal.parent
        if not view.config.cancel_stale:
            return False
        verdict = proposal.parent_verdict
        if verdict is not None and not verdict.done():
            return False
        selector = view.strategies.parent_selector
        if verdict is not None and not verdict.result():
            why = f"its parent {parent.id} did not join the pool"
        elif isinstance(selector, Selectable) and parent.id not in selector.selectable(view):
            why = f"the parent selector no longer picks its parent {parent.id}"
        else:
            return False
        outcome.rejection = ("parent_superseded", why, shown(texts or {}))
        proposal.status, proposal.cancelled = "skipped", True
        return True

    def _duplicate(self, proposal: _Proposal, child: Candidate) -> tuple[str, str, str | None]:
        proposal.status = "invalid"
        texts = {m: child.prompts[m] for m in child.changed_modules}
        return ("duplicate_candidate", f"same prompts as {child.id}", shown(texts))

    def _below_top(self, results: Sequence[EvalResult]) -> tuple[float, list[int]] | None:
        """The top score and the positions of the results below it, the only ones a rewrite
        can raise; None without a ``score_range`` (no top to compare with)."""
        bounds = self.view.config.score_range
        if bounds is None:
            return None
        return bounds[1], [i for i, r in enumerate(results) if r.score < bounds[1]]

    def _can_gain(self, modules: tuple[str, ...], results: Sequence[EvalResult]) -> tuple[str, ...]:
        """The modules whose rewrite could win this minibatch: those read by a rollout the
        parent fell short of the top score on. A rollout that never read a module runs the
        same for the child (reuse.py), and one at the top cannot rise, so a rewrite of any
        other module could at best tie: its reflection call would be spent for nothing. Every
        module when that cannot be known (reuse off, no top score, a failed rollout, a system
        that cannot say what it read)."""
        below = self._below_top(results)
        if not self.view.config.reuse_rollouts or below is None:
            return modules
        short = [results[i] for i in below[1]]
        if any(r.error is not None or r.trace.read is None for r in short):
            return modules
        read = {module for r in short for module in r.trace.read or ()}
        return tuple(module for module in modules if module in read)

    async def _propose(self, proposal: _Proposal) -> Outcome:
        """Parent minibatch, reflection(s), child minibatch."""
        view, parent, minibatch = self.view, proposal.parent, proposal.minibatch
        parent_results = await view.evaluate(parent, minibatch)
        outcome = Outcome(parent_minibatch=MinibatchRun(parent, minibatch, parent_results))
        proposal.implicated = self._implicated(parent_results)
        if view.config.skip_perfect_score and all(
            r.score >= view.config.perfect_score for r in parent_results
        ):
            outcome.rejection = ("parent_perfect_on_minibatch", "nothing to learn from", None)
            proposal.status = "skipped"
            return outcome
        if self._cancelled(proposal, outcome, None):
            if not proposal.repeat:
                self.reflected.discard(proposal.key)  # not reflected on after all
            return outcome
        modules = self._can_gain(proposal.modules, parent_results)
        if not modules:
            names = ", ".join(proposal.modules)
            detail = f"no rollout its parent fell short on read {names}: no rewrite could win"
            outcome.rejection = ("unread_where_parent_failed", detail, None)
            proposal.status = "skipped"
            return outcome
        proposal.status = "invalid"  # until a child runs its minibatch
        if proposal.repeat:
            outcome.rejection = (
                "already_reflected",
                "the same parent, modules and minibatch were reflected on before",
                None,
            )
            return outcome
        keep = view.config.rejected_attempts_shown
        try:
            replies = await asyncio.gather(
                *(
                    self.proposer.reflect(
                        parent,
                        module,
                        view.node_of(module),
                        minibatch,
                        parent_results,
                        self.attempts.get((parent.id, module), [])[-keep:] if keep else (),
                    )
                    for module in modules
                )
            )
        except LMCallFailed as exc:
            await view.turn()
            outcome.rejection = ("reflection_failed", str(exc), None)
            return outcome
        await view.turn()
        outcome.reflections = list(zip(modules, replies, strict=True))
        texts: dict[str, str] = {}
        invalid: InvalidProposal | None = None
        for module, reflection in outcome.reflections:
            try:
                texts[module] = self.proposer.proposal(parent, module, reflection)
            except InvalidProposal as exc:
                invalid = invalid or exc
        if not texts:
            assert invalid is not None
            outcome.rejection = (invalid.reason, invalid.detail, invalid.text)
            return outcome
        if self._cancelled(proposal, outcome, texts):
            return outcome
        base, base_results = parent, parent_results
        if self.catch_up:
            rival = self._newer_rival(proposal)
            if rival is not None and all(rival.prompts[m] == parent.prompts[m] for m in texts):
                base, base_results = rival, await view.evaluate(rival, minibatch)
        child = outcome.child = base.mutate_many(texts)
        if view.is_duplicate(child.id):
            outcome.rejection = self._duplicate(proposal, child)
            return outcome
        ran, child_results, stopped = await self._child_minibatch(child, minibatch, base_results)
        outcome.child_minibatch = MinibatchRun(child, [minibatch[i] for i in ran], child_results)
        proposal.status = "passed"
        reason = stopped or view.strategies.acceptance.reject_reason(base_results, child_results)
        if reason is not None:
            outcome.rejection = ("not_better_on_minibatch", reason, shown(texts))
            proposal.status = _lost([base_results[i] for i in ran], child_results)
            return outcome
        regressed = await self._regressions(base, child, minibatch, base_results, child_results)
        if regressed is not None:
            outcome.rejection = ("regressed_on_screen", regressed, shown(texts))
            proposal.status = "worse"
        elif self.catch_up and base is parent:
            await self._screen(proposal, outcome, texts)
        return outcome

    async def _regressions(
        self,
        base: Candidate,
        child: Candidate,
        minibatch: list[Example],
        base_results: list[EvalResult],
        child_results: list[EvalResult],
    ) -> str | None:
        """With ``regression_screen`` = k: a minibatch winner also runs k training examples
        its baseline is known to get right (the only ones where a rewrite can break something;
        free for the baseline) and must still pass the acceptance on the minibatch and those
        together; why not, or None. Examples whose known rollout never read the rewritten
        modules are left out (they run the same: reuse.py); the k are fixed by the child's id,
        not a random draw, so a replayed run picks the same."""
        view, k = self.view, self.view.config.regression_screen
        bounds = view.config.score_range
        if not k or bounds is None:
            return None
        changed = set(child.changed_modules)
        taken = {ex.uid for ex in minibatch}
        known = view.known(base.id, view.trainset)
        passed = [
            ex
            for ex in view.trainset
            if ex.uid not in taken and known.get(ex.key, -math.inf) >= bounds[1]
        ]
        results = dict(zip((ex.uid for ex in passed), await view.evaluate(base, passed)))
        reads = {uid: result.trace.read for uid, result in results.items()}
        exposed = [ex for ex in passed if (read := reads[ex.uid]) is None or changed & set(read)]
        exposed.sort(key=lambda ex: content_id({"c": child.id, "e": ex.uid}))
        screen = exposed[:k]
        if not screen:
            return None
        child_screen = await view.evaluate(child, screen)
        reason = view.strategies.acceptance.reject_reason(
            [*base_results, *(results[ex.uid] for ex in screen)], [*child_results, *child_screen]
        )
        if reason is None:
            return None
        return f"on its minibatch and {len(screen)} examples its parent gets right: {reason}"

    async def _child_minibatch(
        self, child: Candidate, minibatch: list[Example], baseline: Sequence[EvalResult]
    ) -> tuple[list[int], list[EvalResult], str | None]:
        """The child's minibatch: the positions it ran, their results, and why it stopped
        early (None: it ran them all).

        With ``staged_minibatch`` it runs first the examples where its baseline scored below
        the top score, the only ones where it can gain, and the rest only if it could still
        pass the acceptance with the top score on all of them (``best_case``); one wave when
        every example or none is such a gain example."""
        view = self.view
        everything = list(range(len(minibatch)))
        top, gains = self._below_top(baseline) or (0.0, [])  # no top: one wave
        if not view.config.staged_minibatch or len(gains) in (0, len(minibatch)):
            return everything, await view.evaluate(child, minibatch), None
        first = dict(zip(gains, await view.evaluate(child, [minibatch[i] for i in gains])))
        hoped = best_case(
            [first.get(i) for i in everything], baseline, top, view.config.score_repeats
        )
        reason = view.strategies.acceptance.reject_reason(baseline, hoped)
        if reason is not None:
            rest = len(minibatch) - len(gains)
            detail = (
                f"stopped after {len(gains)} of {len(minibatch)} examples: at best (the top "
                f"score on the {rest} not run) {reason}"
            )
            return gains, list(first.values()), detail
        others = [i for i in everything if i not in first]
        first.update(zip(others, await view.evaluate(child, [minibatch[i] for i in others])))
        return everything, [first[i] for i in everything], None

    async def _screen(self, proposal: _Proposal, outcome: Outcome, texts: dict[str, str]) -> None:
        """Reject a minibatch winner that does not also beat the best newer descendant of its
        parent (one that joined since the proposal was planned) on the same minibatch."""
        rival = self._newer_rival(proposal)
        if rival is None or outcome.child_minibatch is None:
            return
        view = self.view
        rival_results = await view.evaluate(rival, proposal.minibatch)
        child_results = outcome.child_minibatch.results
        reason = view.strategies.acceptance.reject_reason(rival_results, child_results)
        if reason is not None:
            before = sum(r.score for r in rival_results)
            after = sum(r.score for r in child_results)
            detail = f"minibatch score {after:g} vs {before:g} of {rival.id}, newer than its parent"
            outcome.rejection = ("superseded_on_minibatch", detail, shown(texts))
            proposal.status = _lost(rival_results, child_results)

    def _newer_rival(self, proposal: _Proposal) -> Candidate | None:
        """The best candidate that joined since the proposal was planned, descends from its
        parent and beats it on validation; None if there is none."""
        view, parent_id = self.view, proposal.parent.id
        if parent_id not in view.scores:
            return None
        lineage = {cid: c.parent_ids for cid, c in view.candidates.items()}
        floor = view.mean(parent_id)
        rivals = [
            cid
            for cid in list(view.candidates)[proposal.pool_size :]
            if parent_id in ancestors(cid, lineage) and view.mean(cid) > floor
        ]
        if not rivals:
            return None
        return view.candidates[max(rivals, key=view.mean)]


def _lost(base: Sequence[EvalResult], child: Sequence[EvalResult]) -> str:
    """How a child that did not beat its baseline on the minibatch did, for the module
    selector: "tied" or "worse"."""
    return "tied" if sum(r.score for r in child) == sum(r.score for r in base) else "worse"
