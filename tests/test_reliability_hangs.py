"""Code that never returns cannot hang optimize(): rollout, metric and reflection calls are cut
off at their timeouts or at max_seconds, the threads behind them are abandoned (daemon threads,
never joined), Ctrl-C stops a blocked run with a resumable checkpoint, and a run folder in use
refuses a second optimization in one line."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import gepa_graph as gg
from gepa_graph.errors import RunDirError

# A hang guard, not a timing: how long a call that must return may take. The limits under test
# are 1-2 s; the guard holds on a machine loaded far beyond that (load average 8 and more).
RETURNS_WITHIN_S = 600


@pytest.fixture
def release():
    """An event the blocked user code waits on; set at the end so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


def _returns(call):
    """Run ``call`` on a thread and assert it returns (or raises) instead of hanging."""
    box = {}

    def target():
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(RETURNS_WITHIN_S)
    assert not thread.is_alive(), "optimize() hung"
    if "error" in box:
        raise box["error"]
    return box["value"]


def _hang_on_child(release, kind):
    """A system whose seed answers at once and whose other candidates never return."""

    def sync(prompts, example):
        if prompts["m"] != "seed":
            release.wait()
        return prompts["m"]

    async def never(prompts, example):
        if prompts["m"] != "seed":
            await asyncio.Event().wait()
        return prompts["m"]

    return gg.FunctionSystem(modules={"m": "seed"}, fn=sync if kind == "sync" else never)


def _metric(example, prediction):
    return 0.0


