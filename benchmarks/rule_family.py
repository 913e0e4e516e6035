"""A family of simulated rule-learning tasks for measuring the *search* itself.

Every example has one or two hidden types. A scripted student answers an example correctly
only when, for each of its types k, the prompt of the module owning k states ``rule-k.`` on a
line of its own, and that line is among the last ``max_rules`` rule lines of the prompt (a
long prompt "forgets" its oldest rules, so a prompt cannot simply hoard every rule). Types
follow a Zipf-like distribution, so when a module owns more types than it can hold, the best
prompt keeps the frequent rules: the optimum is below 1.0 and search quality shows. In the
``coupled`` member every example needs one rule from each of two modules, so the modules must
change together: a rewrite of one module alone never raises a score.

The student reads a module's prompt only for the examples that need it, as an agent whose router
sends each question to the specialists it concerns (gepa_graph reuses a rollout for a candidate
that changed only prompts it never read: ``OptimizeConfig.reuse_rollouts``).

The metric's feedback names what is missing (``missing rule-k``), per module. The scripted
reflection LM reads *any* reflection prompt (gepa_graph's or gepa's): it takes the current
instruction from the prompt's **first** fenced block and every ``missing rule-k`` line
anywhere in the prompt, and answers with a fenced block holding the new instruction. It adds
up to ``max_add`` of the named rules (moving a named rule that is present but forgotten to the
end), and is noisy: with ``p_wrong`` the first rule it adds is the wrong one, with ``p_drop``
its rewrite loses one existing rule. Its noise is a function of (noise seed, current
instruction, set of missing rules), not of the exact prompt wording or call order, so the two
optimizers get the same draw in the same situation.

The same ``student``, ``score`` and ``ReflectionLM`` serve both optimizers: gepa_graph through
``gg.FunctionSystem`` + ``metric``, gepa through ``RuleAdapter`` (a ``GEPAAdapter``). Both see the
same feedback text for the module being rewritten.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import gepa_graph as gg

_RULE_LINE = re.compile(r"^rule-(\d+)\.")
_MISSING = re.compile(r"missing rule-(\d+)")
_FENCE = re.compile(r"```[^\n`]*\n(.*?)\n?```", re.DOTALL)


@dataclass(frozen=True)
class RuleTaskSpec:
    """One member of the family."""

    name: str = "two-module"
    n_types: int = 12
    modules: tuple[str, ...] = ("planner", "solver")
    pair_fraction: float = 0.3  # share of examples needing two rules
    coupled: bool = False  # the two rules of a pair always belong to different modules
    max_rules: int | None = 4  # rule lines a module's prompt can hold (the last ones win)
    zipf: float = 1.0  # type frequency ~ 1 / (k + 1) ** zipf
    p_wrong: float = 0.15  # reflection adds a wrong rule instead of the first named one
    p_drop: float = 0.1  # reflection's rewrite loses one existing rule
    max_add: int = 2  # rules added per reflection
    n_train: int = 30
    n_val: int = 30
    n_test: int = 300

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FAMILY: dict[str, RuleTaskSpec] = {
    # One prompt, 8 types, room for 5 rules: a capacity trade-off inside one module.
    "single": RuleTaskSpec(name="single", n_types=8, modules=("instructions",), max_rules=5),
    # Two modules (planner owns even types, solver odd), pairs across modules, 4 rules each.
    "two-module": RuleTaskSpec(name="two-module"),
    # Three modules, more pairs, noisier reflection, no capacity limit.
    "three-module-noisy": RuleTaskSpec(
        name="three-module-noisy",
        n_types=12,
        modules=("router", "planner", "solver"),
        pair_fraction=0.4,
        max_rules=None,
        p_wrong=0.3,
        p_drop=0.2,
    ),
    # Two modules that must change together: every example needs a rule from each, and the
    # metric gives no partial credit, so no single-module rewrite can win a minibatch.
    "coupled": RuleTaskSpec(name="coupled", n_types=8, pair_fraction=1.0, coupled=True),
}


@dataclass
class RuleTask:
    spec: RuleTaskSpec
    data_seed: int = 0
    train: list[dict[str, Any]] = field(default_factory=list)
    val: list[dict[str, Any]] = field(default_factory=list)
    test: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(f"rule-task/{self.spec.name}/{self.data_seed}")
        self.train = self._examples(rng, self.spec.n_train, "tr")
        self.val = self._examples(rng, self.spec.n_val, "va")
        self.test = self._examples(rng, self.spec.n_test, "te")

    # -- data

    def owner(self, kind: int) -> str:
        return self.spec.modules[kind % len(self.spec.modules)]

    def _examples(self, rng: random.Random, count: int, prefix: str) -> list[dict[str, Any]]:
        spec = self.spec
        weights = [1.0 / (k + 1) ** spec.zipf for k in range(spec.n_types)]
        examples = []
        for i in range(count):
            first = rng.choices(range(spec.n_types), weights=weights)[0]
            types = [first]
            if rng.random() < spec.pair_fraction:
                second = first
                while second == first or (spec.coupled and self.owner(second) == self.owner(first)):
                    second = rng.choices(range(spec.n_types), weights=weights)[0]
                types.append(second)
            examples.append({"id": f"{prefix}{i}", "types": types, "question": f"{prefix}-q{i}"})
        return examples

    def seed_prompts(self) -> dict[str, str]:
        return {m: f"You are the {m}. Answer the question." for m in self.spec.modules}

    # -- the student and the metric (shared by both optimizers)

    def honoured(self, prompt: str) -> set[int]:
        rules = [int(m.group(1)) for line in prompt.splitlines() if (m := _RULE_LINE.match(line))]
        if self.spec.max_rules is not None:
            rules = rules[-self.spec.max_rules :] if self.spec.max_rules else []
        return set(rules)

    def student(
        self, prompts: Mapping[str, str], example: Mapping[str, Any], trace: gg.Trace | None = None
    ) -> str:
        parts = []
        for kind in example["types"]:
            module = self.owner(kind)  # as a router would: only this module's prompt is read
            part = f"answer-{kind}" if kind in self.honoured(prompts[module]) else "guess"
            parts.append(part)
            if trace is not None:
                trace.add(
                    "llm",
                    node=module,
                    inputs={"question": example["question"]},
                    outputs={"answer": part},
                )
        return " ".join(parts)

    def score(self, example: Mapping[str, Any], prediction: str) -> gg.Score:
        missing: dict[str, list[int]] = {}
        for kind, part in zip(example["types"], prediction.split(), strict=True):
            if part != f"answer-{kind}":
                missing.setdefault(self.owner(kind), []).append(kind)
        if not missing:
            return gg.Score(value=1.0, feedback="correct")
        module_feedback = {
            m: ("wrong: " + "; ".join(f"missing rule-{k}" for k in missing[m]))
            if m in missing
            else "wrong, but this module did its part: the error is in another module"
            for m in self.spec.modules
        }
        overall = "wrong: " + "; ".join(
            f"missing rule-{k} (module {m})" for m, kinds in missing.items() for k in kinds
        )
        return gg.Score(value=0.0, feedback=overall, module_feedback=module_feedback)

    def metric(self, example: Any, prediction: Any, trace: Any = None) -> gg.Score:
        return self.score(example, prediction)

    def system(self) -> gg.FunctionSystem:
        return gg.FunctionSystem(modules=self.seed_prompts(), fn=self.student)

    def mean_score(
        self, prompts: Mapping[str, str], examples: Sequence[Mapping[str, Any]]
    ) -> float:
        return sum(self.score(ex, self.student(prompts, ex)).value for ex in examples) / len(
            examples
        )

    def reflection_lm(self, noise_seed: int) -> ReflectionLM:
        return ReflectionLM(self, noise_seed)


class ReflectionLM:
    """The scripted reflection LM (see the module docstring); a plain ``(prompt) -> str``."""

    def __init__(self, task: RuleTask, noise_seed: int) -> None:
        self.task = task
        self.noise_seed = noise_seed
        self.calls = 0
        self.unparsed = 0

    def __call__(self, prompt: str) -> str:
        self.calls += 1
        match = _FENCE.search(prompt)
        if match is None:  # not a reflection prompt we understand: propose nothing new
            self.unparsed += 1
            return "I cannot find the instruction.\n```\nAnswer the question.\n```"
        current = match.group(1).strip("\n")
        missing = list(dict.fromkeys(int(k) for k in _MISSING.findall(prompt)))
        spec = self.task.spec
        key = f"{self.noise_seed}\n{current}\n{sorted(missing)}"
        rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
        lines = current.splitlines()
        honoured = self.task.honoured(current)
        wanted = [k for k in missing if k not in honoured][: spec.max_add]
        if wanted and rng.random() < spec.p_wrong:
            others = [k for k in range(spec.n_types) if k not in missing]
            if others:
                wanted[0] = rng.choice(others)
        rule_rows = [i for i, line in enumerate(lines) if _RULE_LINE.match(line)]
        if rule_rows and rng.random() < spec.p_drop:
            del lines[rng.choice(rule_rows)]
        for kind in wanted:
            lines = [line for line in lines if not line.startswith(f"rule-{kind}.")]
            lines.append(f"rule-{kind}. For type {kind} questions, apply procedure {kind}.")
        if not wanted:
            lines.append("Double-check the answer.")
        new = "\n".join(lines)
        return f"Here is the improved instruction.\n\n```\n{new}\n```\n"


class RuleAdapter:
    """gepa 0.1.4's ``GEPAAdapter`` over the same student and metric. Each component's
    reflective dataset carries that component's feedback, exactly the text gepa_graph shows."""

    propose_new_texts = None

    def __init__(self, task: RuleTask) -> None:
        self.task = task

    def evaluate(
        self, batch: list[dict[str, Any]], candidate: dict[str, str], capture_traces: bool = False
    ) -> Any:
        from gepa import EvaluationBatch

        outputs, scores, trajectories = [], [], []
        for example in batch:
            output = self.task.student(candidate, example)
            score = self.task.score(example, output)
            outputs.append(output)
            scores.append(score.value)
            trajectories.append({"example": example, "output": output, "score": score})
        return EvaluationBatch(
            outputs=outputs, scores=scores, trajectories=trajectories if capture_traces else None
        )

    def make_reflective_dataset(
        self, candidate: dict[str, str], eval_batch: Any, components_to_update: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        return {
            component: [
                {
                    "Inputs": {"question": t["example"]["question"]},
                    "Generated Outputs": t["output"],
                    "Feedback": t["score"].feedback_for(component),
                }
                for t in eval_batch.trajectories or []
            ]
            for component in components_to_update
        }
