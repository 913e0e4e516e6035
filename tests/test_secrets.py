"""Secrets that reach a trace, an output, an error, feedback, a log line or a reflection reply
never reach the run folder, the logs, the events or the reflection LM; a seed prompt holding
one is a one-line error naming the module, before anything runs."""

import logging

import pytest

import gepa_graph as gg
from gepa_graph.errors import ConfigError
from gepa_graph.jsonable import to_jsonable
from gepa_graph.redact import MASK, find_secret, redact_text

# kind -> (environment to set, the planted text, the secret part that must never appear)
SECRETS = {
    "OPENAI_API_KEY value": (
        {"OPENAI_API_KEY": "sk-proj-Zx81Qw2Er3Ty4Ui5Op6As7Df8"},
        "key sk-proj-Zx81Qw2Er3Ty4Ui5Op6As7Df8",
        "Zx81Qw2Er3Ty4Ui5Op6As7Df8",
    ),
    "MYCO_SERVICE_TOKEN value": (
        {"MYCO_SERVICE_TOKEN": "myco-svc-7f3a9b2c1d"},
        "token myco-svc-7f3a9b2c1d",
        "myco-svc-7f3a9b2c1d",
    ),
    "password in DATABASE_URL": (
        {"DATABASE_URL": "postgres://app:Hunter2Secret@db:5432/x"},
        "login Hunter2Secret failed",
        "Hunter2Secret",
    ),
    "sk-ant- key": ({}, "x-api-key: sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv", "AbCdEfGhIjKlMnOpQrStUv"),
    "sk- key": ({}, "using sk-AbCdEfGhIjKlMnOpQrSt1234", "AbCdEfGhIjKlMnOpQrSt1234"),
    "AKIA key": ({}, "aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    "Bearer token": (
        {},
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload",
        "eyJhbGciOiJIUzI1NiJ9",
    ),
    "?api_key= query": ({}, "GET https://api.example.com/v1?api_key=q1w2e3r4t5y6", "q1w2e3r4t5y6"),
    "?key= query": ({}, "GET https://maps.example.com/geo?key=Zq9Xw8Cv7Bn6&x=1", "Zq9Xw8Cv7Bn6"),
    "password inside any URL": ({}, "redis://user:Pa55w0rdZ@cache:6379", "Pa55w0rdZ"),
}


@pytest.mark.parametrize("case", sorted(SECRETS))
def test_planted_secret_reaches_nothing_the_run_writes(case, tmp_path, monkeypatch, caplog):
    env, planted, secret = SECRETS[case]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.INFO, logger="gepa_graph")

    def system(prompts, example, trace):
        trace.add("llm", node="m", inputs={"headers": {"X-Auth": planted}}, outputs=planted)
        if example["id"] == "b":
            raise ValueError(f"request failed: {planted}")
        return f"answer with {planted}"

    def metric(example, prediction):
        if example["id"] == "c":
            raise RuntimeError(f"judge failed: {planted}")
        return gg.Score(0.0, feedback=f"the output leaks {planted}")

    prompts, attempts = [], []

    def reflection(prompt):
        prompts.append(prompt)
        attempts.append(1)
        if len(attempts) == 1:
            raise TimeoutError(f"upstream timed out for {planted}")  # retried, logged
        return f"I used {planted}.\n```\nnew prompt; call with {planted}\n```"

    events = []
    result = gg.optimize(
        gg.FunctionSystem(modules={"m": "seed"}, fn=system),
        [{"id": "a"}, {"id": "b"}, {"id": "c"}],
        metric=metric,
        reflection_lm=reflection,
        max_rollouts=12,
        run_dir=tmp_path / "run",
        progress=False,
        listeners=[events.append],
        config={
            "lm_backoff_s": 0.001,
            "rollout_retries": 0,
            "use_merge": False,
            "minibatch_size": 2,
            "max_iterations": 1,
        },
    )
    written = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "run").iterdir())
    assert MASK in written and len(attempts) == 2
    for where, text in (
        ("run folder", written),
        ("log", caplog.text),
        ("reflection prompts", "".join(prompts)),
        ("events", repr(events)),
        ("result", result.model_dump_json()),
    ):
        assert secret not in text, f"{case} leaked into the {where}"


@pytest.mark.parametrize("case", sorted(SECRETS))
def test_seed_prompt_holding_a_secret_is_one_line_naming_the_module(case, tmp_path, monkeypatch):
    env, planted, secret = SECRETS[case]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    calls = []
    with pytest.raises(ConfigError, match="seed prompt of module 'writer' holds") as info:
        gg.optimize(
            gg.FunctionSystem(
                modules={"writer": f"Write. {planted}"}, fn=lambda p, e: calls.append(1)
            ),
            [{"id": "a"}],
            metric=lambda e, p: 1.0,
            reflection_lm=lambda p: calls.append(2),
            max_rollouts=1,
            run_dir=tmp_path / "run",
            progress=False,
        )
    assert secret not in str(info.value) and "\n" not in str(info.value)
    assert calls == [] and not (tmp_path / "run").exists()


def test_ordinary_text_is_left_alone():
    value = {"question": "What is 2+2?", "max_tokens": 10, "messages": ["skip this"]}
    assert to_jsonable(value) == value
    for prose in (
        "Count each token: individual words count.",
        "The password: see the manual",
        "Use the header Authorization: Bearer <token>",
        "Visit https://example.com/a?b=c",
    ):
        assert redact_text(prose) == prose and find_secret(prose) is None


def test_lone_surrogates_are_replaced():
    assert redact_text("caf\udcff") == "caf\ufffd"
