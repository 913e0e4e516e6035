"""The `gepa-graph` command: inspect, ui, the installed script, and user errors (the runs it
records in MLflow: test_cli_mlflow.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gepa_graph.cli import runs
from tests.cli_app import invoke, make_app_dir


@pytest.fixture
def app_dir(tmp_path, monkeypatch):
    return make_app_dir(tmp_path, monkeypatch)


def test_inspect_prints_the_graph_prompts(app_dir):
    result = invoke("inspect", "cliapp:graph")
    assert result.exit_code == 0, result.output
    assert "1 prompt(s)" in result.output and "Answer {question} in one word." in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("optimize", "nowhere:system", "cliapp:metric"),
            "error: cannot import system 'nowhere:system': ModuleNotFoundError",
        ),
        (
            ("optimize", "cliapp:nothing", "cliapp:metric"),
            "error: cannot import system 'cliapp:nothing': cliapp has no attribute 'nothing'",
        ),
        (("optimize", "cliapp", "cliapp:metric"), "error: system must be given as module:attr"),
        (
            ("optimize", "cliapp:system", "cliapp:metric", "--val", "bad.jsonl"),
            "error: bad.jsonl:2: invalid JSON in val",
        ),
        (
            ("optimize", "cliapp:system", "cliapp:metric", "--train", "list.jsonl"),
            "error: list.jsonl:1: each train line must be a JSON object, got list",
        ),
        (("promote", "bad name!"), "error: registry name 'bad name!' is invalid"),
        (("show",), "error: give either a run folder or --run-id"),
        (
            ("optimize", "cliapp:system", "cliapp:metric", "--executor", "bogus"),
            "error: unknown executor 'bogus'; use 'local', 'ray'",
        ),
    ],
)
def test_user_errors_are_one_line_and_exit_2(app_dir, args, message):
    (app_dir / "bad.jsonl").write_text('{"id": 1}\n{"id": 2,,}\n')
    (app_dir / "list.jsonl").write_text("[1, 2]\n")
    if "--train" not in args and args[0] == "optimize":
        args = (*args, "--train", "train.jsonl")
    if args[0] == "optimize":
        args = (*args, "--reflection-lm", "cliapp:reflect")
    result = invoke(*args)
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message)  # MLflow may log INFO lines too


def test_ui_starts_a_local_single_worker_server(monkeypatch):
    seen = {}

    def fake_call(command, env):
        seen.update(command=command, env=env)
        return 0

    monkeypatch.setattr(runs.subprocess, "call", fake_call)
    result = invoke("ui", "--port", "5123")
    assert result.exit_code == 0
    command = seen["command"]
    assert command[1:4] == ["-m", "mlflow", "server"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "5123"
    assert command[command.index("--workers") + 1] == "1"
    assert seen["env"]["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


def test_installed_command_reports_errors_with_exit_code_2(tmp_path):
    executable = Path(sys.executable).parent / "gepa-graph"
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    helped = subprocess.run([str(executable), "--help"], capture_output=True, text=True, env=env)
    assert helped.returncode == 0
    for command in ("optimize", "inspect", "show", "promote", "rollback", "ui"):
        assert command in helped.stdout
    (tmp_path / "data.jsonl").write_text("{not json}\n")
    failed = subprocess.run(
        [
            str(executable),
            "optimize",
            "x:y",
            "x:z",
            "--train",
            "data.jsonl",
            "--reflection-lm",
            "m",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines() == [
        "error: cannot import system 'x:y': ModuleNotFoundError: No module named 'x'"
    ]


def test_importing_the_package_leaves_litellm_unloaded():
    """cli sets LITELLM_LOCAL_MODEL_COST_MAP before anything imports litellm."""
    code = (
        "import sys, os; import gepa_graph.cli; "
        "print('litellm' in sys.modules, os.environ['LITELLM_LOCAL_MODEL_COST_MAP'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["False", "True"]


def test_inspect_probe_confirms_a_prompt_only_a_run_shows(app_dir):
    (app_dir / "proseapp.py").write_text(
        textwrap.dedent("""
        from typing import TypedDict
        from langchain_core.messages import SystemMessage
        from langgraph.graph import START, StateGraph
        from gepa_graph.testing.chat_model import ScriptedChatModel

        HOUSE_RULES = "You greet every visitor of the museum warmly and by name."
        model = ScriptedChatModel(script=lambda messages: "hello")

        class State(TypedDict, total=False):
            question: str
            answer: str

        def greet(state):
            return {"answer": model.invoke([SystemMessage(HOUSE_RULES), state["question"]]).text}

        builder = StateGraph(State)
        builder.add_node("greet", greet)
        builder.add_edge(START, "greet")
        graph = builder.compile()
    """)
    )
    (app_dir / "probe.jsonl").write_text('{"id": "p", "question": "hi, I am Ann"}\n')
    without = invoke("inspect", "proseapp:graph")
    assert without.exit_code == 2 and "candidates that no probe run confirmed" in without.output
    probed = invoke("inspect", "proseapp:graph", "--probe", "probe.jsonl")
    assert probed.exit_code == 0, probed.output
    assert (
        "1 prompt(s)" in probed.output and "module constant proseapp.HOUSE_RULES" in probed.output
    )
    assert "confirmed by the probe run: ['greet']" in probed.output


def test_a_gepa_graph_error_is_one_line_without_traceback(app_dir):
    """The user's mistakes: a GepaGraphError from the library, a budget api.py refuses."""
    not_a_graph = invoke("inspect", "cliapp:system")
    assert not_a_graph.exit_code == 2
    assert not_a_graph.stderr.strip().splitlines() == [
        "error: expected a compiled LangGraph graph, got FunctionSystem"
    ]
    assert "Traceback" not in not_a_graph.output
    tiny = invoke(
        "optimize",
        "cliapp:system",
        "cliapp:metric",
        "--train",
        "train.jsonl",
        "--reflection-lm",
        "cliapp:reflect",
        "--max-rollouts",
        "1",
        "--run-dir",
        "r",
    )
    assert tiny.exit_code == 2 and "Traceback" not in tiny.output
    errors = [line for line in tiny.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot even evaluate the seed" in errors[0]


@pytest.mark.parametrize(
    "bug", [ValueError("bad index"), KeyError("slot"), TypeError("arity"), RuntimeError("broken")]
)
def test_an_internal_bug_is_not_reported_as_a_user_error(app_dir, monkeypatch, bug):
    """A ValueError/KeyError/TypeError raised by gepa_graph's own code is a bug: it keeps its
    traceback instead of becoming an `error:` line."""
    import gepa_graph.integrations.langgraph as langgraph

    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr(langgraph, "describe", broken)
    result = invoke("inspect", "cliapp:graph")
    assert result.exception is bug
    assert "error:" not in result.stderr


def test_a_missing_file_is_the_users_error(app_dir):
    result = invoke(
        "optimize",
        "cliapp:system",
        "cliapp:metric",
        "--train",
        "nowhere.jsonl",
        "--reflection-lm",
        "cliapp:reflect",
    )
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: cannot read train file nowhere.jsonl")
    )
