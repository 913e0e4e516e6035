"""The end-to-end promise, checked on one corpus agent in three stages (shared by
``tests/test_agent_corpus.py`` and ``python -m tests.agents.survey``):

1. ``check_discovery``: exactly the expected modules, readable names, seeds as expected; no
   library prompt, document template or stop phrase among them.
2. ``check_rewrites``: a candidate that rewrites every module (its seed plus a marker) reaches
   every model call that carries the module and no other (the substitution audit passes), and
   each module's trace holds exactly the calls rewritten for it.
3. ``check_optimize``: ``optimize`` runs, every accepted single-module rewrite reached a model,
   reflections are about their module, the user's agent still sends its seed afterwards, and
   ``with_prompts`` / ``apply`` (and ``export`` for file prompts) make a plain run send the winner.

Each raises ``AssertionError`` (or the error the library raised) with what went wrong.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import inspect
import re
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any

import gepa_graph as gg
from gepa_graph.integrations.langgraph import LangGraphSystem, with_prompts
from gepa_graph.testing.reflection import module_name

from ._case import AgentCase

AGENTS_DIR = Path(__file__).parent
STAGES = ("discovery", "rewrites", "optimize")
READABLE = re.compile(r"^[A-Za-z_][\w.\-/]*$")
MARK = re.compile(r"\[mark (\S+) (\d+)\]")


def agent_names() -> list[str]:
    """Every agent of the corpus (a ``tests/agents/<pattern>.py`` with ``build``)."""
    return sorted(
        p.stem
        for p in AGENTS_DIR.glob("*.py")
        if not p.stem.startswith("_") and "def build(" in p.read_text()
    )


def build(name: str) -> AgentCase:
    """A fresh case of agent ``name``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(f"tests.agents.{name}").build()


def reload_agents() -> None:
    """``apply`` rebinds module constants and class defaults: reload every agent module."""
    for module in [m for n, m in sys.modules.items() if n.startswith("tests.agents.")]:
        importlib.reload(module)


def system_for(case: AgentCase, **options: Any) -> LangGraphSystem:
    """The system the user would build, probed as ``optimize`` probes it (on the first three
    examples; on the first one where the probe takes a single example)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # interrupts are turned off, with a notice
        system = LangGraphSystem(case.graph, **case.system_kwargs, **options)
        if case.needs_probe or getattr(system, "needs_probe", False):
            several = "examples" in inspect.signature(system.aprobe).parameters
            system.probe(case.examples[:3] if several else case.examples[0])
    return system


def call_texts(case: AgentCase) -> list[str]:
    """The text of each model call the case's models recorded, model by model."""
    return [text for key in case.models for text in calls_of(case, key)]


def calls_of(case: AgentCase, key: str) -> list[str]:
    """The prompt-bearing text of each call of one model: its system and human messages (a
    model's own output, echoed back as an AI or tool message, is no prompt)."""
    return [
        "\n".join(m.text for m in call if m.type not in ("ai", "tool"))
        for call in case.models[key].calls
    ]


def carriers(case: AgentCase, module: str) -> list[str]:
    """The recorded calls that carry ``module``: its owner model's calls, else those holding
    its expected seed text."""
    if module in case.owners:
        return calls_of(case, case.owners[module])
    return [text for text in call_texts(case) if case.expected[module] in text]


def reset(case: AgentCase) -> None:
    for model in case.models.values():
        model.reset()


def marked(system: Any) -> dict[str, str]:
    """Every module rewritten: its seed followed by a line ``[mark <module> 0]``."""
    return {name: f"{text}\n[mark {name} 0]" for name, text in system.modules().items()}


# ----------------------------------------------------------------------------- stage 1


def check_discovery(case: AgentCase, system: Any) -> None:
    modules = system.modules()
    assert set(modules) == set(case.expected), (
        f"modules {sorted(modules)} != expected {sorted(case.expected)}"
    )
    for name, text in modules.items():
        assert READABLE.match(name), f"module name {name!r} is not readable"
        assert case.expected[name] in text, (
            f"{name}: seed {text[:60]!r} lacks {case.expected[name]!r}"
        )
        for library in case.library:
            assert library not in text, f"{name} holds the library's prompt {library!r}"
        for other in case.not_modules:
            assert text.strip() != other, f"{name} is {other!r}, which is no prompt"
    if case.library:  # listed as library prompts: optimized only when the user opts in
        everything = system_for(case, library_prompts=True).modules()
        listed = [text for name, text in everything.items() if name not in modules]
        for library in case.library:
            assert any(library in text for text in listed), f"library prompt {library!r} not listed"


# ----------------------------------------------------------------------------- stage 2


def check_rewrites(case: AgentCase, system: Any, examples: int = 2) -> None:
    candidate = marked(system)
    for example in case.examples[:examples]:
        reset(case)
        rollout = asyncio.run(system.arun(candidate, gg.Example(**example)))
        assert rollout.error is None, f"rollout failed: {rollout.error}"
        calls = call_texts(case)
        assert calls, "the agent made no model call"
        for module in candidate:
            mark = f"[mark {module} 0]"
            carrying = carriers(case, module)
            missed = [c for c in carrying if mark not in c]
            assert not missed, f"{module}: {len(missed)} call(s) kept the seed: {missed[0][:90]!r}"
            twice = [c for c in carrying if c.count(mark) > 1]
            assert not twice, f"{module} rewritten twice in one call: {twice[0][:90]!r}"
            stray = [c for c in calls if mark in c and c not in carrying]
            assert not stray, f"{module} rewritten in another module's call: {stray[0][:90]!r}"
        records = [r for r in rollout.trace.records if r.kind == "llm"]
        assert len(records) >= len(calls), f"{len(calls)} model calls, {len(records)} traced"
        for module in candidate:
            mark = f"[mark {module} 0]"
            shown = [r for r in rollout.trace.for_module(module, None) if r.kind == "llm"]
            rewritten = [r for r in records if mark in prompt_text(r.inputs)]
            assert shown == rewritten, (
                f"{module}: its trace shows {len(shown)} call(s), {len(rewritten)} carried it"
            )


