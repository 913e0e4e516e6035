"""What the tests of the `gepa-graph` command share: a user's module (`cliapp`: a function
system, a metric, a reflection function and a LangGraph graph) with JSONL data, and the command
run in this process."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from gepa_graph import cli

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


def make_app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd (set by conftest) holds the user's module `cliapp` and JSONL data."""
    (tmp_path / "cliapp.py").write_text(APP)
    lines = [json.dumps({"id": f"e{i}", "name": f"user{i}"}) for i in range(3)]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def invoke(*args: str) -> Result:
    """Run the `gepa-graph` command in this process."""
    return CliRunner().invoke(cli.app, list(args))
