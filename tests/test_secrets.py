"""Secrets that leak into a trace, an output or feedback never reach the run directory."""

import gepa_graph as gg
from gepa_graph.jsonable import to_jsonable

ENV_KEY = "sk-envkey-0123456789abcdefXYZ"
HEADER = "Bearer abcdefghijklmnop0123456789"


def test_secrets_are_masked_everywhere_the_run_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_PROVIDER_API_KEY", "plain-secret-value-42")
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)

    def leaky(prompts, example, trace):
        trace.add("llm", node="m", inputs={"headers": {"Authorization": HEADER},
                                          "api_key": "whatever-it-is"},
                  outputs=f"called with {ENV_KEY} and plain-secret-value-42")
        return {"answer": f"token {HEADER}"}

    def metric(example, prediction):
        return gg.Score(value=0.0, feedback=f"saw {ENV_KEY}")

    replies = []

    def reflection(prompt):
        replies.append(prompt)
        return "```\nnew prompt\n```"

    gg.optimize(gg.FunctionSystem(modules={"m": "p"}, fn=leaky), [{"id": "a"}, {"id": "b"}],
                metric=metric, reflection_lm=reflection, max_rollouts=8,
                run_dir=tmp_path / "run", progress=False)
    written = "".join(p.read_text() for p in (tmp_path / "run").iterdir())
    assert "REDACTED" in written
    for secret in (ENV_KEY, "plain-secret-value-42", "abcdefghijklmnop0123456789", "whatever-it-is"):
        assert secret not in written
        assert all(secret not in prompt for prompt in replies)


def test_ordinary_text_is_left_alone():
    value = {"question": "What is 2+2?", "max_tokens": 10, "messages": ["skip this"]}
    assert to_jsonable(value) == value
