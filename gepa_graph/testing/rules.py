"""A deterministic simulated task for testing and benchmarking the search itself.

Each example has a hidden type k. The scripted student answers it correctly only if the
prompt of the module owning type k states ``rule-k``; the metric's feedback names the missing
rule. The scripted reflection LM adds one rule named in the feedback it is shown. An optimizer
that reflects on the right feedback climbs; one that does not stays at the seed.
"""

from __future__ import annotations

import random
import re
from typing import Any

from gepa_graph.metric import Score
from gepa_graph.system import FunctionSystem, Trace
from gepa_graph.testing.reflection import ScriptedReflectionLM

_MISSING = re.compile(r"missing rule-(\d+)")


class RuleTask:
    """The task of the module docstring: ``n_types`` hidden example types spread over
    ``modules``, so a search with several modules must improve the right one for each type."""

    def __init__(self, n_types: int = 6, modules: tuple[str, ...] = ("instructions",)) -> None:
        self.n_types = n_types
        self.modules = modules

    def owner(self, kind: int) -> str:
        """The module responsible for examples of type ``kind``."""
        return self.modules[kind % len(self.modules)]

    def examples(self, count: int, seed: int = 0, prefix: str = "ex") -> list[dict[str, Any]]:
        """``count`` examples with random types (seeded, so a test is repeatable)."""
        rng = random.Random(seed)
        return [
            {"id": f"{prefix}{i}", "type": rng.randrange(self.n_types), "question": f"q{i}"}
            for i in range(count)
        ]

    def seed_prompts(self) -> dict[str, str]:
        """Prompts that state no rule: the seed scores 0 everywhere."""
        return {m: f"You are module {m}. Answer the question." for m in self.modules}

    def answer(self, prompts: dict[str, str], example: Any, trace: Trace) -> str:
        """The scripted student: right only when the owning module's prompt states the rule;
        records the call in ``trace`` under the owning module."""
        kind = example["type"]
        module = self.owner(kind)
        knows = f"rule-{kind}." in prompts[module]
        answer = f"answer-{kind}" if knows else "unsure"
        trace.add(
            "llm", node=module, inputs={"question": example["question"]}, outputs={"answer": answer}
        )
        return answer

    def system(self) -> FunctionSystem:
        """The task as a FunctionSystem, ready for ``gg.optimize``."""
        return FunctionSystem(modules=self.seed_prompts(), fn=self.answer)

    def metric(self, example: Any, prediction: str, trace: Any = None) -> Score:
        """1 for the right answer; else 0, with feedback for the owning module naming the
        missing rule."""
        kind = example["type"]
        if prediction == f"answer-{kind}":
            return Score(value=1.0, feedback="correct")
        module = self.owner(kind)
        return Score(
            value=0.0,
            feedback="wrong answer",
            module_feedback={module: f"wrong: missing rule-{kind}"},
        )

    def reflection_lm(self) -> ScriptedReflectionLM:
        """A reflection LM that adds the first missing rule the feedback names (or
        "Be careful." when it names none)."""

        def rewrite(current: str, reflection_prompt: str) -> str:
            wanted = [k for k in _MISSING.findall(reflection_prompt) if f"rule-{k}." not in current]
            if not wanted:
                return current + " Be careful."
            return f"{current}\nrule-{wanted[0]}. Handle type {wanted[0]} this way."

        return ScriptedReflectionLM(rewrite)
