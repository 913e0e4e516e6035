"""Issue 10's promise on every agent of ``tests/agents`` (written in the styles of public
LangGraph templates and tutorials, each unchanged): discovery finds exactly the expected modules,
every evaluated rewrite reaches a model, each module's trace holds exactly the model calls that
carried its prompt, the user's graph is untouched by ``optimize``, and ``apply`` / ``with_prompts``
make a plain ``graph.invoke`` send the winner."""

import asyncio
import copy
import importlib
import re
import sys
import warnings
from pathlib import Path

import pytest

import gepa_graph as gg
from gepa_graph.integrations.langgraph import LangGraphSystem, with_prompts
from gepa_graph.integrations.langgraph.discover import find_slots

AGENTS = sorted(
    p.stem for p in (Path(__file__).parent / "agents").glob("*.py") if not p.stem.startswith("_")
)
MARK = re.compile(r"\[mark (\S+) (\d+)\]")


def load(name):
    return importlib.import_module(f"tests.agents.{name}")


def build(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(name).build()


def system_for(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # interrupts are turned off, with a notice
        system = LangGraphSystem(case.graph, **case.system_kwargs)
    if case.needs_probe:
        system.probe(case.examples[0])
    return system


def model_texts(case):
    return [m.text for model in case.models.values() for call in model.calls for m in call]


def model_calls(case):
    """The text of each recorded model call."""
    return [
        "\n".join(m.text for m in call) for model in case.models.values() for call in model.calls
    ]


def graph_input(system, example):
    return system.graph_input(gg.Example(**example))


def run_in_production(graph, system, case):
    """Plain ``graph.invoke`` on every example as a user would call it, resuming interrupts;
    a context instance is made now (one made after ``apply`` sees the new defaults)."""
    for n, example in enumerate(case.examples):
        kwargs = copy.deepcopy(case.invoke_kwargs)
        if "context" in kwargs:
            kwargs["context"] = type(kwargs["context"])()
        config = kwargs.setdefault("config", {})
        if "thread_id" in config.get("configurable", {}):
            config["configurable"]["thread_id"] += f"-{n}"
        graph.invoke(graph_input(system, example), **kwargs)
        while graph.checkpointer is not None and graph.get_state(config).next:
            graph.invoke(None, **kwargs)  # the user approves what the interrupt paused
    return model_calls(case)


class MarkingReflection:
    """A reflection LM that adds the module's fix phrase and a unique marker to its prompt."""

    def __init__(self, case):
        self.case = case
        self.count = 0
        self.prompts = []

    def __call__(self, prompt):
        self.prompts.append(prompt)
        current = re.search(r"(`{3,})\n(.*?)\n\1", prompt, re.S).group(2)
        module = next(m for m, seed in self.case.expected.items() if seed in current)
        self.count += 1
        fix = self.case.fixes.get(module, "Be precise.")
        return f"```\n{current}\n{fix} [mark {module} {self.count}]\n```"


@pytest.mark.parametrize("name", AGENTS)
def test_discovery_finds_exactly_the_expected_modules(name):
    case = build(name)
    modules = system_for(case).modules()
    assert set(modules) == set(case.expected)
    for module, seed in case.expected.items():
        assert seed in modules[module], module


@pytest.mark.parametrize("name", AGENTS)
def test_each_module_sees_exactly_the_model_calls_that_carried_its_prompt(name):
    case = build(name)
    system = system_for(case)
    for example in case.examples[:2]:
        rollout = asyncio.run(system.arun(system.modules(), gg.Example(**example)))
        assert rollout.trace.by_prompt
        calls = [r for r in rollout.trace.records if r.kind == "llm"]
        assert calls, "the agent made no model call"
        for module, seed in case.expected.items():
            carried = [r for r in calls if seed in str(r.inputs)]
            shown = [r for r in rollout.trace.for_module(module, None) if r.kind == "llm"]
            assert shown == carried, module


@pytest.fixture
def restore_agent_modules():
    """apply() rebinds module constants and class defaults: reload the agents afterwards."""
    yield
    for module in [m for n, m in sys.modules.items() if n.startswith("tests.agents.")]:
        importlib.reload(module)


@pytest.mark.parametrize("name", AGENTS)
@pytest.mark.usefixtures("restore_agent_modules")
def test_optimize_rewrites_reach_the_model_and_apply_sends_the_winner(name, tmp_path):
    case = build(name)
    system = system_for(case)
    before = {n: s.text for n, s in find_slots(case.graph).items()}
    reflection = MarkingReflection(case)
    result = gg.optimize(
        system,
        case.examples,
        case.examples,
        metric=case.metric,
        reflection_lm=reflection,
        max_rollouts=60,
        run_dir=tmp_path / "run",
        progress=False,
        config=gg.OptimizeConfig(minibatch_size=2, seed=0),
    )
    assert reflection.prompts, "no reflection happened"
    # The probe confirmed no module beyond the expected ones (e.g. no gg.prompt default twice).
    assert set(system.modules()) == set(case.expected)
    # Every rewrite that won its place reached a model: a single-module child is accepted only
    # when its score changed, so its marker must be in some recorded call. (A joint child may
    # carry a rewrite of a branch none of its rollouts took.)
    sent = "\n".join(model_texts(case))
    singles = [r for r in result.candidates if r.origin != "merge" and len(r.changed_modules) == 1]
    for record in singles:
        [module] = record.changed_modules
        mark = MARK.findall(record.prompts[module])[-1]
        assert f"[mark {mark[0]} {mark[1]}]" in sent, (module, mark)
    # Each module's reflection was about that module.
    for prompt in reflection.prompts:
        module = MarkingReflection(case)(prompt).split("[mark ")[1].split()[0]
        assert case.expected[module] in prompt
    # The user's graph still holds and sends its seed prompts.
    assert {n: s.text for n, s in find_slots(case.graph).items()} == before
    best = result.best_candidate
    changed = {m: t for m, t in best.items() if t != system.modules()[m]}
    # with_prompts (what the registry path returns) and apply make plain invoke send the winner.
    for target in ("with_prompts", "apply"):
        for model in case.models.values():
            model.reset()
        if target == "apply":
            result.apply(case.graph)
            calls = run_in_production(case.graph, system, case)
        else:
            calls = run_in_production(with_prompts(case.graph, best), system, case)
        # Every call that carries a changed module's prompt carries the winner's text of it.
        carried = 0
        for module, text in changed.items():
            for call in calls:
                if case.expected[module] in call:
                    assert text.splitlines()[-1] in call, (target, module)
                    carried += 1
        assert carried or not changed, target
