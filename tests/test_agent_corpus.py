"""Issue 20's promise on every agent of ``tests/agents`` (each in the style of public LangGraph and
LangChain code, run unchanged): discovery finds exactly the expected modules with readable names,
every evaluated rewrite reaches every model call that carries its module and no other (the
substitution audit passes), each module's trace holds exactly those calls, the user's agent is
untouched by ``optimize``, and ``apply`` / ``with_prompts`` (and ``export`` for prompts kept in
files) make a plain run send the winner. The stages live in ``tests/agents/_checks.py``;
``python -m tests.agents.survey`` runs the same stages as a table.

``KNOWN_GAPS`` marks, strictly, the (stage, agent) pairs that fail on the fix as merged, each with
the capability it lacks; a pair that starts passing turns the run red until its mark goes."""

import pytest

from tests.agents import _checks

AGENTS = _checks.agent_names()

# (stage, agent) -> the capability the fix still lacks, as an xfail(strict) reason.
KNOWN_GAPS: dict[tuple[str, str], str] = {}


def agents(stage):
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[stage, name]))
        if (stage, name) in KNOWN_GAPS
        else name
        for name in AGENTS
    ]


@pytest.fixture
def restore_agent_modules():
    """apply() rebinds module constants and class defaults: reload the agents afterwards."""
    yield
    _checks.reload_agents()


@pytest.mark.parametrize("name", agents("discovery"))
def test_discovery_finds_exactly_the_expected_modules(name):
    case = _checks.build(name)
    _checks.check_discovery(case, _checks.system_for(case))


@pytest.mark.parametrize("name", agents("rewrites"))
def test_every_rewrite_reaches_every_call_that_carries_its_module_and_no_other(name):
    case = _checks.build(name)
    _checks.check_rewrites(case, _checks.system_for(case))


@pytest.mark.parametrize("name", agents("optimize"))
@pytest.mark.usefixtures("restore_agent_modules")
def test_optimize_leaves_the_agent_alone_and_apply_sends_the_winner(name, tmp_path):
    case = _checks.build(name)
    _checks.check_optimize(case, _checks.system_for(case), tmp_path)


def test_every_known_gap_names_a_corpus_agent_and_stage():
    assert {name for _, name in KNOWN_GAPS} <= set(AGENTS)
    assert {stage for stage, _ in KNOWN_GAPS} <= set(_checks.STAGES)
