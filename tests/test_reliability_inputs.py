"""Inputs: a bad one is one line before any call (and before the run folder exists); a valid
one that used to fail (config as a dict, examples holding sets) works."""

import json
import os
import subprocess
import sys

import pytest

import gepa_graph as gg

NAN = float("nan")

BAD = {
    "concurrency=0": (
        dict(config=dict(concurrency=0)),
        "concurrency: Input should be greater than 0",
    ),
    "OptimizeConfig(concurrency=0)": (
        dict(config=lambda: gg.OptimizeConfig(concurrency=0)),
        "concurrency: Input should be greater",
    ),
    "failure_score=NaN": (
        dict(config=dict(failure_score=NAN)),
        "failure_score: Input should be a finite",
    ),
    "perfect_score=NaN": (
        dict(config=dict(perfect_score=NAN)),
        "perfect_score: Input should be a finite",
    ),
    "inverted score_range": (
        dict(config=dict(score_range=(1, 0))),
        r"score_range \(1.0, 0.0\) must be",
    ),
    "NaN in score_range": (
        dict(config=dict(score_range=(0, NAN))),
        "score_range.1: Input should be a finite",
    ),
    "failure_score outside score_range": (
        dict(config=dict(failure_score=-1)),
        r"failure_score -1.0 is outside score_range",
    ),
    "unknown config field": (dict(config=dict(concurency=4)), "concurency: Extra inputs"),
    "config of the wrong type": (
        dict(config=[("concurrency", 4)]),
        "config must be a gg.OptimizeConfig or a dict",
    ),
    "max_seconds=NaN": (dict(max_seconds=NAN), "max_seconds: Input should be a finite"),
    "seed prompt None": (dict(seed_prompts={"m": None}), "seed prompt of module 'm' is a NoneType"),
    "seed prompt a number": (dict(seed_prompts={"m": 3}), "seed prompt of module 'm' is a int"),
    "FunctionSystem fn with one parameter": (
        dict(fn=lambda example: "x"),
        r"FunctionSystem fn .* must accept \(prompts, example\)",
    ),
    "FunctionSystem fn with a required keyword-only parameter": (
        dict(fn=lambda prompts, example, *, model: "x"),
        "must accept",
    ),
    "run_dir is a file": (dict(run_dir="file"), "cannot be used"),
    "run_dir under a file": (dict(run_dir="file/run"), "cannot be used"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_before_any_call(case, tmp_path):
    overrides, message = BAD[case]
    calls = []
    (tmp_path / "file").write_text("not a folder")
    kwargs = dict(
        metric=lambda example, prediction: calls.append("metric") or 1.0,
        reflection_lm=lambda prompt: calls.append("lm") or "```\nx\n```",
        max_rollouts=4,
        run_dir=tmp_path / "run",
        progress=False,
    )
    fn = overrides.pop("fn", lambda prompts, example: calls.append("system") or "x")
    if "run_dir" in overrides:
        overrides["run_dir"] = tmp_path / overrides["run_dir"]
    kwargs.update(overrides)
    with pytest.raises((ValueError, TypeError, OSError)) as info:
        config = kwargs.pop("config", None)
        gg.optimize(
            gg.FunctionSystem(modules={"m": "p"}, fn=fn),
            [{"id": "a"}],
            config=config() if callable(config) else config,
            **kwargs,
        )
    assert info.match(message)
    assert "\n" not in str(info.value).strip()
    assert calls == [] and not (tmp_path / "run").exists()


def test_config_as_a_dict_is_accepted(tmp_path):
    result = gg.optimize(
        gg.FunctionSystem(modules={"m": "p"}, fn=lambda prompts, example: "x"),
        [{"id": "a"}],
        metric=lambda example, prediction: 1.0,
        reflection_lm=lambda prompt: "```\nq\n```",
        config={"max_rollouts": 1, "concurrency": 2},
        run_dir=tmp_path / "r",
        progress=False,
    )
    assert result.rollouts_used == 1 and result.stop_reason in ("max_rollouts", "perfect_score")


KEYS = """
import json, sys, gepa_graph as gg
examples = [{"q": "a", "tags": {"x", "y", "z", "w"}}, {"q": "b", "nested": {"s": frozenset({"k", "l"})}},
            {"q": "c", "raw": b"bytes"}, {"q": "d", "t": ("a", 1)}]
print(json.dumps([gg.Example(e).key for e in examples]))
"""


def test_example_keys_are_the_same_in_every_process():
    keys = set()
    for seed in ("1", "2", "3"):
        out = subprocess.run(
            [sys.executable, "-c", KEYS],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        ).stdout
        keys.add(out)
    assert len(keys) == 1 and len(json.loads(keys.pop())) == 4


def test_a_finished_run_with_set_valued_examples_resumes_without_rerunning(tmp_path):
    runs = []
    data = [{"q": str(i), "tags": {f"t{i}", "common", f"u{i}"}} for i in range(3)]

    def fn(prompts, example):
        runs.append(example.key)
        return "x"

    kwargs = dict(
        metric=lambda example, prediction: 0.5,
        reflection_lm=lambda p: "```\nq\n```",
        max_rollouts=12,
        run_dir=tmp_path / "r",
        progress=False,
        config={"minibatch_size": 2, "max_iterations": 2},
    )
    first = gg.optimize(gg.FunctionSystem(modules={"m": "p"}, fn=fn), data, **kwargs)
    paid = len(runs)
    # Rebuilt from scratch (new set objects), as a new process would.
    again = [{"q": str(i), "tags": {f"u{i}", "common", f"t{i}"}} for i in range(3)]
    second = gg.optimize(gg.FunctionSystem(modules={"m": "p"}, fn=fn), again, resume=True, **kwargs)
    assert len(runs) == paid and second.rollouts_used == first.rollouts_used