def prompt_text(value: Any) -> str:
    """The prompt-bearing text of a traced call's inputs: every message except the assistant's
    and tools' (nested lists for ``generate`` batches; plain ``prompts`` strings as they are)."""
    if isinstance(value, dict):
        if "role" in value:
            return "" if value["role"] in ("assistant", "ai", "tool") else str(value.get("content"))
        return "\n".join(prompt_text(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return "\n".join(prompt_text(v) for v in value)
    return str(value)


# ----------------------------------------------------------------------------- stage 3


class MarkingReflection:
    """A reflection LM that adds the module's fix phrase and a unique marker to its prompt."""

    def __init__(self, case: AgentCase) -> None:
        self.case = case
        self.count = 0
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        current = re.search(r"(`{3,})\n(.*?)\n\1", prompt, re.S).group(2)
        module = module_name(prompt)
        self.count += 1
        fix = self.case.fixes.get(module, "Be precise.")
        return f"```\n{current}\n{fix} [mark {module} {self.count}]\n```"


def run_in_production(graph: Any, system: Any, case: AgentCase) -> list[str]:
    """Plain ``graph.invoke`` on every example as a user would call it, resuming interrupts; a
    context instance (with the example's ``context`` values) is made now: one made after
    ``apply`` sees the new defaults."""
    reset(case)
    for n, example in enumerate(case.examples):
        kwargs = copy.deepcopy(case.invoke_kwargs)
        if "context" in kwargs:  # the example's own context, as the user would pass it
            kwargs["context"] = type(kwargs["context"])(**example.get("context", {}))
        config = kwargs.setdefault("config", {})
        if "thread_id" in config.get("configurable", {}):  # a new conversation each time
            config["configurable"]["thread_id"] += f"-{n}-{uuid.uuid4().hex[:8]}"
        graph.invoke(system.graph_input(gg.Example(**example)), **kwargs)
        while getattr(graph, "checkpointer", None) is not None and graph.get_state(config).next:
            graph.invoke(None, **kwargs)  # the user approves what the interrupt paused
    return call_texts(case)


def check_sends(case: AgentCase, changed: dict[str, str], how: str) -> None:
    """Every call the last run made that carries a changed module carries the winner's last
    line."""
    carried = 0
    for module, text in changed.items():
        for call in carriers(case, module):
            assert text.splitlines()[-1] in call, f"{how}: a call of {module} kept the seed"
            carried += 1
    assert carried or not changed, f"{how}: no call carried a changed module"


def check_optimize(case: AgentCase, system: Any, run_dir: Path) -> Any:
    reflection = MarkingReflection(case)
    result = gg.optimize(
        system,
        case.examples,
        case.examples,
        metric=case.metric,
        reflection_lm=reflection,
        max_rollouts=60,
        run_dir=run_dir / "run",
        progress=False,
        config=gg.OptimizeConfig(minibatch_size=2, seed=0),
    )
    assert reflection.prompts, "no reflection happened"
    assert set(system.modules()) == set(case.expected), "the probe changed the modules"
    # A single-module child is accepted only when its score changed: its marker reached a model.
    sent = "\n".join(call_texts(case))
    for record in result.candidates:
        if record.origin != "merge" and len(record.changed_modules) == 1:
            [module] = record.changed_modules
            name, n = MARK.findall(record.prompts[module])[-1]
            assert f"[mark {name} {n}]" in sent, f"{module}'s accepted rewrite reached no model"
    for prompt in reflection.prompts:  # each module's reflection is about that module
        assert case.expected[module_name(prompt)] in prompt
    # The user's agent is untouched: a plain run still sends every seed and no rewrite.
    calls = run_in_production(case.graph, system, case)
    assert not any("[mark " in c for c in calls), "optimize changed the user's agent"
    for module in case.expected:
        assert carriers(case, module), f"{module}'s seed no longer reaches a model"
    seeds = system.modules()
    changed = {m: t for m, t in result.best_candidate.items() if t != seeds[m]}
    run_in_production(with_prompts(case.graph, result.best_candidate), system, case)
    check_sends(case, changed, "with_prompts")
    result.apply(case.graph)
    run_in_production(case.graph, system, case)
    check_sends(case, changed, "apply")
    if case.files:
        check_export(case, result, changed, run_dir / "export")
    return result


def check_export(case: AgentCase, result: Any, changed: dict[str, str], folder: Path) -> None:
    """``result.export(folder)`` writes a copy of each file prompt, holding the winner."""
    export = getattr(result, "export", None)
    assert export is not None, "Result has no export(directory)"
    export(folder)
    for module, source in case.files.items():
        copies = [p for p in folder.rglob(Path(source).name) if p.is_file()]
        assert copies, f"export wrote no copy of {Path(source).name}"
        if module in changed:
            last = changed[module].splitlines()[-1]
            assert any(last in p.read_text() for p in copies), f"{module}'s export lacks the winner"
