"""Speculative work that lost is cancelled (``cancel_stale``): a proposal whose parent the parent
selector would no longer pick, or whose parent being validated did not join, stops before its
next paid step, on the virtual clock with proposals in flight."""

from collections import defaultdict

import gepa_graph as gg
from gepa_graph.candidate import Candidate
from gepa_graph.events import MinibatchEvaluated, ProposalRejected, ReflectionCalled
from gepa_graph.strategies import CurrentBestSelector, ParetoSelector, Selectable, Verdict
from gepa_graph.strategies.base import scores_of
from gepa_graph.testing.rules import RuleTask
from tests.fake_search import FakeSearch
from tests.test_steady_state import optimize_on_clock


def pool(search: FakeSearch, vectors: dict[str, dict[str, float]]) -> None:
    for text, scores in vectors.items():
        candidate = Candidate(prompts={"a": text, "b": "b"})
        search.candidates[candidate.id] = candidate
        search.scores[candidate.id] = scores


def ids(search: FakeSearch) -> dict[str, str]:
    return {c.prompts["a"]: cid for cid, c in search.candidates.items()}


def test_selectable_is_what_select_can_draw_and_never_a_dominated_candidate():
    search = FakeSearch(val=["x", "y", "z"])
    pool(
        search,
        {
            "seed": {"x": 0.0, "y": 1.0, "z": 0.0},
            "dominated": {"x": 0.0, "y": 1.0, "z": 0.0},  # the seed's fronts, and younger
            "left": {"x": 1.0, "y": 1.0, "z": 0.0},
            "right": {"x": 0.0, "y": 0.0, "z": 1.0},
        },
    )
    by_text = ids(search)
    pareto_ = ParetoSelector()
    assert isinstance(pareto_, Selectable) and isinstance(CurrentBestSelector(), Selectable)
    drawn = {pareto_.select(search).id for _ in range(200)}
    assert drawn == pareto_.selectable(search) == {by_text["left"], by_text["right"]}
    assert CurrentBestSelector().selectable(search) == {search.best_id}


def run(strategies=None, **config):
    """The two-module rule task with proposals in flight on the virtual clock: events, result,
    and the system (with the rollouts it ran). Reflections take 2 s, so proposals are still
    reflecting when a sibling joins."""
    task = RuleTask(n_types=8, modules=("a", "b"))
    system, result, events, _ = optimize_on_clock(
        task,
        None,
        reflection_s=2.0,
        sizes=(24, 16),
        strategies=strategies,
        **{"seed": 6, "concurrency": 32, "max_rollouts": 400, **config},
    )
    return events, result, system


def test_a_proposal_whose_parent_was_superseded_stops_before_paying_for_its_child():
    events, result, system = run(candidate_selection="current_best")
    cancelled = [
        e for e in events if isinstance(e, ProposalRejected) and e.reason == "parent_superseded"
    ]
    assert cancelled, "proposals in flight from an old best were not cancelled"
    assert all("no longer picks its parent" in e.detail for e in cancelled)
    paid = defaultdict(set)
    for event in events:
        if isinstance(event, MinibatchEvaluated):
            paid[event.iteration].add(event.role)
        elif isinstance(event, ReflectionCalled):
            paid[event.iteration].add("reflection")
    for event in cancelled:
        assert "child" not in paid[event.iteration]  # neither its child's minibatch...
        if event.proposed_text is None:  # ...nor, cancelled before it, its reflection
            assert "reflection" not in paid[event.iteration]
    # Cancelled before reflecting, and after: both checkpoints are reached on this run.
    assert {e.proposed_text is None for e in cancelled} == {True, False}
    assert result.rollouts_used == len(system.runs) <= 400
    # Deterministic on the virtual clock, cancellations included.
    again = run(candidate_selection="current_best")[1]
    assert [c.id for c in again.candidates] == [c.id for c in result.candidates]
    assert [r.reason for r in again.rejected] == [r.reason for r in result.rejected]


class RejectChildren:
    """Validates every candidate on everything, and lets only the seed join."""

    async def validate(self, search, candidates):
        verdicts = []
        for candidate in candidates:
            scores = scores_of(await search.evaluate(candidate, search.valset))
            why = None if candidate.origin == "seed" else ("rejected", "only the seed joins")
            verdicts.append(Verdict(scores, why))
        return verdicts


def test_a_continuation_of_a_child_that_did_not_join_is_cancelled():
    # A child that won its minibatch is continued while it is validated; here none joins.
    events, _, _ = run(strategies={"validation": RejectChildren()})
    reasons = [(e.reason, e.detail) for e in events if isinstance(e, ProposalRejected)]
    assert any(r == "parent_superseded" and "did not join" in d for r, d in reasons)
    without = run(cancel_stale=False, strategies={"validation": RejectChildren()})[0]
    assert any(isinstance(e, ProposalRejected) and e.reason == "parent_rejected" for e in without)


def test_on_by_default_and_nothing_is_cancelled_when_off():
    assert gg.OptimizeConfig().cancel_stale is True
    events, _, _ = run(cancel_stale=False, candidate_selection="current_best")
    assert not any(
        isinstance(e, ProposalRejected) and e.reason == "parent_superseded" for e in events
    )
