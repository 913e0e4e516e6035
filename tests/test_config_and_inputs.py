import pytest

import gepa_graph as gg
from gepa_graph.errors import ConfigError
from gepa_graph.example import as_dataset
from gepa_graph.metric import MetricError, metric_arity, to_score


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"max_rollouts": 0}, "greater than 0"),
        ({"max_rollouts": -5}, "greater than 0"),
        ({"minibatch_size": 0}, "greater than 0"),
        ({"concurrency": 0}, "greater than 0"),
        ({"candidate_selection": "best"}, "'pareto' or 'current_best'"),
        ({"max_rollouts": None}, "set at least one budget"),
        ({"minibatch": 3}, "Extra inputs are not permitted"),
        ({"max_cost_usd": -1.0}, "greater than 0"),
    ],
)
def test_config_rejects_bad_values_with_a_clear_message(fields, message):
    with pytest.raises(ConfigError, match=message) as info:
        gg.OptimizeConfig(**fields)
    assert "\n" not in str(info.value)


def test_config_defaults_match_the_paper():
    config = gg.OptimizeConfig()
    assert (config.minibatch_size, config.candidate_selection, config.use_merge) == (
        3,
        "pareto",
        True,
    )
    assert gg.OptimizeConfig(max_rollouts=None, max_seconds=60).max_seconds == 60


def test_datasets_reject_empty_duplicate_and_non_dict_examples():
    with pytest.raises(ValueError, match="trainset is empty"):
        as_dataset([], "trainset")
    with pytest.raises(ValueError, match=r"trainset\[2\] duplicates trainset\[0\]"):
        as_dataset([{"id": 1}, {"id": 2}, {"id": 1}], "trainset")
    with pytest.raises(TypeError, match=r"valset\[0\] is a str"):
        as_dataset(["what?"], "valset")
    # Keys are stable across processes: content hash when there is no id.
    assert as_dataset([{"q": 1}], "t")[0].key == gg.Example({"q": 1}).key


def test_metric_signature_and_return_values_are_checked():
    assert metric_arity(lambda example, prediction: 1.0) == 2
    assert metric_arity(lambda example, prediction, trace: 1.0) == 3
    with pytest.raises(TypeError, match="must accept"):
        metric_arity(lambda prediction: 1.0)
    with pytest.raises(MetricError, match="non-finite"):
        to_score(float("nan"))
    with pytest.raises(MetricError, match="expected a number"):
        to_score(None)
    assert to_score(True).value == 1.0
    assert to_score(gg.Score(value=0.5, feedback="meh")).feedback == "meh"
    positional = gg.Score(0.25, "too short", {"writer": "add detail"})
    assert (positional.value, positional.feedback_for("writer")) == (0.25, "add detail")
    assert to_score({"value": 1, "feedback": "ok"}).feedback == "ok"


def test_metric_that_raises_or_returns_nan_is_a_recorded_failure(tmp_path):
    def metric(example, prediction):
        if example["id"] == "bad":
            raise ZeroDivisionError("oops")
        if example["id"] == "nan":
            return float("nan")
        return 1.0

    system = gg.FunctionSystem(modules={"m": "p"}, fn=lambda prompts, example: "out")
    result = gg.optimize(
        system,
        [{"id": "ok"}, {"id": "bad"}, {"id": "nan"}],
        metric=metric,
        reflection_lm=lambda p: "```\nq\n```",
        max_rollouts=3,
        run_dir=tmp_path / "r",
        progress=False,
    )
    assert result.candidates[0].val_scores == {"ok": 1.0, "bad": 0.0, "nan": 0.0}
    assert result.ledger.failed_rollouts == 2
