"""A mutation spends nothing where a rewrite cannot win (no reflection on a module that no failed
minibatch rollout read), and ``regression_screen`` checks a minibatch winner on examples its
parent gets right before its validation is paid for."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from gepa_graph.candidate import Candidate
from gepa_graph.evaluation import EvalResult
from gepa_graph.system import Trace
from tests.test_proposers_view import FakeView, mutation


class RoutedView(FakeView):
    """A view whose rollouts read one module each: ``a`` on examples whose key ends in an even
    digit, ``b`` on the others; a rollout scores 1 when that module's prompt names the key."""

    @staticmethod
    def reads(key: str) -> str:
        return "a" if int(key[-1]) % 2 == 0 else "b"

    @classmethod
    def score(cls, candidate: Candidate, key: str) -> float:
        return float(f"[{key}]" in candidate.prompts[cls.reads(key)])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache = {}

    async def evaluate(self, candidate, examples):
        self.ran.append((candidate.id, tuple(ex.key for ex in examples)))
        results = []
        for ex in examples:
            trace = Trace(read=[self.reads(ex.key)])
            results.append(
                EvalResult(example_key=ex.key, score=self.score(candidate, ex.key), trace=trace)
            )
            self.cache.setdefault(candidate.id, {})[ex.key] = results[-1].score
        return results


def _one(view: FakeView, rewrite) -> tuple[Any, Any]:
    proposer, lm = mutation(rewrite)
    work = proposer.ask(view, None, True)
    return asyncio.run(work.run()), lm


def test_no_reflection_on_a_module_no_failed_minibatch_rollout_read() -> None:
    # The minibatch t0, t2, t4 reads only ``a``; ``a`` has had its turn, so ``b`` is next.
    view = RoutedView(["t0", "t2", "t4"], ["v0"], minibatch_size=3, seed=0)
    parent = Candidate(prompts={"a": "seed a", "b": "seed b"})
    view.join(parent)
    view.strategies.module_selector.select(view, parent)  # ``a`` had its turn
    outcome, lm = _one(view, lambda text: text + " [t0]")
    assert outcome.rejection[0] == "unread_where_parent_failed"
    assert "read b" in outcome.rejection[1]
    assert not lm.calls and outcome.child is None  # no reflection paid for

    # With reuse off the reads are not trusted: ``b`` is reflected on as before.
    view = RoutedView(["t0", "t2", "t4"], ["v0"], minibatch_size=3, seed=0, reuse_rollouts=False)
    view.join(parent)
    view.strategies.module_selector.select(view, parent)
    outcome, lm = _one(view, lambda text: text + " [t0]")
    assert len(lm.calls) == 1 and outcome.rejection[0] == "not_better_on_minibatch"


def test_a_module_read_only_where_the_parent_was_right_is_not_reflected_on_either() -> None:
    view = RoutedView(["t0", "t1", "t2"], ["v0"], minibatch_size=3, seed=0)
    parent = Candidate(prompts={"a": "seed a", "b": "seed b [t1]"})  # right on t1 (``b``)
    view.join(parent)
    view.strategies.module_selector.select(view, parent)
    outcome, lm = _one(view, lambda text: text + " [t9]")
    assert outcome.rejection[0] == "unread_where_parent_failed" and not lm.calls


def test_the_regression_screen_rejects_a_winner_that_breaks_what_its_parent_got_right() -> None:
    train = ["t0", "t2", "t4", "t6", "t8"]
    parent = Candidate(prompts={"a": "seed a [t4] [t6]", "b": "seed b"})

    def run(screen: int, rewrite) -> tuple[RoutedView, Any]:
        view = RoutedView(train, ["v0"], minibatch_size=2, seed=1, regression_screen=screen)
        view.join(parent)
        minibatch = [ex for ex in view.trainset if ex.key in ("t0", "t2")]  # both failed
        view.strategies.sampler = SimpleNamespace(sample=lambda view, parent: minibatch)
        view.cache = {parent.id: {"t4": 1.0, "t6": 1.0}}  # known: right on t4 and t6
        outcome, _ = _one(view, rewrite)
        return view, outcome

    # The rewrite fixes the minibatch's failures but forgets t4 and t6.
    breaks = lambda text: "seed a [t0] [t2] [t8]"  # noqa: E731
    view, outcome = run(0, breaks)
    assert outcome.rejection is None  # it would be validated
    view, outcome = run(2, breaks)
    assert outcome.rejection[0] == "regressed_on_screen"
    assert "2 examples its parent gets right" in outcome.rejection[1]
    assert sorted(view.ran[-1][1]) == ["t4", "t6"]  # the child ran the screen

    # A rewrite that keeps them passes the screen.
    view, outcome = run(2, lambda text: text + " [t0] [t2] [t8]")
    assert outcome.rejection is None
