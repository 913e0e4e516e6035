"""The reflection LM: transient failures are retried, a reply or error that cannot give a prompt
rejects that one proposal (the run goes on), an LM that cannot work at all (credentials,
unknown model) is one line at the first call."""

import asyncio
import json

import litellm
import pytest

import gepa_graph as gg
from gepa_graph.errors import LMConfigError
from gepa_graph.testing.reflection import ScriptedLiteLLM

GOOD_REPLY = "```\nbetter\n```"


def _optimize(tmp_path, reflection_lm, max_rollouts=8, **config):
    """Seed scores 0; the prompt "better" scores 1, so one good reply ends the run."""
    return gg.optimize(
        gg.FunctionSystem(modules={"m": "seed"}, fn=lambda prompts, example: prompts["m"]),
        [{"id": "a"}, {"id": "b"}],
        metric=lambda example, prediction: float(prediction == "better"),
        reflection_lm=reflection_lm,
        max_rollouts=max_rollouts,
        run_dir=tmp_path / "run",
        progress=False,
        config={"lm_backoff_s": 0.001, "minibatch_size": 2, "use_merge": False, **config},
    )


def _fails_once(error):
    calls = []

    def reply(prompt):
        calls.append(prompt)
        if len(calls) == 1:
            raise error
        return GOOD_REPLY

    return reply, calls


TRANSIENT = {
    "502 Bad Gateway": litellm.BadGatewayError("502 Bad Gateway", llm_provider="p", model="m"),
    "500 APIError": litellm.APIError(500, "upstream failed", llm_provider="p", model="m"),
    "500 InternalServerError": litellm.InternalServerError("boom", llm_provider="p", model="m"),
    "503 ServiceUnavailable": litellm.ServiceUnavailableError("busy", llm_provider="p", model="m"),
    "429 RateLimit": litellm.RateLimitError("slow down", llm_provider="p", model="m"),
    "Timeout": litellm.Timeout("too slow", model="m", llm_provider="p"),
}


@pytest.mark.parametrize("case", sorted(TRANSIENT))
def test_transient_litellm_errors_are_retried(case, tmp_path):
    reply, calls = _fails_once(TRANSIENT[case])
    provider = ScriptedLiteLLM(reply, provider=f"transient{abs(hash(case)) % 10**6}")
    result = _optimize(tmp_path, provider.register())
    assert len(calls) == 2 and result.ledger.lm_retries == 1
    assert result.best_score == 1.0 and result.rejected == []


