"""Metrics: every real number is a score; a metric that raises, hangs or returns nonsense on
one example scores that rollout a failure with the error kept; a metric whose signature cannot
work is one line before any call."""

import asyncio
import decimal
import fractions
import json

import numpy as np
import pytest

import gepa_graph as gg

ACCEPTED = {
    "numpy.float32": (np.float32(0.5), 0.5),
    "numpy.float64": (np.float64(0.25), 0.25),
    "numpy.int64": (np.int64(1), 1.0),
    "numpy.bool_": (np.bool_(True), 1.0),
    "Decimal": (decimal.Decimal("0.75"), 0.75),
    "Fraction": (fractions.Fraction(1, 4), 0.25),
    "bool": (True, 1.0),
    "Score with numpy value": (gg.Score(np.float32(0.5), "half"), 0.5),
    "dict with numpy value": ({"value": np.float32(1.0), "feedback": "ok"}, 1.0),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_any_real_number_is_a_score(case, tmp_path):
    value, expected = ACCEPTED[case]
    result = gg.optimize(
        gg.FunctionSystem(modules={"m": "p"}, fn=lambda prompts, example: "out"),
        [{"id": "a"}],
        metric=lambda example, prediction: value,
        reflection_lm=lambda prompt: "```\nx\n```",
        max_rollouts=1,
        run_dir=tmp_path / "r",
        progress=False,
    )
    assert result.candidates[0].val_scores == {"a": expected}
    assert result.ledger.failed_rollouts == 0


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("nope")


def _raise(exc):
    raise exc


async def _cancel():
    raise asyncio.CancelledError()


FAILING = {
    "raises ValueError": (lambda: _raise(ValueError("no label")), "ValueError: no label"),
    "StopIteration": (lambda: next(iter(())), "UserCodeError: StopIteration"),
    "CancelledError (sync)": (
        lambda: _raise(asyncio.CancelledError()),
        "UserCodeError: CancelledError",
    ),
    "CancelledError (async)": (_cancel, "MetricError: the metric raised CancelledError"),
    "str() raises": (lambda: _raise(BadStr()), "BadStr: <its str() raised>"),
    "returns None": (lambda: None, "MetricError: metric returned NoneType"),
    "returns a string": (lambda: "0.5", "MetricError: metric returned str"),
    "returns NaN": (lambda: float("nan"), "MetricError: metric returned a non-finite score"),
    "returns numpy NaN": (
        lambda: np.float32("nan"),
        "MetricError: metric returned a non-finite score",
    ),
    "returns a complex": (lambda: 1j, "MetricError: metric returned complex"),
    "outside score_range": (lambda: 7.0, "MetricError: score 7.0 is outside score_range"),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_failing_metric_scores_a_failure_with_the_error_kept(case, tmp_path):
    fault, error = FAILING[case]

    def metric(example, prediction):
        return fault() if example["id"] == "bad" else 1.0

    result = gg.optimize(
        gg.FunctionSystem(modules={"m": "p"}, fn=lambda prompts, example: "out"),
        [{"id": "good"}, {"id": "bad"}],
        metric=metric,
        reflection_lm=lambda prompt: "```\nx\n```",
        max_rollouts=2,
        run_dir=tmp_path / "r",
        progress=False,
    )
    assert result.candidates[0].val_scores == {"good": 1.0, "bad": 0.0}
    lines = [json.loads(x) for x in (tmp_path / "r" / "journal.jsonl").read_text().splitlines()]
    bad = next(r["result"] for r in lines if r.get("example_key") == "bad")
    assert bad["error"].startswith(f"metric failed on example 'bad': {error}")
    assert result.ledger.failed_rollouts == 1


def _kw_only(example, prediction, *, reference):
    return 1.0


def _one(prediction):
    return 1.0


def _four(a, b, c, d):
    return 1.0


BAD_SIGNATURES = {
    "required keyword-only parameter": _kw_only,
    "one parameter": _one,
    "four required parameters": _four,
    "not callable": 0.5,
}


@pytest.mark.parametrize("case", sorted(BAD_SIGNATURES))
def test_metric_signature_is_one_line_before_any_call(case, tmp_path):
    calls = []
    with pytest.raises(TypeError) as info:
        gg.optimize(
            gg.FunctionSystem(modules={"m": "p"}, fn=lambda prompts, example: calls.append(1)),
            [{"id": "a"}],
            metric=BAD_SIGNATURES[case],
            reflection_lm=lambda prompt: calls.append(2),
            max_rollouts=1,
            run_dir=tmp_path / "r",
            progress=False,
        )
    assert "metric" in str(info.value) and "\n" not in str(info.value)
    assert calls == [] and not (tmp_path / "r").exists()
