"""A system that misbehaves on one example never ends the run: each fault is retried (when it
is transient) and then scored a failure with its error kept, or, when the system returns
something unusual but valid, scored normally."""

import asyncio
import json

import pytest

import gepa_graph as gg


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("no str for you")


class BadRepr:
    def __repr__(self):
        raise RuntimeError("no repr for you")


def _raise(exc):
    raise exc


def _stop():
    return next(iter(()))


async def _async_cancel():
    raise asyncio.CancelledError()


class AsyncCall:
    async def __call__(self, prompts, example):
        return "ok"


async def _ok():
    return "ok"


# case -> (fault for example "bad", expected error prefix or None when scored normally,
#          attempts expected for "bad")
CASES = {
    "TimeoutError": (
        lambda: _raise(TimeoutError("read timed out")),
        "TimeoutError: read timed out",
        3,
    ),
    "socket.timeout": (lambda: _raise(TimeoutError("timed out")), "TimeoutError: timed out", 3),
    "ConnectionError": (lambda: _raise(ConnectionResetError("reset")), "ConnectionResetError", 3),
    "ValueError": (lambda: _raise(ValueError("bad input")), "ValueError: bad input", 1),
    "StopIteration": (_stop, "UserCodeError: StopIteration", 1),
    "CancelledError (sync)": (
        lambda: _raise(asyncio.CancelledError()),
        "UserCodeError: CancelledError",
        1,
    ),
    "CancelledError (async)": (_async_cancel, "CancelledError", 1),
    "KeyboardInterrupt in a worker": (
        lambda: _raise(KeyboardInterrupt()),
        "UserCodeError: KeyboardInterrupt",
        1,
    ),
    "SystemExit": (lambda: _raise(SystemExit(3)), "UserCodeError: SystemExit", 1),
    "str() raises": (lambda: _raise(BadStr()), "BadStr: <its str() raised>", 1),
    "lone surrogate in the error": (
        lambda: _raise(ValueError("bad \udcff byte")),
        "ValueError: bad \ufffd byte",
        1,
    ),
    "10 MB error message": (lambda: _raise(ValueError("x" * 10_000_000)), "ValueError: xxx", 1),
    "returns a coroutine": (lambda: _ok(), None, 1),
    "repr() of the output raises": (lambda: BadRepr(), None, 1),
    "lone surrogate in the output": (lambda: "caf\udcff", None, 1),
}


def _run(tmp_path, fault, fn_wrapper=None):
    attempts = []

    def fn(prompts, example):
        if example["id"] == "bad":
            attempts.append(1)
            value = fault()
            return value
        return "ok"

    def metric(example, prediction):
        return 1.0 if prediction is not None else 0.0

    result = gg.optimize(
        gg.FunctionSystem(modules={"m": "prompt"}, fn=fn_wrapper or fn),
        [{"id": "good"}, {"id": "bad"}],
        metric=metric,
        reflection_lm=lambda prompt: "```\nbetter prompt\n```",
        max_rollouts=2,
        run_dir=tmp_path / "run",
        progress=False,
        config={"lm_backoff_s": 0.001, "rollout_retries": 2},
    )
    journal = [
        json.loads(line) for line in (tmp_path / "run" / "journal.jsonl").read_text().splitlines()
    ]
    stored = {r["example_key"]: r["result"] for r in journal if r["type"] == "rollout"}
    return result, stored, attempts


@pytest.mark.parametrize("case", sorted(CASES))
def test_system_fault_is_retried_or_scored_never_a_crash(case, tmp_path):
    fault, error, attempts_expected = CASES[case]
    result, stored, attempts = _run(tmp_path, fault)
    assert result.candidates[0].val_scores["good"] == 1.0
    bad = stored["bad"]
    assert len(attempts) == attempts_expected
    if error is None:
        assert bad["error"] is None and result.candidates[0].val_scores["bad"] == 1.0
    else:
        assert bad["error"].startswith(error) and result.candidates[0].val_scores["bad"] == 0.0
        assert len(bad["error"]) < 3000 and len(json.dumps(bad)) < 20_000  # bounded
        assert result.ledger.failed_rollouts == 1
    # The checkpoint was written and reads back.
    assert gg.load_result(tmp_path / "run").rollouts_used == 2


def test_object_with_async_call_is_awaited(tmp_path):
    result = gg.optimize(
        gg.FunctionSystem(modules={"m": "prompt"}, fn=AsyncCall()),
        [{"id": "a"}],
        metric=lambda example, prediction: float(prediction == "ok"),
        reflection_lm=lambda prompt: "```\nx\n```",
        max_rollouts=1,
        run_dir=tmp_path / "r",
        progress=False,
    )
    assert result.best_score == 1.0


def test_every_attempt_of_a_retried_rollout_counts_in_the_cost_ledger(tmp_path):
    attempts = []

    def fn(prompts, example, trace):
        attempts.append(1)
        trace.add("llm", usage=gg.Usage(prompt_tokens=10, cost_usd=0.25))
        if len(attempts) < 3:
            raise TimeoutError("slow provider")
        return "ok"

    result = gg.optimize(
        gg.FunctionSystem(modules={"m": "p"}, fn=fn),
        [{"id": "a"}],
        metric=lambda example, prediction: 1.0,
        reflection_lm=lambda prompt: "```\nx\n```",
        max_rollouts=1,
        run_dir=tmp_path / "r",
        progress=False,
        config={"lm_backoff_s": 0.001},
    )
    assert len(attempts) == 3 and result.ledger.rollout_retries == 2
    assert result.ledger.task_cost_usd == pytest.approx(0.75)
    # A resumed run reads the same total back from the journal.
    again = gg.optimize(
        gg.FunctionSystem(modules={"m": "p"}, fn=fn),
        [{"id": "a"}],
        metric=lambda example, prediction: 1.0,
        reflection_lm=lambda prompt: "```\nx\n```",
        max_rollouts=1,
        run_dir=tmp_path / "r",
        resume=True,
        progress=False,
        config={"lm_backoff_s": 0.001},
    )
    assert len(attempts) == 3 and again.ledger.task_cost_usd == pytest.approx(0.75)