CASES = {
    "sync system blocks, rollout_timeout_s=1": dict(
        system="sync",
        config={"rollout_timeout_s": 1, "max_iterations": 1},
        outcome="RolloutTimeout: no result after 1s (rollout_timeout_s)",
    ),
    "async system never returns, rollout_timeout_s=1": dict(
        system="async",
        config={"rollout_timeout_s": 1, "max_iterations": 1},
        outcome="RolloutTimeout: no result after 1s (rollout_timeout_s)",
    ),
    "sync system blocks, max_seconds=2, no rollout timeout": dict(
        system="sync",
        config={"rollout_timeout_s": None, "max_seconds": 2},
        outcome="(the run reached max_seconds)",
    ),
    "async system never returns, max_seconds=2, no rollout timeout": dict(
        system="async",
        config={"rollout_timeout_s": None, "max_seconds": 2},
        outcome="(the run reached max_seconds)",
    ),
    "sync metric blocks, rollout_timeout_s=1": dict(
        metric="sync",
        config={"rollout_timeout_s": 1, "max_iterations": 1},
        outcome="metric failed on example 'b': MetricError: no result after 1s",
    ),
    "sync reflection LM blocks, reflection_timeout_s=1": dict(
        reflection="sync",
        config={"reflection_timeout_s": 1, "max_iterations": 1},
        outcome="reflection_failed",
    ),
    "async reflection LM never returns, max_seconds=2": dict(
        reflection="async",
        config={"max_seconds": 2, "max_rollouts": None},
        outcome="reflection_failed",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hung_user_code_does_not_hang_optimize(case, tmp_path, release):
    spec = CASES[case]
    system = (
        _hang_on_child(release, spec["system"])
        if "system" in spec
        # The prompt is read, so a rewrite could change the output and is reflected on.
        else gg.FunctionSystem(modules={"m": "seed"}, fn=lambda prompts, example: prompts["m"])
    )

    def metric(example, prediction):
        if spec.get("metric") and example["id"] == "b":
            release.wait()
        return 0.0

    async def never(prompt):
        await asyncio.Event().wait()

    reflection = {"sync": lambda prompt: release.wait(), "async": never}.get(
        spec.get("reflection"), lambda prompt: "```\nchild\n```"
    )
    config = {"lm_backoff_s": 0.001, "use_merge": False, "minibatch_size": 2, **spec["config"]}
    config.setdefault("max_rollouts", 20)
    result = _returns(
        lambda: gg.optimize(
            system,
            [{"id": "a"}, {"id": "b"}],
            metric=metric,
            reflection_lm=reflection,
            run_dir=tmp_path / "run",
            progress=False,
            config=config,
        )
    )
    journal = tmp_path / "run" / "journal.jsonl"
    errors = (
        [
            json.loads(line)["result"]["error"]
            for line in journal.read_text().splitlines()
            if json.loads(line)["type"] == "rollout"
        ]
        if journal.exists()
        else []
    )
    if spec["outcome"] == "reflection_failed":
        assert result.rejected and {r.reason for r in result.rejected} == {"reflection_failed"}
    elif "max_seconds" in spec["outcome"]:
        # Cut off at the deadline: scored a failure, not journaled (a resume runs it again).
        assert result.stop_reason == "max_seconds"
        assert all(e is None for e in errors)
    else:
        assert any(e and e.endswith(spec["outcome"]) or e == spec["outcome"] for e in errors), (
            errors
        )


def test_langgraph_sync_node_that_blocks_does_not_hang_optimize(tmp_path, release):
    from typing import TypedDict

    from langchain_core.prompts import ChatPromptTemplate
    from langgraph.graph import START, StateGraph

    from gepa_graph.testing.chat_model import ScriptedChatModel

    class State(TypedDict, total=False):
        question: str
        answer: str

    def reply(messages):
        if "child" in messages[0].text:
            release.wait()  # the model call of every child candidate never returns
        return "a"

    chain = ChatPromptTemplate.from_messages(
        [("system", "Answer briefly."), ("human", "{question}")]
    ) | ScriptedChatModel(script=reply)

    def answer(state: State) -> State:  # a sync node: LangGraph runs it in the loop's executor
        return {"answer": chain.invoke({"question": state["question"]}).text}

    builder = StateGraph(State)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    result = _returns(
        lambda: gg.optimize(
            builder.compile(),
            [{"id": i, "question": f"q{i}"} for i in range(2)],
            metric=_metric,
            reflection_lm=lambda prompt: "```\nchild prompt\n```",
            max_rollouts=10,
            run_dir=tmp_path / "run",
            progress=False,
            config={"rollout_timeout_s": 1, "minibatch_size": 2, "max_iterations": 1},
        )
    )
    child = [
        json.loads(line)["result"]["error"]
        for line in (tmp_path / "run" / "journal.jsonl").read_text().splitlines()
        if json.loads(line).get("candidate_id") not in (None, result.candidates[0].id)
    ]
    assert child == ["RolloutTimeout: no result after 1s (rollout_timeout_s)"] * 2


SIGINT_SCRIPT = textwrap.dedent("""
    import sys, threading, pathlib
    import gepa_graph as gg
    run_dir, ready, resume = sys.argv[1], pathlib.Path(sys.argv[2]), len(sys.argv) > 3
    def fn(prompts, example):
        if prompts["m"] != "seed" and not resume:
            ready.write_text("blocked")
            threading.Event().wait()  # blocks its thread forever
        return prompts["m"]
    try:
        gg.optimize(gg.FunctionSystem(modules={"m": "seed"}, fn=fn), [{"id": "a"}, {"id": "b"}],
                    metric=lambda e, p: 0.0, reflection_lm=lambda p: "```\\nchild\\n```",
                    max_rollouts=20, run_dir=run_dir, progress=False, resume=resume,
                    config={"rollout_timeout_s": None, "minibatch_size": 2})
    except KeyboardInterrupt as exc:
        print(exc)
        sys.exit(130)
""")


def test_ctrl_c_stops_a_blocked_run_with_a_resumable_checkpoint(tmp_path):
    script, ready = tmp_path / "run.py", tmp_path / "ready"
    script.write_text(SIGINT_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "run"), str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(RETURNS_WITHIN_S * 10):
            if ready.exists() or process.poll() is not None:
                break
            threading.Event().wait(0.1)
        assert ready.exists(), process.communicate()[1]
        process.send_signal(signal.SIGINT)  # one Ctrl-C
        out, err = process.communicate(timeout=RETURNS_WITHIN_S)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert out == f"interrupted, resume with resume=True and run_dir={str(tmp_path / 'run')!r}\n"
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["status"] == "interrupted" and state["stop_reason"] is None
    resumed = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run"), str(ready), "resume"],
        capture_output=True,
        text=True,
        timeout=RETURNS_WITHIN_S,
    )
    assert resumed.returncode == 0, resumed.stderr
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["status"] == "finished" and state["stop_reason"] is not None


def test_a_second_optimization_on_a_busy_run_folder_refuses_in_one_line(tmp_path, release):
    started = threading.Event()

    def fn(prompts, example):
        started.set()
        release.wait()
        return "x"

    def first():
        return gg.optimize(
            gg.FunctionSystem(modules={"m": "p"}, fn=fn),
            [{"id": "a"}],
            metric=_metric,
            reflection_lm=lambda p: "```\nq\n```",
            max_rollouts=1,
            run_dir=tmp_path / "run",
            progress=False,
        )

    holder = threading.Thread(target=first, daemon=True)
    holder.start()
    assert started.wait(RETURNS_WITHIN_S)
    calls = []
    with pytest.raises(RunDirError, match="is in use by another optimization") as info:
        gg.optimize(
            gg.FunctionSystem(modules={"m": "p"}, fn=lambda p, e: calls.append(1)),
            [{"id": "a"}],
            metric=_metric,
            reflection_lm=lambda p: calls.append(2),
            max_rollouts=1,
            run_dir=tmp_path / "run",
            resume=True,
            progress=False,
        )
    assert "\n" not in str(info.value) and str(os.getpid()) in str(info.value) and calls == []
    release.set()
    holder.join(RETURNS_WITHIN_S)
    assert not holder.is_alive()
    # Released: the folder can be resumed now.
    again = gg.optimize(
        gg.FunctionSystem(modules={"m": "p"}, fn=lambda p, e: "x"),
        [{"id": "a"}],
        metric=_metric,
        reflection_lm=lambda p: "```\nq\n```",
        max_rollouts=1,
        run_dir=tmp_path / "run",
        resume=True,
        progress=False,
    )
    assert again.rollouts_used == 1


ASYNC_BLOCKS_SCRIPT = textwrap.dedent("""
    import sys, time
    from typing import TypedDict
    from langchain_core.prompts import ChatPromptTemplate
    from langgraph.graph import START, StateGraph
    import gepa_graph as gg
    from gepa_graph.testing.chat_model import ScriptedChatModel

    class State(TypedDict, total=False):
        question: str
        answer: str

    chain = ChatPromptTemplate.from_messages(
        [("system", "Answer briefly."), ("human", "{question}")]
    ) | ScriptedChatModel(script=lambda messages: "a")

    async def slow_node(state: State) -> State:
        time.sleep(3600)  # a blocking call inside async def: the event loop stops
        return {"answer": (await chain.ainvoke({"question": state["question"]})).text}

    builder = StateGraph(State)
    builder.add_node("slow_node", slow_node)
    builder.add_edge(START, "slow_node")
    try:
        gg.optimize(builder.compile(), [{"id": i, "question": f"q{i}"} for i in range(2)],
                    metric=lambda e, p: 0.0, reflection_lm=lambda p: "```\\nchild\\n```",
                    run_dir=sys.argv[1], progress=False,
                    config={"rollout_timeout_s": 1, "max_seconds": 8, "max_rollouts": 20})
    except gg.GepaGraphError as exc:
        print(f"{type(exc).__name__}: {exc}")
        sys.exit(3)
""")


def test_async_node_that_blocks_the_loop_stops_in_one_line_naming_it(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(ASYNC_BLOCKS_SCRIPT)
    process = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=RETURNS_WITHIN_S,  # before: never returned
    )
    assert process.returncode == 3, process.stderr
    (line,) = process.stdout.splitlines()
    assert line.startswith("LoopBlocked: the event loop has been blocked for"), line
    assert "slow_node (" in line and str(script) in line


def test_hung_threads_past_the_bound_stop_the_run_in_one_line(tmp_path, release, monkeypatch):
    from gepa_graph import usercode

    monkeypatch.setattr(usercode, "MAX_ABANDONED_CALLS", 3)

    def half_hang(prompts, example):
        if example["id"] % 2:
            release.wait()  # one call in two never returns
        return "x"

    with pytest.raises(usercode.HungThreads, match="never returned after their time limit") as info:
        _returns(
            lambda: gg.optimize(
                gg.FunctionSystem(modules={"m": "seed"}, fn=half_hang),
                [{"id": i} for i in range(40)],
                metric=_metric,
                reflection_lm=lambda p: "```\nchild\n```",
                max_rollouts=400,
                run_dir=tmp_path / "run",
                progress=False,
                config={"rollout_timeout_s": 0.2, "concurrency": 8, "rollout_retries": 0},
            )
        )
    assert "\n" not in str(info.value)
    hung = [t for t in threading.enumerate() if t.name.startswith("gepa-graph-")]
    assert len(hung) <= 3 + 1 + 8, len(hung)  # the bound, the call past it, one per slot


def test_a_thread_that_cannot_start_stops_the_run_in_one_line(tmp_path, monkeypatch):
    from gepa_graph import usercode

    start = threading.Thread.start

    def limited(thread):  # a process at its thread limit after two worker threads
        if thread.name.startswith("gepa-graph-") and thread.name[-1].isdigit():
            if int(thread.name.rpartition("-")[2]) > 2:
                raise RuntimeError("can't start new thread")
        return start(thread)

    monkeypatch.setattr(threading.Thread, "start", limited)
    with pytest.raises(usercode.HungThreads, match="cannot start a thread") as info:
        gg.optimize(
            gg.FunctionSystem(modules={"m": "seed"}, fn=lambda prompts, example: "x"),
            [{"id": i} for i in range(8)],
            metric=_metric,
            reflection_lm=lambda p: "```\nchild\n```",
            max_rollouts=40,
            run_dir=tmp_path / "run",
            progress=False,
            config={"concurrency": 8},
        )
    assert "\n" not in str(info.value)


def test_the_cli_says_in_one_line_how_to_resume_after_ctrl_c(capsys):
    import typer

    from gepa_graph.api import interrupted
    from gepa_graph.cli.common import user_errors

    with pytest.raises(typer.Exit) as info, user_errors():
        raise interrupted("runs/x")
    assert info.value.exit_code == 130
    assert capsys.readouterr().err == "interrupted, resume with --resume --run-dir runs/x\n"