REJECTED = {
    "ContentPolicyViolation": litellm.ContentPolicyViolationError(
        "flagged", model="m", llm_provider="p"
    ),
    "BadRequest with a content filter": litellm.ContentPolicyViolationError(
        "content_filter triggered", model="m", llm_provider="p"
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_non_transient_litellm_error_rejects_that_proposal(case, tmp_path):
    reply, calls = _fails_once(REJECTED[case])
    provider = ScriptedLiteLLM(reply, provider=f"reject{abs(hash(case)) % 10**6}")
    result = _optimize(tmp_path, provider.register(), max_iterations=1)
    assert [r.reason for r in result.rejected] == ["reflection_failed"]
    assert len(calls) == 1 and result.stop_reason == "max_iterations"


def test_context_window_exceeded_retries_with_a_shorter_prompt(tmp_path):
    lengths = []

    def reply(prompt):
        lengths.append(len(prompt))
        if len(prompt) > 1500:
            raise litellm.ContextWindowExceededError("too long", model="m", llm_provider="p")
        return GOOD_REPLY

    provider = ScriptedLiteLLM(reply, provider="ctxwin")
    big = "x" * 5000
    result = gg.optimize(
        gg.FunctionSystem(
            modules={"m": "seed"},
            fn=lambda prompts, example: prompts["m"] if prompts["m"] == "better" else big,
        ),
        [{"id": "a"}, {"id": "b"}],
        metric=lambda example, prediction: float(prediction == "better"),
        reflection_lm=provider.register(),
        max_rollouts=6,
        run_dir=tmp_path / "run",
        progress=False,
        config={"minibatch_size": 2, "use_merge": False},
    )
    assert lengths[0] > 1500 and lengths[-1] <= 1500 and lengths == sorted(lengths, reverse=True)
    assert result.best_score == 1.0 and result.rejected == []


def test_context_window_exceeded_at_every_length_rejects(tmp_path):
    def reply(prompt):
        raise litellm.ContextWindowExceededError("too long", model="m", llm_provider="p")

    result = _optimize(
        tmp_path, ScriptedLiteLLM(reply, provider="ctxdead").register(), max_iterations=1
    )
    assert [r.reason for r in result.rejected] == ["reflection_failed"]
    assert "too long" in result.rejected[0].detail


async def _async_cancel(prompt):
    raise asyncio.CancelledError()


class AsyncLM:
    async def __call__(self, prompt):
        return GOOD_REPLY


async def _good_coroutine():
    return GOOD_REPLY


def _raise(exc):
    raise exc


CALLABLES = {
    "ValueError": (lambda p: _raise(ValueError("bad")), "reflection_failed"),
    "StopIteration": (lambda p: next(iter(())), "reflection_failed"),
    "CancelledError (sync)": (lambda p: _raise(asyncio.CancelledError()), "reflection_failed"),
    "CancelledError (async)": (_async_cancel, "reflection_failed"),
    "returns None": (lambda p: None, "reflection_failed"),  # empty reply, retried, then failed
    "reply without a fence": (lambda p: "just do better", "no_fenced_block"),
    "bytes reply": (lambda p: GOOD_REPLY.encode(), None),
    "returns a coroutine": (lambda p: _good_coroutine(), None),
    "async __call__ object": (AsyncLM(), None),
}


@pytest.mark.parametrize("case", sorted(CALLABLES))
def test_reflection_callable_outcomes(case, tmp_path):
    lm, reason = CALLABLES[case]
    result = _optimize(tmp_path, lm, max_iterations=1, lm_max_retries=1)
    if reason is None:
        assert result.best_score == 1.0 and result.rejected == []
    else:
        assert [r.reason for r in result.rejected] == [reason]
        assert result.best_score == 0.0 and result.stop_reason == "max_iterations"


def test_a_1mb_reply_without_a_fence_keeps_the_checkpoint_small(tmp_path):
    result = _optimize(tmp_path, lambda p: "word " * 200_000, max_rollouts=30, max_iterations=20)
    assert len(result.rejected) == 20
    assert (tmp_path / "run" / "state.json").stat().st_size < 200_000


AUTH = {
    "AuthenticationError": litellm.AuthenticationError(
        "invalid x-api-key", llm_provider="p", model="m"
    ),
    "NotFoundError (unknown model)": litellm.NotFoundError(
        "model not found", model="m", llm_provider="p"
    ),
    "missing key reported as a 500": litellm.InternalServerError(
        "Missing credentials. Please pass an `api_key`", llm_provider="p", model="m"
    ),
}


@pytest.mark.parametrize("case", sorted(AUTH))
def test_credentials_or_unknown_model_is_one_line_at_the_first_call(case, tmp_path):
    calls = []

    def reply(prompt):
        calls.append(prompt)
        raise AUTH[case]

    provider = ScriptedLiteLLM(reply, provider=f"auth{abs(hash(case)) % 10**6}")
    with pytest.raises(LMConfigError) as info:
        _optimize(tmp_path, provider.register())
    assert len(calls) == 1 and "\n" not in str(info.value)
    assert isinstance(info.value, gg.GepaGraphError)
    # The run stopped resumable, not finished.
    assert json.loads((tmp_path / "run" / "state.json").read_text())["status"] == "running"


@pytest.mark.parametrize(
    ("model", "variable"),
    [("openai/gpt-4o-mini", "OPENAI_API_KEY"), ("anthropic/claude-3-5-haiku", "ANTHROPIC_API_KEY")],
)
def test_a_missing_key_is_one_line_before_the_first_rollout(tmp_path, monkeypatch, model, variable):
    monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(litellm, "api_key", None)
    rollouts = []
    with pytest.raises(LMConfigError, match=f"needs {variable}, which is not set") as info:
        gg.optimize(
            gg.FunctionSystem(modules={"m": "seed"}, fn=lambda p, e: rollouts.append(e)),
            [{"id": "a"}, {"id": "b"}],
            metric=lambda example, prediction: 0.0,
            reflection_lm=model,
            max_rollouts=8,
            run_dir=tmp_path / "run",
            progress=False,
        )
    assert "\n" not in str(info.value) and rollouts == []
    assert not (tmp_path / "run" / "journal.jsonl").exists()


def test_a_provider_whose_settings_have_defaults_is_not_refused(monkeypatch):
    from gepa_graph.lm import check_credentials

    monkeypatch.delenv("OLLAMA_API_BASE", raising=False)
    check_credentials("ollama/llama3")  # OLLAMA_API_BASE defaults to localhost: not required
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(litellm, "api_key", None)
    check_credentials("openai/gpt-4o-mini", api_key="sk-given-in-kwargs")


def test_a_1mb_reasoning_reply_then_the_fenced_prompt_is_parsed_in_full(tmp_path):
    thinking = "Let me think about the feedback step by step. " * 22_000  # about 1 MB
    result = _optimize(tmp_path, lambda p: f"{thinking}\n\n{GOOD_REPLY}\n", max_rollouts=8)
    assert result.best_candidate == {"m": "better"} and result.best_score == 1.0
    journal = tmp_path / "run" / "journal.jsonl"
    assert journal.stat().st_size < 200_000  # what is stored is bounded


@pytest.mark.parametrize(
    "reply",
    [
        "x" * 300 + "\n```\nfirst\n```\n" + "y" * 300 + "\n````\nkeeps\n```\ninner\n```\n````\n",
        "x" * 300 + "\n```\nnever closed " + "y" * 300,
        "no fence at all " * 40,
        "```\n\n```\n" + "z" * 400,
    ],
)
def test_a_shortened_reply_parses_as_the_whole_one(reply):
    from gepa_graph.reflection import InvalidProposal, parse_proposal, stored_reply

    def parsed(text):
        try:
            return parse_proposal(text, None, "current")
        except InvalidProposal as exc:
            return exc.reason

    short = stored_reply(reply, 100)
    assert len(short) < len(reply) and parsed(short) == parsed(reply)
