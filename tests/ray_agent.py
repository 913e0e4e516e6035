"""Small systems for tests/test_ray_executor.py, importable by Ray workers (the test cluster's
PYTHONPATH holds this folder): a rule-learning FunctionSystem that reports the process it ran
in, a one-node LangGraph agent and its factory, and a system that does not pickle."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import TypedDict

from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import START, StateGraph

from gepa_graph.system import FunctionSystem
from gepa_graph.testing.chat_model import ScriptedChatModel
from gepa_graph.testing.reflection import ScriptedReflectionLM
from gepa_graph.testing.rules import RuleTask

TASK = RuleTask(n_types=4)


def answer(prompts, example, trace):
    """The rule task's answer and this process's id. An example with ``die_once`` (a folder)
    kills its process on its first attempt; with ``hang`` (a file) its first attempt writes its
    pid there and sleeps for ten minutes."""
    marker_dir = example.get("die_once")
    if marker_dir:
        marker = Path(marker_dir) / f"{example['id']}.died"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    if example.get("hang") and not Path(example["hang"]).exists():
        Path(example["hang"]).write_text(str(os.getpid()))
        time.sleep(600)
    time.sleep(0.02)  # long enough for two workers to share the work
    return {"answer": TASK.answer(prompts, example, trace), "pid": os.getpid()}


system = FunctionSystem(TASK.seed_prompts(), answer)


def metric(example, prediction):
    return TASK.metric(example, prediction["answer"])


def reflection_lm():
    return TASK.reflection_lm()


def locked_system():
    """A system whose function closes over a lock: it cannot be pickled."""
    lock = threading.Lock()

    def guarded(prompts, example, trace):
        with lock:
            return answer(prompts, example, trace)

    return FunctionSystem(TASK.seed_prompts(), guarded)


# -- a LangGraph agent: the scripted model writes the capital in capitals only when its
# system prompt asks for it, so only prompts substituted in the worker can raise the score.

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Peru": "Lima",
    "Kenya": "Nairobi",
    "Chile": "Santiago",
    "Egypt": "Cairo",
}


class QA(TypedDict, total=False):
    question: str
    answer: str


def _reply(messages):
    city = CAPITALS[messages[-1].text.split()[-1]]
    return city.upper() if "UPPERCASE" in messages[0].text else city


def make_graph():
    """A factory: a one-node graph with a scripted chat model (import path
    ``ray_agent:make_graph``)."""
    model = ScriptedChatModel(script=_reply)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Name the capital city."), ("human", "{question}")]
    )
    builder = StateGraph(QA)
    builder.add_node("capital", prompt | model | (lambda message: {"answer": message.content}))
    builder.add_edge(START, "capital")
    return builder.compile()


def capital_examples():
    return [
        {"id": country, "question": f"capital of {country}", "answer": city.upper()}
        for country, city in CAPITALS.items()
    ]


def capital_metric(example, prediction):
    from gepa_graph.metric import Score

    if prediction["answer"] == example["answer"]:
        return 1.0
    return Score(value=0.0, feedback="Right city, but write it in UPPERCASE letters.")


def capital_reflection_lm():
    def rewrite(current, reflection_prompt):
        if "UPPERCASE" in reflection_prompt and "UPPERCASE" not in current:
            return current + " Write it in UPPERCASE."
        return current + " Be brief."

    return ScriptedReflectionLM(rewrite)
