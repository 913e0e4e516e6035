"""Rollout reuse (reuse.py): a candidate takes another's result on an example whose rollout read
none of the prompts they differ in, and every score it takes is the score running would give."""

import asyncio
import copy
import json
import pickle
import re
from collections import Counter

import pytest

import gepa_graph as gg
from gepa_graph.budget import Budget
from gepa_graph.candidate import Candidate
from gepa_graph.evaluation import Evaluator
from gepa_graph.example import Example
from gepa_graph.store import RunStore
from gepa_graph.system import PromptReads
from gepa_graph.testing.rules import RuleTask


@pytest.mark.parametrize(
    ("use", "read"),
    [
        (lambda p: p["a"], ["a"]),
        (lambda p: p.get("b"), ["b"]),
        (lambda p: p.pop("a"), ["a"]),
        (lambda p: "a" in p and len(p), []),  # membership and size say nothing of the texts
        (lambda p: list(p.keys()), []),
        (lambda p: dict(p), ["a", "b"]),
        (lambda p: {**p}, ["a", "b"]),
        (lambda p: json.dumps(p), ["a", "b"]),
        (lambda p: "{a}".format(**p), ["a", "b"]),
        (lambda p: [v for v in p.values()], ["a", "b"]),
        (lambda p: p.copy(), ["a", "b"]),
        (lambda p: p | {}, ["a", "b"]),
        (lambda p: copy.deepcopy(p), ["a", "b"]),
        (lambda p: pickle.dumps(p), ["a", "b"]),
        (lambda p: f"{p}", ["a", "b"]),
        (lambda p: p == {"a": "A", "b": "B"}, ["a", "b"]),
    ],
)
def test_prompt_reads_note_every_prompt_a_function_could_have_used(use, read):
    prompts = PromptReads({"a": "A", "b": "B"})
    use(prompts)
    assert sorted(prompts.read) == read


def test_prompt_reads_stay_a_plain_dict_to_the_function():
    prompts = PromptReads({"a": "A"})
    assert isinstance(prompts, dict) and prompts == {"a": "A"}
    assert type(pickle.loads(pickle.dumps(prompts))) is dict


def test_a_function_that_hands_its_prompts_on_in_its_output_read_them_all():
    """The metric may read the prompts from the output, after the function returned."""
    from dataclasses import dataclass

    @dataclass
    class Answer:
        text: str
        context: list

    outputs = [
        lambda p: p,
        lambda p: {"answer": "x", "prompts": p},
        lambda p: Answer("x", [p]),
    ]
    for make in outputs:
        system = gg.FunctionSystem({"a": "A", "b": "B"}, lambda p, ex, make=make: make(p))
        rollout = asyncio.run(system.arun({"a": "A", "b": "B"}, {}))
        assert rollout.trace.read == ["a", "b"]
    plain = gg.FunctionSystem({"a": "A", "b": "B"}, lambda p, ex: {"answer": p["a"]})
    assert asyncio.run(plain.arun({"a": "A", "b": "B"}, {})).trace.read == ["a"]


def _routed(calls: Counter):
    """A two-specialist system: an example of kind k reads only the prompt of the specialist
    that owns it (``a`` for even kinds, ``b`` for odd), as a router would send it."""

    def fn(prompts, example):
        calls[example["id"]] += 1
        owner = "a" if example["kind"] % 2 == 0 else "b"
        return f"rule-{example['kind']}." in prompts[owner]

    return gg.FunctionSystem({"a": "A.", "b": "B."}, fn)


def _evaluate(system, config, candidate_examples):
    settings = gg.OptimizeConfig(max_rollouts=100, **config)
    budget = Budget(settings)
    evaluator = Evaluator(
        system, lambda ex, pred: float(pred), settings, budget, RunStore(None).journal
    )

    async def go():
        return [await evaluator.evaluate(c, examples) for c, examples in candidate_examples]

    return asyncio.run(go()), budget.ledger


EXAMPLES = [Example({"id": f"x{k}", "kind": k}) for k in range(4)]


def test_a_child_takes_its_parents_results_where_its_change_was_never_read():
    calls: Counter = Counter()
    parent = Candidate(prompts={"a": "A.", "b": "B."})
    child = parent.mutate_many({"b": "B.\nrule-1."})
    (before, after), ledger = _evaluate(_routed(calls), {}, [(parent, EXAMPLES), (child, EXAMPLES)])
    # x0 and x2 go to ``a`` only: the child takes them; x1 and x3 read ``b``: it runs them.
    assert calls == Counter({"x0": 1, "x1": 2, "x2": 1, "x3": 2})
    assert [r.reused_from for r in after] == [parent.id, None, parent.id, None]
    assert [r.score for r in after] == [0.0, 1.0, 0.0, 0.0]  # what running gives
    assert ledger.rollouts_used == 6 and ledger.reused_rollouts == 2
    assert [r.trace.read for r in before] == [["a"], ["b"], ["a"], ["b"]]


