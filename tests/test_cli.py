"""The `gepa-graph` command: optimize/show/promote on JSONL data, inspect, ui, and user errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gepa_graph import cli
from gepa_graph.cli import runs
from gepa_graph.store import RunStore
from gepa_graph.tracking import registry
from gepa_graph.tracking import schema as S

APP = textwrap.dedent("""
    import re
    from typing import TypedDict

    from langchain_core.prompts import ChatPromptTemplate
    from langgraph.graph import END, START, StateGraph

    import gepa_graph as gg
    from gepa_graph.testing.chat_model import ScriptedChatModel

    system = gg.FunctionSystem(modules={"m": "Say hi to {name}"}, fn=lambda p, e: p["m"])

    def metric(example, prediction):
        return gg.Score(value=min(prediction.count("!") / 2, 1.0), feedback="more !")

    def reflect(prompt):
        current = re.search(r"(`{3,})\\n(.*?)\\n\\1", prompt, re.DOTALL).group(2)
        return "```\\n" + current + "!\\n```"

    class State(TypedDict):
        question: str
        answer: str

    chain = ChatPromptTemplate.from_messages(
        [("system", "Answer {question} in one word.")]) | ScriptedChatModel(script=lambda m: "ok")

    def answer(state):
        return {"answer": chain.invoke(state).content}

    builder = StateGraph(State)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    graph = builder.compile()
""")


@pytest.fixture
def app_dir(tmp_path, monkeypatch):
    """cwd (set by conftest) holds the user's module `cliapp` and JSONL data."""
    (tmp_path / "cliapp.py").write_text(APP)
    lines = [json.dumps({"id": f"e{i}", "name": f"user{i}"}) for i in range(3)]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _invoke(*args: str):
    return CliRunner().invoke(cli.app, list(args))


def test_optimize_register_show_promote(app_dir):
    uri = f"sqlite:///{app_dir}/mlflow.db"
    result = _invoke(
        "optimize",
        "cliapp:system",
        "cliapp:metric",
        "--train",
        "train.jsonl",
        "--reflection-lm",
        "cliapp:reflect",
        "--max-rollouts",
        "30",
        "--run-dir",
        "run",
        "--experiment",
        "cli",
        "--tracking-uri",
        uri,
        "--register",
        "cliagent",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert "Say hi to {name}!!" in result.output
    assert "registered cliagent@candidate: m=v1" in result.output
    assert registry.load_prompts("cliagent@candidate", uri) == {"m": "Say hi to {name}!!"}
    run_id = RunStore(app_dir / "run").attribute(S.ATTR_RUN_ID)

    from_disk = _invoke("show", "run")
    assert from_disk.exit_code == 0, from_disk.output
    assert "stop: perfect_score" in from_disk.output and "Say hi to {name}!!" in from_disk.output

    from_mlflow = _invoke("show", "--run-id", run_id, "--tracking-uri", uri)
    assert from_mlflow.exit_code == 0, from_mlflow.output
    assert "FINISHED" in from_mlflow.output and "Say hi to {name}!!" in from_mlflow.output

    promoted = _invoke("promote", "cliagent", "--tracking-uri", uri)
    assert promoted.exit_code == 0, promoted.output
    assert "cliagent.m: production -> v1" in promoted.output
    assert registry.load_prompts("cliagent@production", uri) == {"m": "Say hi to {name}!!"}


def _optimize_and_register(app_dir, uri, *extra):
    result = _invoke(
        "optimize",
        "cliapp:system",
        "cliapp:metric",
        "--train",
        "train.jsonl",
        "--reflection-lm",
        "cliapp:reflect",
        "--max-rollouts",
        "30",
        "--experiment",
        "cli",
        "--tracking-uri",
        uri,
        "--register",
        "gated",
        "--no-progress",
        *extra,
    )
    assert result.exit_code == 0, result.output
    return result


def test_promotion_gate_and_rollback(app_dir):
    uri = f"sqlite:///{app_dir}/mlflow.db"
    _optimize_and_register(app_dir, uri, "--run-dir", "run1")
    # Eight held-out examples: the gate's tests cannot tell three apart from noise.
    lines = [json.dumps({"id": f"h{i}", "name": f"held{i}"}) for i in range(8)]
    (app_dir / "holdout.jsonl").write_text("\n".join(lines) + "\n")
    gate = (
        "promote",
        "gated",
        "--gate",
        "holdout.jsonl",
        "--graph",
        "cliapp:system",
        "--metric",
        "cliapp:metric",
        "--tracking-uri",
        uri,
    )
    won = _invoke(*gate)
    # No production yet: the graph's own prompt (score 0) is the baseline.
    assert won.exit_code == 0, won.output
    assert "gated: candidate 1.0000 vs graph 0.0000 (margin 0.02): promoted" in won.output
    assert registry.load_prompts("gated@production", uri) == {"m": "Say hi to {name}!!"}

    tie = _invoke(*gate)  # candidate == production: not better by the margin
    assert tie.exit_code == 1 and "vs production 1.0000 (margin 0.02): kept" in tie.output

    from mlflow import MlflowClient

    from gepa_graph.tracking import schema as S

    client = MlflowClient(uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("cli").experiment_id],
        f"tags.`{S.TAG_KIND}` = 'promotion'",
        order_by=["start_time"],
    )
    assert [r.data.tags[S.TAG_PROMOTION_DECISION] for r in runs] == ["promoted", "kept"]
    metrics = runs[0].data.metrics
    assert (metrics[S.GATE_CANDIDATE_SCORE], metrics[S.GATE_PRODUCTION_SCORE]) == (1.0, 0.0)

    client.set_prompt_alias("gated.m", "production", 1)  # as if moved earlier by hand
    registry.register(registry_result({"m": "Say hi to {name}!"}), "gated", tracking_uri=uri)
    moved = _invoke("promote", "gated", "--tracking-uri", uri)
    assert moved.exit_code == 0 and "gated.m: production -> v2" in moved.output
    back = _invoke("rollback", "gated", "--tracking-uri", uri)
    assert back.exit_code == 0, back.output
    assert "gated.m: production v2 -> v1" in back.output
    assert registry.load_prompts("gated@production", uri) == {"m": "Say hi to {name}!!"}


