"""The proposers on their own, against a fake view (like the strategies against FakeSearch): what
``ask`` plans, what the work's coroutine comes back with, and how ``tell`` updates their memory.
No engine, no budget, no journal: a proposer only reads its view and returns data."""

import asyncio

from gepa_graph.candidate import Candidate
from gepa_graph.evaluation import EvalResult
from gepa_graph.lm import ReflectionLM
from gepa_graph.proposers.base import Proposer
from gepa_graph.proposers.merge import Merge
from gepa_graph.proposers.mutation import ReflectiveMutation
from gepa_graph.proposers.reflective import ReflectiveProposer
from gepa_graph.replay import ReflectionReplay
from gepa_graph.store import RunStore
from gepa_graph.strategies import build
from gepa_graph.testing.reflection import ScriptedReflectionLM
from tests.test_strategies import FakeSearch

SEED = Candidate(prompts={"a": "seed a", "b": "seed b"})


class FakeView(FakeSearch):
    """A proposer's view: FakeSearch's pool, plus the strategies, duplicates and turns. A
    rollout scores 1 on an example whose key its prompts mention, else 0."""

    def __init__(self, train=(), val=(), **config):
        super().__init__(train, val, **config)
        self.strategies = build(self.config)
        self.turns = 0
        self.validating: set[str] = set()
        self.iteration = self.stale_iterations = self.idle_iterations = 0
        self.exhausted: set[str] = set()

    def join(self, candidate: Candidate) -> None:
        """Put a candidate in the pool with its scores on the whole validation set."""
        self.candidates[candidate.id] = candidate
        self.scores[candidate.id] = {ex.key: self.score(candidate, ex.key) for ex in self.valset}

    @staticmethod
    def score(candidate: Candidate, key: str) -> float:
        return float(any(f"[{key}]" in text for text in candidate.prompts.values()))

    async def evaluate(self, candidate, examples):
        self.ran.append((candidate.id, tuple(ex.key for ex in examples)))
        return [
            EvalResult(example_key=ex.key, score=self.score(candidate, ex.key)) for ex in examples
        ]

    def budget_stop_reason(self):
        return None

    def node_of(self, module):
        return None

    def is_duplicate(self, candidate_id):
        return candidate_id in self.candidates or candidate_id in self.validating

    async def turn(self):
        self.turns += 1


def mutation(rewrite) -> tuple[ReflectiveMutation, ScriptedReflectionLM]:
    """A mutation proposer whose reflection LM rewrites a prompt with ``rewrite(current)``."""
    scripted = ScriptedReflectionLM(lambda current, _prompt: rewrite(current))
    replay = ReflectionReplay(RunStore(None).journal, {})
    return ReflectiveMutation(ReflectiveProposer(ReflectionLM(scripted), replay, 2000)), scripted


def test_both_proposers_follow_the_ask_tell_protocol():
    assert isinstance(Merge(), Proposer)
    assert isinstance(mutation(str)[0], Proposer)


def test_a_mutation_plans_data_and_its_run_returns_the_child_with_its_evidence():
    view = FakeView(["t0", "t1", "t2"], ["v0", "v1"], minibatch_size=3, seed=0)
    view.join(SEED)
    proposer, lm = mutation(lambda current: current + " [t0] [t1] [v0]")
    work = proposer.ask(view, room=None, alone=True)
    assert (work.kind, work.parent_ids, work.modules) == ("mutation", (SEED.id,), ("a",))
    assert work.rollouts == 3 + 3 + 2  # parent minibatch, child minibatch, child validation
    assert not view.ran and not lm.calls  # planning runs nothing
    outcome = asyncio.run(work.run())
    child = outcome.child
    assert outcome.rejection is None and child.prompts["a"] == "seed a [t0] [t1] [v0]"
    assert child.parent_ids == (SEED.id,) and child.changed_modules == ("a",)
    assert [r.score for r in outcome.parent_minibatch.results] == [0.0, 0.0, 0.0]
    assert sorted(r.score for r in outcome.child_minibatch.results) == [0.0, 1.0, 1.0]
    assert [module for module, _ in outcome.reflections] == ["a"] and len(lm.calls) == 1
    assert outcome.productive and outcome.novel and outcome.after is None
    assert view.turns == 1  # after the reflection; the view's evaluate takes the others
    assert child.id in proposer.proposed