def test_a_merge_takes_from_either_parent_and_reuse_can_be_switched_off():
    calls: Counter = Counter()
    seed = Candidate(prompts={"a": "A.", "b": "B."})
    left = seed.mutate_many({"a": "A.\nrule-0."})
    right = seed.mutate_many({"b": "B.\nrule-1."})
    merged = Candidate(prompts={"a": left.prompts["a"], "b": right.prompts["b"]})
    jobs = [(left, EXAMPLES[:2]), (right, EXAMPLES[:2]), (merged, EXAMPLES[:2])]
    (_, _, both), ledger = _evaluate(_routed(calls), {}, jobs)
    assert [r.reused_from for r in both] == [left.id, right.id]
    assert [r.score for r in both] == [1.0, 1.0]
    assert ledger.rollouts_used == 4

    calls.clear()
    (_, _, both), ledger = _evaluate(_routed(calls), {"reuse_rollouts": False}, jobs)
    assert [r.reused_from for r in both] == [None, None] and ledger.rollouts_used == 6


def test_failed_rollouts_and_systems_that_cannot_say_what_they_read_are_not_reused():
    class Opaque:  # a System of its own: its traces say nothing of what it read
        def modules(self):
            return {"a": "A.", "b": "B."}

        async def arun(self, candidate, example):
            return gg.Rollout(output=True)

    def flaky(prompts, example):
        raise RuntimeError("the model is down")

    parent = Candidate(prompts={"a": "A.", "b": "B."})
    child = parent.mutate_many({"b": "B2."})
    for system in (Opaque(), gg.FunctionSystem({"a": "A.", "b": "B."}, flaky)):
        (_, after), ledger = _evaluate(system, {}, [(parent, EXAMPLES), (child, EXAMPLES)])
        assert all(r.reused_from is None for r in after)
        assert ledger.rollouts_used == 8 and ledger.reused_rollouts == 0


def test_every_score_of_a_run_with_reuse_is_the_score_running_gives():
    """The whole search with reuse on (the default): each candidate's validation score on each
    example, re-run directly with the student, is the same; and reuse did save rollouts."""
    task = RuleTask(n_types=6, modules=("a", "b", "c"))
    train, val = task.examples(12, seed=1, prefix="t"), task.examples(12, seed=2, prefix="v")
    result = gg.optimize(
        task.system(),
        train,
        val,
        metric=task.metric,
        reflection_lm=task.reflection_lm(),
        max_rollouts=150,
        config=gg.OptimizeConfig(seed=3, parallel_proposals=1),
        progress=False,
    )
    assert len(result.candidates) > 2 and result.ledger.reused_rollouts > 0
    by_key = {ex["id"]: ex for ex in val}
    for record in result.candidates:
        for key, score in record.val_scores.items():
            example = by_key[key]
            truth = task.metric(example, task.answer(record.prompts, example, gg.Trace())).value
            assert score == truth, (record.id, key)


def test_a_langgraph_rollout_reads_the_prompts_its_model_calls_carried(tmp_path):
    """A router sends each question to one specialist node; a child that rewrote one
    specialist's prompt takes the other specialist's examples from its parent."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    from gepa_graph.testing.chat_model import ScriptedChatModel

    class State(TypedDict, total=False):
        question: str
        answer: str

    def specialist(topic):
        def reply(messages):
            return "RIGHT" if "Be exact." in messages[0].text else "wrong"

        model = ScriptedChatModel(script=reply)

        def node(state):
            system = ("system", f"You answer {topic} questions.")
            return {"answer": model.invoke([system, ("human", state["question"])]).text}

        return node

    builder = StateGraph(State)
    builder.add_node("maths", specialist("maths"))
    builder.add_node("geography", specialist("geography"))
    builder.add_conditional_edges(
        START, lambda s: "maths" if "sum" in s["question"] else "geography"
    )
    builder.add_edge("maths", END)
    builder.add_edge("geography", END)
    graph = builder.compile()

    def metric(example, prediction):
        if prediction["answer"] == "RIGHT":
            return 1.0
        return gg.Score(value=0.0, feedback="Inexact: the prompt must say 'Be exact.'")

    def reflect(prompt):
        current = re.findall(r"```\n(.*?)\n```", prompt, re.S)[0]
        return f"```\n{current} Be exact.\n```"

    questions = ["sum 1 2", "capital of Peru", "sum 3 4", "capital of Chile"] * 2
    examples = [{"id": f"q{i}", "question": q} for i, q in enumerate(questions)]
    run_dir = tmp_path / "run"
    result = gg.optimize(
        graph,
        examples[:4],
        examples[4:],
        metric=metric,
        reflection_lm=reflect,
        max_rollouts=60,
        config=gg.OptimizeConfig(seed=0, parallel_proposals=1),
        run_dir=run_dir,
        progress=False,
    )
    assert result.best_score == 1.0 > result.seed_score
    assert result.ledger.reused_rollouts > 0
    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    reads = {
        (r["example_key"], tuple(r["result"]["trace"]["read"]))
        for r in journal
        if r["type"] == "rollout"
    }
    geography, maths = sorted(result.seed_candidate)
    assert reads >= {("q4", (maths,)), ("q5", (geography,))}
    assert all(len(read) == 1 for _, read in reads)  # one specialist per question
