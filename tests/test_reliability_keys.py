"""Results are kept apart per example, not per id: users number each split from 0, and a
training example must never lend its score to the validation example with the same id."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gepa_graph as gg
from gepa_graph.testing.reflection import ScriptedReflectionLM


def _system(prompts_seen):
    def answer(prompts, example):
        prompts_seen[gg.Candidate(prompts=prompts).id] = dict(prompts)
        return prompts["instructions"]

    return gg.FunctionSystem(modules={"instructions": "Answer."}, fn=answer)


def _longer():
    return ScriptedReflectionLM(lambda current, prompt: current + " Think.")


def test_train_and_val_ids_that_collide_do_not_share_scores(tmp_path):
    # Any prompt passes a training example; no prompt can pass a validation one.
    train = [{"id": i, "split": "train"} for i in range(4)]
    val = [{"id": i, "split": "val"} for i in range(4)]

    def metric(example, prediction):
        return 1.0 if example["split"] == "train" else 0.0

    result = gg.optimize(
        _system({}),
        train,
        val,
        metric=metric,
        reflection_lm=_longer(),
        max_rollouts=60,
        config=gg.OptimizeConfig(minibatch_size=2, seed=1),
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert result.best_score == 0.0
    assert all(c.mean_score == 0.0 for c in result.candidates)


def _score(prompts, example):
    """A deterministic score of a prompt on an example's content, so every stored score can
    be checked against a direct evaluation."""
    return (len(prompts["instructions"]) + example["v"]) % 3 / 2


def _split(name):
    ids = st.integers(0, 4)
    return st.lists(
        st.fixed_dictionaries({"id": ids, "v": st.integers(0, 5)}),
        min_size=1,
        max_size=5,
        unique_by=lambda e: e["id"],
    ).map(lambda rows: [{**row, "split": name} for row in rows])


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(train=_split("train"), val=_split("val"), test=_split("test"), seed=st.integers(0, 3))
def test_every_stored_score_is_the_direct_evaluation(tmp_path_factory, train, val, test, seed):
    run_dir = tmp_path_factory.mktemp("run")
    seen = {}
    result = gg.optimize(
        _system(seen),
        train,
        val,
        testset=test,
        metric=lambda example, prediction: _score({"instructions": prediction}, example),
        reflection_lm=_longer(),
        max_rollouts=len(val) * 4 + 6,
        config=gg.OptimizeConfig(minibatch_size=2, seed=seed, concurrency=3),
        run_dir=run_dir,
        progress=False,
    )
    by_key = {str(e["id"]): e for e in val}
    for candidate in result.candidates:
        for key, score in candidate.val_scores.items():
            assert score == _score(candidate.prompts, by_key[key]), (candidate.id, key)
    by_uid = {gg.Example(e).uid: e for e in [*train, *val, *test]}
    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    rollouts = [r for r in journal if r["type"] == "rollout"]
    assert rollouts
    for record in rollouts:
        expected = _score(seen[record["candidate_id"]], by_uid[record["example"]])
        assert record["result"]["score"] == expected, record["example"]
    best = sum(_score(result.best_candidate, e) for e in test) / len(test)
    assert result.test_best_score == best


def _legacy(run_dir):
    """Rewrite the journal as it was before uids: rollouts named by example key only."""
    path = run_dir / "journal.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        record.pop("example", None)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_an_older_journal_is_migrated_or_refused_in_one_line(tmp_path):
    import pytest

    from gepa_graph.errors import ResumeMismatch

    def run(train, val, run_dir, resume=False, seen=None):
        return gg.optimize(
            _system(seen if seen is not None else {}),
            train,
            val,
            metric=lambda example, prediction: _score({"instructions": prediction}, example),
            reflection_lm=_longer(),
            max_rollouts=20,
            config=gg.OptimizeConfig(minibatch_size=2, seed=1, concurrency=1),
            run_dir=run_dir,
            resume=resume,
            progress=False,
        )

    train = [{"id": f"t{i}", "v": i} for i in range(4)]
    val = [{"id": f"v{i}", "v": i} for i in range(3)]
    first = run(train, val, tmp_path / "distinct")
    _legacy(tmp_path / "distinct")
    seen = {}
    again = run(train, val, tmp_path / "distinct", resume=True, seen=seen)
    assert seen == {} and again.best_id == first.best_id  # migrated: nothing paid again

    val = [{"id": f"t{i}", "v": i + 1} for i in range(3)]  # ids shared with training examples
    run(train, val, tmp_path / "shared")
    _legacy(tmp_path / "shared")
    with pytest.raises(ResumeMismatch, match="share the id 't0'") as caught:
        run(train, val, tmp_path / "shared", resume=True)
    assert "\n" not in str(caught.value)