def test_tell_continues_a_child_being_validated_and_settles_its_verdict():
    view = FakeView(["t0", "t1", "t2"], ["v0", "v1"], minibatch_size=3, seed=0)
    view.join(SEED)
    proposer, _ = mutation(lambda current: current + " [t0]")

    async def scenario():
        first = proposer.ask(view, None, True)
        child = (await first.run()).child
        proposer.tell(first, "validating")
        # The next proposal continues from the child still being validated, and asks the
        # engine to wait for its verdict.
        second = proposer.ask(view, None, False)
        assert second.parent_ids == (child.id,)
        view.validating.add(child.id)
        waiting = await second.run()
        assert waiting.after is not None and not waiting.after.done()
        view.validating.discard(child.id)
        view.join(child)
        proposer.tell(first, "joined")
        assert await waiting.after is True
        return child

    child = asyncio.run(scenario())
    # The merge scheduler heard of one accepted child: a merge is now due.
    assert view.strategies.merge_scheduler.due == 1
    assert child.id in proposer.proposed and not proposer.attempts


def test_tell_remembers_a_rewrite_that_lost_and_a_repeat_is_not_planned_beside_others():
    view = FakeView(["t0", "t1", "t2"], ["v0"], minibatch_size=3, seed=0)
    view.join(SEED)
    proposer, _ = mutation(lambda current: current + " worse")
    work = proposer.ask(view, None, True)
    outcome = asyncio.run(work.run())
    assert outcome.rejection[0] == "not_better_on_minibatch"
    proposer.tell(work, "rejected")
    assert proposer.attempts == {(SEED.id, "a"): [("seed a worse", outcome.rejection[1])]}
    # Round robin moves to module b; b's first proposal is new, and then every minibatch
    # of three examples out of three repeats one already reflected on.
    proposer.tell(proposer.ask(view, None, True), "unfinished")
    assert proposer.ask(view, None, alone=False) is None  # a: only a repeat
    repeat = proposer.ask(view, None, alone=True)
    assert asyncio.run(repeat.run()).rejection[0] == "already_reflected"


def test_a_mutation_that_cannot_fit_its_worst_case_is_not_planned():
    view = FakeView(["t0", "t1", "t2"], ["v0", "v1"], minibatch_size=3, seed=0)
    view.join(SEED)
    proposer, _ = mutation(lambda current: current + " [t0]")
    assert proposer.ask(view, room=7, alone=True) is None
    assert proposer.ask(view, room=8, alone=True) is not None


def lineages(view: FakeView) -> tuple[Candidate, Candidate]:
    """Two children of the seed, one changed module a and the other b, both on the front."""
    left = SEED.mutate_many({"a": "seed a [v0] [v1]"})
    right = SEED.mutate_many({"b": "seed b [v2] [v3]"})
    for candidate in (SEED, left, right):
        view.join(candidate)
    return left, right


def test_a_due_merge_is_planned_as_data_and_its_run_returns_the_merged_child():
    view = FakeView([], ["v0", "v1", "v2", "v3"], merge_subsample_size=4, seed=0)
    left, right = lineages(view)
    proposer = Merge()
    assert proposer.ask(view, None, True) is None  # no merge due yet
    view.strategies.merge_scheduler.on_accepted(view, 1)
    work = proposer.ask(view, None, True)
    assert (work.kind, work.modules) == ("merge", ())
    assert set(work.parent_ids) == {left.id, right.id}
    assert work.rollouts == 4 + 4  # its subsample (never run) and its validation
    outcome = asyncio.run(work.run())
    assert outcome.rejection is None
    assert outcome.child.prompts == {"a": "seed a [v0] [v1]", "b": "seed b [v2] [v3]"}
    assert outcome.child.id in proposer.tried_merges
    # Tried once: the same merge is never planned again.
    view.strategies.merge_scheduler.on_accepted(view, 1)
    assert proposer.ask(view, None, True) is None


def test_a_merge_worse_than_its_better_parent_on_the_subsample_is_rejected():
    view = FakeView([], ["v0", "v1", "v2", "v3"], merge_subsample_size=4, seed=0)
    left, right = lineages(view)
    view.strategies.merge_scheduler.on_accepted(view, 1)
    work = Merge().ask(view, None, True)
    view.score = lambda candidate, key: 0.0 if candidate.origin == "merge" else 1.0
    outcome = asyncio.run(work.run())
    assert outcome.rejection[0] == "worse_than_parents_on_subsample"
    assert outcome.rejection[1] == "subsample score 0 vs best parent 2"


def test_room_below_a_merges_worst_case_plans_no_merge():
    view = FakeView([], ["v0", "v1", "v2", "v3"], merge_subsample_size=4, seed=0)
    lineages(view)
    view.strategies.merge_scheduler.on_accepted(view, 1)
    assert Merge().ask(view, room=7, alone=True) is None
    assert view.strategies.merge_scheduler.due == 1  # nothing was drawn


