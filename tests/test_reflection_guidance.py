"""Reflection guidance: the user's standing instructions reach every reflection prompt, and a
proposal over max_prompt_chars is compressed once, then rejected if still over."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gepa_graph as gg
from gepa_graph.config import ConfigError
from gepa_graph.evaluation import EvalResult
from gepa_graph.example import Example
from gepa_graph.guidance import Guidance
from gepa_graph.lm import LMResponse, ReflectionLM
from gepa_graph.proposers.reflective import ReflectiveProposer
from gepa_graph.reflection import InvalidProposal, render_reflection_prompt
from gepa_graph.replay import ReflectionReplay
from gepa_graph.testing.reflection import ScriptedReflectionLM, fenced

SHORTEN = "You are shortening one instruction"


def answer(prompts: dict[str, str], example: dict[str, Any]) -> str:
    return "ok" if all("RULE" in text for text in prompts.values()) else "bad"


def metric(example: dict[str, Any], prediction: str) -> gg.Score:
    return gg.Score(value=float(prediction == "ok"), feedback="say RULE")


class Reflector:
    """Answers a reflection with ``proposal`` and a compression request with ``compressed``,
    recording every prompt of each kind."""

    def __init__(self, proposal: str, compressed: str = "RULE.") -> None:
        self.proposal, self.compressed = proposal, compressed
        self.reflections: list[str] = []
        self.compressions: list[str] = []

    def __call__(self, prompt: str) -> str:
        if prompt.startswith(SHORTEN):
            self.compressions.append(prompt)
            return fenced(self.compressed)
        self.reflections.append(prompt)
        return fenced(self.proposal)


def run(
    tmp_path: Path,
    lm: Callable[[str], str],
    modules: dict[str, str] | None = None,
    **config: Any,
) -> gg.Result:
    examples = [{"id": i, "question": f"q{i}"} for i in range(3)]
    settings: dict[str, Any] = dict(
        max_rollouts=60, max_iterations=1, use_merge=False, parallel_proposals=1, seed=0
    )
    return gg.optimize(
        gg.FunctionSystem(modules or {"agent": "Answer."}, answer),
        examples,
        examples,
        metric=metric,
        reflection_lm=lm,
        config=gg.OptimizeConfig(**{**settings, **config}),
        run_dir=tmp_path / "run",
        progress=False,
    )


def test_standing_instructions_are_in_every_reflection_prompt(tmp_path: Path) -> None:
    lm = Reflector("RULE. Answer.")
    run(tmp_path, lm, reflection_instructions="Never mention prices.")
    assert lm.reflections
    for prompt in lm.reflections:
        section = prompt.split("## Standing instructions from the user\n", 1)[1]
        assert "Never mention prices." in section.split("## Your task")[0]
        assert "Follow the standing instructions from the user above." in prompt


def test_per_module_instructions_reach_only_their_module(tmp_path: Path) -> None:
    lm = Reflector("RULE. Answer.")
    instructions = {"planner": "Plans are numbered lists.", "writer": "Write in French."}
    run(
        tmp_path,
        lm,
        {"planner": "Plan.", "writer": "Write."},
        reflection_instructions=instructions,
        module_selection="all",
    )
    by_module = {p.split("module `")[1].split("`")[0]: p for p in lm.reflections}
    assert set(by_module) == {"planner", "writer"}
    assert "Plans are numbered lists." in by_module["planner"]
    assert "Write in French." not in by_module["planner"]
    assert "Write in French." in by_module["writer"]


def test_without_guidance_the_prompt_has_no_guidance_section() -> None:
    plain = render_reflection_prompt("agent", "Answer.", [], 100)
    assert "Standing instructions" not in plain and "characters" not in plain
    assert plain == render_reflection_prompt("agent", "Answer.", [], 100, (), "", None)


def test_an_over_cap_proposal_is_compressed_once_and_then_used(tmp_path: Path) -> None:
    long = "RULE. " + "Be thorough and careful. " * 4  # 106 characters
    lm = Reflector(long, compressed="RULE. Be careful.")
    result = run(tmp_path, lm, max_prompt_chars=60, reflection_instructions="Keep it polite.")
    assert len(lm.reflections) == 1 and len(lm.compressions) == 1
    assert "at most 60 characters" in lm.reflections[0]  # the cap is stated up front
    compression = lm.compressions[0]
    assert f"has {len(long.strip())} characters, more than the limit of 60" in compression
    assert long.strip() in compression and "Keep it polite." in compression
    assert result.best_candidate == {"agent": "RULE. Be careful."}
    assert result.ledger.reflection_calls == 2  # both calls are paid and counted


def test_still_over_after_compression_is_rejected_with_the_lengths(tmp_path: Path) -> None:
    long = "RULE. " + "x" * 80
    lm = Reflector(long, compressed="RULE. " + "y" * 70)
    result = run(tmp_path, lm, max_prompt_chars=50)
    assert len(lm.reflections) == 1 and len(lm.compressions) == 1  # compressed once, not twice
    (rejection,) = result.rejected
    assert rejection.reason == "over_length_cap"
    assert rejection.detail == (
        "the proposal has 86 characters, over max_prompt_chars=50; compressed once to 76, "
        "still over"
    )
    assert result.best_candidate == {"agent": "Answer."}
    assert result.rollouts_used == 3  # the seed's validation, the parent's minibatch: cached


def test_an_unusable_compression_rejects_the_proposal(tmp_path: Path) -> None:
    lm = Reflector("RULE. " + "x" * 80, compressed="Answer.")  # the parent's prompt again
    result = run(tmp_path, lm, max_prompt_chars=50)
    (rejection,) = result.rejected
    assert rejection.reason == "over_length_cap"
    assert "compression was unusable (unchanged" in rejection.detail


def test_an_under_cap_proposal_passes_untouched(tmp_path: Path) -> None:
    lm = Reflector("RULE. Answer briefly.")
    result = run(tmp_path, lm, max_prompt_chars=21)  # exactly its length
    assert lm.compressions == []
    assert result.best_candidate == {"agent": "RULE. Answer briefly."}
    assert result.ledger.reflection_calls == 1


def test_the_cap_counts_the_prompt_text_as_the_module_uses_it() -> None:
    guidance = Guidance(max_prompt_chars=20)
    reply = "Thoughts first.\n```\n\n  Use {name}: twenty c  \n\n```"
    # The fenced block's content, blank space around it stripped, {name} counted as written.
    text = "Use {name}: twenty c"
    assert len(text) == 20
    assert guidance.over_cap(LMResponse(text=reply), "Hi {name}.") is None
    assert guidance.capped(text, "Hi {name}.", None) == text
    longer = reply.replace("twenty c", "twenty ch")
    assert guidance.over_cap(LMResponse(text=longer), "Hi {name}.") == text + "h"
    with pytest.raises(InvalidProposal) as caught:
        guidance.capped(text + "h", "Hi {name}.", None, "its compression call failed: boom")
    assert caught.value.reason == "over_length_cap"
    assert "21 characters, over max_prompt_chars=20" in caught.value.detail
    assert "boom" in caught.value.detail


def test_a_compression_that_drops_a_variable_is_not_used() -> None:
    guidance = Guidance(max_prompt_chars=10)
    with pytest.raises(InvalidProposal) as caught:
        guidance.capped("Greet {name} warmly.", "Hi {name}.", LMResponse(text=fenced("Greet.")))
    assert "missing_variable" in caught.value.detail


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_prompt_chars": -5}, "max_prompt_chars: Input should be greater than 0"),
        ({"max_prompt_chars": 0}, "max_prompt_chars: Input should be greater than 0"),
        ({"reflection_instructions": "  "}, "reflection_instructions holds an empty text"),
        ({"reflection_instructions": {"agent": ""}}, "reflection_instructions holds an empty"),
    ],
)
def test_bad_guidance_settings_are_one_line_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        gg.OptimizeConfig(**config)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"max_prompt_chars": 5},
            "the seed prompt of module 'agent' has 7 characters, over max_prompt_chars=5",
        ),
        (
            {"reflection_instructions": {"agnet": "Be brief."}},
            "reflection_instructions names unknown module 'agnet'; modules are ['agent']",
        ),
    ],
)
def test_guidance_that_does_not_fit_the_seeds_fails_before_any_call(
    tmp_path: Path, config: dict[str, Any], message: str
) -> None:
    calls: list[str] = []

    def system(prompts: dict[str, str], example: dict[str, Any]) -> str:
        calls.append("rollout")
        return "ok"

    lm = Reflector("RULE.")
    with pytest.raises(ConfigError, match=re.escape(message)):
        gg.optimize(
            gg.FunctionSystem({"agent": "Answer."}, system),
            [{"id": 0}],
            metric=metric,
            reflection_lm=lm,
            config=gg.OptimizeConfig(max_rollouts=10, **config),
            run_dir=tmp_path / "run",
            progress=False,
        )
    assert calls == [] and lm.reflections == [] and not (tmp_path / "run").exists()


def test_the_scripted_reflection_lm_reads_a_compression_request(tmp_path: Path) -> None:
    def rewrite(current: str, prompt: str) -> str:
        if prompt.startswith(SHORTEN):  # shown the over-long proposal: keep its first line
            return current.splitlines()[0]
        return "RULE.\n" + "Explain every step in detail.\n" * 3

    lm = ScriptedReflectionLM(rewrite)
    result = run(tmp_path, lm, max_prompt_chars=40)
    assert [p.startswith(SHORTEN) for p in lm.calls] == [False, True]
    assert result.best_candidate == {"agent": "RULE."}


class Journal:
    """Keeps the reflection replies a run journals."""

    def __init__(self) -> None:
        self.replies: dict[str, dict[str, Any]] = {}

    def record_reflection(self, key: str, reply: dict[str, Any]) -> None:
        self.replies[key] = reply


def test_a_resumed_run_replays_the_compression_from_the_journal() -> None:
    lm = Reflector("RULE. " + "Be thorough and careful. " * 4, compressed="RULE. Be careful.")
    parent = gg.Candidate(prompts={"agent": "Answer."})
    examples = [Example({"id": i, "question": f"q{i}"}) for i in range(3)]
    results = [EvalResult(example_key=ex.key, score=0.0, feedback="say RULE") for ex in examples]

    def reflect(journaled: dict[str, dict[str, Any]]) -> tuple[Any, Journal, ReflectiveProposer]:
        journal = Journal()
        replay = ReflectionReplay(journal, journaled)  # type: ignore[arg-type]
        proposer = ReflectiveProposer(ReflectionLM(lm), replay, 2000, Guidance(max_prompt_chars=60))
        done = asyncio.run(proposer.reflect(parent, "agent", None, examples, results))
        return done, journal, proposer

    first, journal, _ = reflect({})
    assert len(journal.replies) == 2  # the reflection and its compression, both journaled
    again, _, proposer = reflect(dict(journal.replies))
    assert len(lm.reflections) == len(lm.compressions) == 1  # nothing asked twice
    assert again == first and len(again.calls) == 2
    assert proposer.proposal(parent, "agent", again) == "RULE. Be careful."
