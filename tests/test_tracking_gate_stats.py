"""The promotion gate's statistics on synthetic paired scores whose truth is known: exact test
values, the false-promote rate under no difference, the power on a real 10-point gain."""

from __future__ import annotations

import math
import random

import pytest

from gepa_graph.tracking import stats

ALPHA = 0.05


def test_exact_values():
    assert stats.wilcoxon_signed_rank([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(1 / 32)
    assert stats.wilcoxon_signed_rank([-0.1, -0.2, -0.3]) == pytest.approx(1.0)
    # W+ = 1 + 3 = 4 of ranks 1..4: 11 of the 16 sign patterns give W+ >= 4.
    assert stats.wilcoxon_signed_rank([0.1, -0.2, 0.3, -0.4]) == pytest.approx(11 / 16)
    assert stats.wilcoxon_signed_rank([0.0, 0.0]) == 1.0
    assert stats.sign_test([1, 1, 1, 0, -1]) == pytest.approx(5 / 16)  # P(X >= 3), n = 4
    assert stats.sign_test([0, 0]) == 1.0
    # Floating-point noise is not a difference: 0.3 - 0.2 ties 0.2 - 0.1.
    assert stats.differences([0.3, 0.2], [0.2, 0.1]) == [0.1, 0.1]
    low, high = stats.bootstrap_interval([0.25] * 7)
    assert low == high == pytest.approx(0.25)
    with pytest.raises(ValueError, match="differ in length"):
        stats.compare_paired([1.0], [1.0, 0.0])


def test_wilcoxon_with_ties_is_exact_given_the_ties_and_normal_beyond_sixty():
    # All magnitudes tied: every rank is the same, so the test is the sign test.
    assert stats.wilcoxon_signed_rank([1.0] * 10) == pytest.approx(2**-10)
    # Magnitudes 1, 2, 2 get ranks 1, 2.5, 2.5; W+ = 3.5 (the +1 and one +2): the sign
    # patterns with W+ >= 3.5 are {2.5, 2.5}, {1, 2.5} x2 and all three: 4 of 8.
    assert stats.wilcoxon_signed_rank([1, 2, -2]) == pytest.approx(4 / 8)
    diffs = [1, 1, 1, 1, 0.5, 0.5, -0.5, 0, 1, -1, 1, 0.5] * 6  # 66 non-zero: normal
    nonzero = [d for d in diffs if d]
    n = len(nonzero)  # magnitudes 0.5 x24 (ranks 1-24), 1 x42 (ranks 25-66)
    w_plus = 18 * 12.5 + 36 * 45.5
    variance = n * (n + 1) * (2 * n + 1) / 24 - ((24**3 - 24) + (42**3 - 42)) / 48
    z = (w_plus - n * (n + 1) / 4 - 0.5) / math.sqrt(variance)
    expected = 0.5 * math.erfc(z / math.sqrt(2))
    assert stats.wilcoxon_signed_rank(diffs) == pytest.approx(expected)


def test_no_difference_and_a_clear_win_read_as_they_should():
    same = stats.compare_paired([0.5] * 10, [0.5] * 10, margin=0.0)
    assert not same.passes and same.reason() == "no difference on any example"
    win = stats.compare_paired([1.0] * 10, [0.0] * 10, margin=0.02)
    assert win.passes and win.ci_low == 1.0 and win.p_sign == pytest.approx(2**-10)
    # Better on average, but only through one example: within noise.
    lucky = stats.compare_paired([1.0] + [0.5] * 11, [0.0] + [0.5] * 11, margin=0.0)
    assert (
        lucky.mean_diff > 0
        and not lucky.passes
        and "Wilcoxon p=0.5 is not below 0.05" in lucky.reason()
    )


def _continuous(rng: random.Random, n: int, gain: float) -> tuple[list[float], list[float]]:
    """Per-example difficulty shared by both sides, independent noise on each score."""
    difficulty = [rng.uniform(0.2, 0.8) for _ in range(n)]
    baseline = [d + rng.gauss(0, 0.15) for d in difficulty]
    candidate = [d + gain + rng.gauss(0, 0.15) for d in difficulty]
    return candidate, baseline


def _binary(rng: random.Random, n: int, gain: float) -> tuple[list[float], list[float]]:
    """Pass/fail scores: each example passes with its own probability, plus ``gain``."""
    chance = [rng.uniform(0.2, 0.7) for _ in range(n)]
    baseline = [float(rng.random() < p) for p in chance]
    candidate = [float(rng.random() < p + gain) for p in chance]
    return candidate, baseline


def _promote_rate(make, gain: float, runs: int, n: int = 30, margin: float = 0.0) -> float:
    rng = random.Random(12345)
    promoted = 0
    for run in range(runs):
        candidate, baseline = make(rng, n, gain)
        result = stats.compare_paired(
            candidate, baseline, margin=margin, alpha=ALPHA, resamples=500, seed=run
        )
        promoted += result.passes
    return promoted / runs


@pytest.mark.parametrize("make", [_continuous, _binary], ids=["continuous", "pass-fail"])
def test_false_promote_rate_is_at_most_the_nominal_level(make):
    runs = 1000
    rate = _promote_rate(make, gain=0.0, runs=runs)
    standard_error = math.sqrt(ALPHA * (1 - ALPHA) / runs)
    print(f"false-promote rate ({make.__name__}, n=30, margin 0): {rate:.3f}")
    assert rate <= ALPHA + 3 * standard_error


def test_power_on_a_real_ten_point_gain_with_thirty_examples():
    continuous = _promote_rate(_continuous, gain=0.10, runs=400)
    with_margin = _promote_rate(_continuous, gain=0.10, runs=400, margin=0.02)
    pass_fail = _promote_rate(_binary, gain=0.10, runs=400)
    print(
        f"power, +0.10 on 30 examples: continuous {continuous:.3f} (margin 0.02: "
        f"{with_margin:.3f}), pass/fail {pass_fail:.3f}"
    )
    # Difference sd 0.21, effect size 0.47: a one-sided t-test at 5% has power about 0.85.
    assert continuous >= 0.7
    assert with_margin <= continuous
    assert pass_fail > ALPHA  # pass/fail scores carry far less signal per example


def test_the_module_check_names_a_module_whose_own_calls_got_worse():
    from gepa_graph.evaluation import EvalResult
    from gepa_graph.system import Trace, TraceRecord
    from gepa_graph.tracking.gate import module_checks

    def result(key: str, score: float, *modules: str) -> EvalResult:
        calls = [TraceRecord(kind="llm", modules=[m]) for m in modules]
        return EvalResult(example_key=key, score=score, trace=Trace(records=calls, by_prompt=True))

    # The planner runs everywhere and the mean improves; the writer runs on two examples,
    # and there the candidate lost.
    candidate = [
        result("a", 1.0, "planner"),
        result("b", 1.0, "planner"),
        result("c", 0.5, "planner", "writer"),
        result("d", 0.0, "planner", "writer"),
    ]
    production = [
        result("a", 0.0, "planner"),
        result("b", 0.0, "planner"),
        result("c", 1.0, "planner", "writer"),
        result("d", 0.5, "planner"),
    ]
    checks = {c.module: c for c in module_checks(candidate, production)}
    assert checks["planner"].n == 4 and checks["planner"].mean_diff == pytest.approx(0.25)
    assert not checks["planner"].worse
    assert checks["writer"].n == 2 and checks["writer"].mean_diff == pytest.approx(-0.5)
    assert checks["writer"].worse