def test_screening_rejects_a_child_a_newer_sibling_already_beats_on_its_minibatch():
    view = FakeView(["t0", "t1", "t2"], ["v0", "v1"], minibatch_size=3, seed=0, cancel_stale=False)
    view.join(SEED)
    proposer, _ = mutation(lambda current: current + " [t0]")
    proposer.catch_up = True
    work = proposer.ask(view, None, True)
    assert work.rollouts == 3 + 3 + 2 + 3  # and a newer rival's minibatch
    # While it runs, a sibling with a better rewrite of the same module joins the pool.
    sibling = SEED.mutate_many({"a": "seed a [t0] [t1] [v0]"})
    view.join(sibling)
    outcome = asyncio.run(work.run())
    assert outcome.rejection[0] == "superseded_on_minibatch"
    assert outcome.rejection[1] == f"minibatch score 1 vs 2 of {sibling.id}, newer than its parent"
    assert sibling.id in {candidate for candidate, _ in view.ran}


def test_screening_lets_through_a_child_that_beats_the_newer_sibling_too():
    # The sibling rewrote the same module, so the child cannot be rebased onto it.
    view = FakeView(["t0", "t1", "t2"], ["v0", "v1"], minibatch_size=3, seed=0, cancel_stale=False)
    view.join(SEED)
    proposer, _ = mutation(lambda current: current + " [t0] [t1] [t2]")
    proposer.catch_up = True
    work = proposer.ask(view, None, True)
    view.join(SEED.mutate_many({"a": "seed a [t0] [v0]"}))
    outcome = asyncio.run(work.run())
    assert outcome.rejection is None and outcome.child is not None
    # Without a newer sibling nothing extra runs: parent and child minibatches only.
    view = FakeView(["t0", "t1", "t2"], ["v0", "v1"], minibatch_size=3, seed=0, cancel_stale=False)
    view.join(SEED)
    proposer, _ = mutation(lambda current: current + " [t0] [t1] [t2]")
    proposer.catch_up = True
    work = proposer.ask(view, None, True)
    assert asyncio.run(work.run()).rejection is None and len(view.ran) == 2


def test_a_proposal_whose_parent_a_newer_sibling_dominates_is_cancelled_before_reflecting():
    view = FakeView(["t0", "t1", "t2"], ["v0", "v1"], minibatch_size=3, seed=0)
    view.join(SEED)
    proposer, lm = mutation(lambda current: current + " [t0]")
    work = proposer.ask(view, None, True)
    view.join(SEED.mutate_many({"b": "seed b [v0]"}))  # joined while it ran: SEED is dominated
    outcome = asyncio.run(work.run())
    assert outcome.rejection[0] == "parent_superseded" and outcome.child is None
    assert not lm.calls and [(c, sorted(keys)) for c, keys in view.ran] == [
        (SEED.id, ["t0", "t1", "t2"])  # its minibatch only
    ]
    # Not reflected on after all: the same proposal from SEED is not "already reflected".
    assert not proposer.reflected
    # A sibling that leaves SEED on a front of its own does not supersede it.
    view = FakeView(["t0", "t1", "t2"], ["v0", "v1"], minibatch_size=3, seed=0)
    view.join(SEED.mutate_many({"a": "seed a [v1]"}))
    proposer, lm = mutation(lambda current: current + " [t0]")
    work = proposer.ask(view, None, True)
    view.join(SEED.mutate_many({"b": "seed b [v0]"}))
    assert asyncio.run(work.run()).rejection is None and lm.calls


def test_rebasing_applies_the_rewrite_to_a_newer_sibling_that_left_its_module_alone():
    view = FakeView(["t0", "t1", "t2"], ["v0", "v1"], minibatch_size=3, seed=0, cancel_stale=False)
    view.join(SEED)
    proposer, _ = mutation(lambda current: current + " [t0]")
    proposer.catch_up = True
    work = proposer.ask(view, None, True)
    assert work.modules == ("a",)
    sibling = SEED.mutate_many({"b": "seed b [t1] [v0]"})  # joined while it ran
    view.join(sibling)
    outcome = asyncio.run(work.run())
    child = outcome.child
    assert outcome.rejection is None and child.parent_ids == (sibling.id,)
    assert child.prompts == {"a": "seed a [t0]", "b": "seed b [t1] [v0]"}
    # It was judged against the sibling (1 of 3) on the minibatch, not the old parent (0).
    assert (sibling.id, ("t0", "t1", "t2")) in [(c, tuple(sorted(k))) for c, k in view.ran]
