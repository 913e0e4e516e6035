"""The reflection LM through LiteLLM: a real in-process custom provider, retries on rate
limits, clear errors for unknown models."""

import asyncio

import litellm
import pytest

import gepa_graph as gg
from gepa_graph.errors import LMConfigError
from gepa_graph.lm import LMCallFailed, ReflectionLM
from gepa_graph.testing.reflection import ScriptedLiteLLM, current_prompt
from gepa_graph.testing.rules import RuleTask


def test_unknown_model_string_fails_before_any_call():
    with pytest.raises(LMConfigError, match="unknown LiteLLM model 'gpt-nonsense'"):
        ReflectionLM("gpt-nonsense")


def test_rate_limits_are_retried_with_backoff_then_succeed():
    failures = iter([True, True, False])

    def reply(prompt):
        if next(failures):
            raise litellm.RateLimitError("slow down", llm_provider="scripted", model="m")
        return "ok " + prompt

    provider = ScriptedLiteLLM(reply, provider="flaky")
    lm = ReflectionLM(provider.register(), backoff_s=0.001)
    response = asyncio.run(lm("hello"))
    assert response.text == "ok hello" and response.finish_reason == "stop"
    assert response.usage.completion_tokens > 0
    assert lm.retries == 2 and provider.calls == 3


def test_retries_are_bounded():
    def reply(prompt):
        raise litellm.Timeout("too slow", model="m", llm_provider="scripted")

    provider = ScriptedLiteLLM(reply, provider="dead")
    lm = ReflectionLM(provider.register(), backoff_s=0.001, max_retries=2)
    with pytest.raises(LMCallFailed, match="after 3 attempts"):
        asyncio.run(lm("hello"))
    assert provider.calls == 3 and lm.failures == 1


def test_optimization_through_a_litellm_model_string(tmp_path):
    task = RuleTask(n_types=4)
    scripted = task.reflection_lm()
    provider = ScriptedLiteLLM(scripted, provider="reflector")
    result = gg.optimize(
        task.system(),
        task.examples(10, seed=1, prefix="t"),
        task.examples(8, seed=2, prefix="v"),
        metric=task.metric,
        reflection_lm=provider.register(),
        max_rollouts=120,
        run_dir=tmp_path / "r",
        progress=False,
    )
    assert result.best_score > result.seed_score
    assert provider.calls == result.ledger.reflection_calls > 0
    # The reflection LM was shown the parent's exact prompt.
    assert current_prompt(scripted.calls[0]) == task.seed_prompts()["instructions"]