def registry_result(prompts):
    from gepa_graph.events import Ledger
    from gepa_graph.result import CandidateRecord, Result

    record = CandidateRecord(
        id="x",
        prompts=prompts,
        val_scores={"a": 1.0},
        mean_score=1.0,
        iteration=0,
        rollouts_at_discovery=1,
    )
    return Result(
        best_id="x",
        best_candidate=prompts,
        best_score=1.0,
        seed_candidate=prompts,
        seed_score=1.0,
        candidates=[record],
        rejected=[],
        rollouts_used=1,
        ledger=Ledger(),
        iterations=0,
        stop_reason="x",
        val_keys=["a"],
    )


def test_show_run_id_never_creates_a_store_and_names_wrong_ids(
    app_dir, tmp_path_factory, monkeypatch
):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    missing = _invoke("show", "--run-id", "0123456789abcdef")
    assert missing.exit_code == 2
    assert f"error: no MLflow store at {elsewhere / 'mlflow.db'}" in missing.stderr
    assert not (elsewhere / "mlflow.db").exists()
    monkeypatch.chdir(app_dir)

    uri = f"sqlite:///{app_dir}/mlflow.db"
    _optimize_and_register(app_dir, uri, "--run-dir", "run")
    unknown = _invoke("show", "--run-id", "0123456789abcdef", "--tracking-uri", uri)
    assert unknown.exit_code == 2
    assert "error: no MLflow run '0123456789abcdef' at sqlite:///" in unknown.stderr

    from mlflow import MlflowClient

    parent = RunStore(app_dir / "run").attribute(S.ATTR_RUN_ID)
    child = (
        MlflowClient(uri)
        .search_runs(
            [MlflowClient(uri).get_run(parent).info.experiment_id],
            f"tags.mlflow.parentRunId = '{parent}'",
        )[0]
        .info.run_id
    )
    candidate = _invoke("show", "--run-id", child, "--tracking-uri", uri)
    assert candidate.exit_code == 2
    assert f"of an optimization; show the optimization with --run-id {parent}" in candidate.stderr
    shown = _invoke("show", "--run-id", parent, "--tracking-uri", uri)
    assert shown.exit_code == 0 and "validation score 0.000 (seed) -> 1.000 (best)" in shown.output
    assert "Downloading artifacts" not in shown.output + shown.stderr


def test_inspect_prints_the_graph_prompts(app_dir):
    result = _invoke("inspect", "cliapp:graph")
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
    result = _invoke(*args)
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message)  # MLflow may log INFO lines too


def test_ui_starts_a_local_single_worker_server(monkeypatch):
    seen = {}

    def fake_call(command, env):
        seen.update(command=command, env=env)
        return 0

    monkeypatch.setattr(runs.subprocess, "call", fake_call)
    result = _invoke("ui", "--port", "5123")
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
    without = _invoke("inspect", "proseapp:graph")
    assert without.exit_code == 2 and "candidates that no probe run confirmed" in without.output
    probed = _invoke("inspect", "proseapp:graph", "--probe", "probe.jsonl")
    assert probed.exit_code == 0, probed.output
    assert (
        "1 prompt(s)" in probed.output and "module constant proseapp.HOUSE_RULES" in probed.output
    )
    assert "confirmed by the probe run: ['greet']" in probed.output


def test_a_gepa_graph_error_is_one_line_without_traceback(app_dir):
    """The user's mistakes: a GepaGraphError from the library, a budget api.py refuses."""
    not_a_graph = _invoke("inspect", "cliapp:system")
    assert not_a_graph.exit_code == 2
    assert not_a_graph.stderr.strip().splitlines() == [
        "error: expected a compiled LangGraph graph, got FunctionSystem"
    ]
    assert "Traceback" not in not_a_graph.output
    tiny = _invoke(
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
    result = _invoke("inspect", "cliapp:graph")
    assert result.exception is bug
    assert "error:" not in result.stderr


def test_a_missing_file_is_the_users_error(app_dir):
    result = _invoke(
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
