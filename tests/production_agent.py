"""An arithmetic agent "in production" for the traces-to-promotion tests: a one-node LangGraph
graph on a scripted model, the traffic that produces its MLflow traces, and a scripted
reflection LM. Importable as ``production_agent`` (tests put this folder on ``sys.path``).

The model answers "The answer is N." unless its system prompt asks for the number only; a
prompt that names one question (``only for 'What is 1 + 2?'``) gets the bare number for that
question alone. People's feedback on the traces asks for the bare number.
"""

from __future__ import annotations

import os
import re
from typing import TypedDict

from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import END, START, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel
from gepa_graph.testing.reflection import ScriptedReflectionLM

SEED = "You answer arithmetic questions."
RULE = " Reply with the number only."
QUESTION = re.compile(r"What is (\d+) \+ (\d+)\?")


def questions(count: int, start: int = 0) -> list[str]:
    """``count`` distinct addition questions."""
    return [f"What is {i} + {i % 7 + 1}?" for i in range(start, start + count)]


def expected(question: str) -> str:
    """The right answer, as the bare number."""
    a, b = QUESTION.fullmatch(question).groups()
    return str(int(a) + int(b))


def reply(messages) -> str:
    """The scripted model: bare number when the system prompt asks for it (for every question,
    or for the one it quotes), a sentence otherwise."""
    system, question = messages[0].text, messages[-1].text
    answer = expected(question)
    if "Reply with the number only." in system or f"only for '{question}'" in system:
        return answer
    return f"The answer is {answer}."


class State(TypedDict):
    question: str
    answer: str


chain = ChatPromptTemplate.from_messages([("system", SEED), ("human", "{question}")]) | (
    ScriptedChatModel(script=reply)
)


def answer(state: State) -> dict[str, str]:
    """The graph's one node."""
    return {"answer": chain.invoke({"question": state["question"]}).content}


builder = StateGraph(State)
builder.add_node("answer", answer)
builder.add_edge(START, "answer")
builder.add_edge("answer", END)
graph = builder.compile()


def rewrite(current: str, reflection_prompt: str) -> str:
    """The scripted reflection: the feedback asks for bare numbers, so it adds the rule."""
    return current + RULE if RULE.strip() not in current else current + " Be exact."


def reflect(prompt: str) -> str:
    """A reflection LM (``--reflection-lm production_agent:reflect``)."""
    return ScriptedReflectionLM(rewrite)(prompt)


def register_production(
    name: str, prompts: dict[str, str], tracking_uri: str, alias: str = "production"
) -> None:
    """Register ``prompts`` as ``NAME@alias`` (as an earlier optimization would have)."""
    from gepa_graph.events import Ledger
    from gepa_graph.result import CandidateRecord, Result
    from gepa_graph.tracking import registry

    record = CandidateRecord(
        id="prod",
        prompts=prompts,
        val_scores={},
        mean_score=0.0,
        iteration=0,
        rollouts_at_discovery=0,
    )
    result = Result(
        best_id="prod",
        best_candidate=prompts,
        best_score=0.0,
        seed_candidate=prompts,
        seed_score=0.0,
        candidates=[record],
        rejected=[],
        rollouts_used=0,
        ledger=Ledger(),
        iterations=0,
        stop_reason="max_rollouts",
        val_keys=[],
    )
    registry.register(result, name, alias, tracking_uri)


def serve_traffic(name: str, experiment: str, tracking_uri: str, asked: list[str]) -> list[str]:
    """Run ``NAME@production`` on ``asked`` with MLflow autolog on, as production does, then
    attach what people said: the expected answer and a thumbs-down with its reason when the
    reply was not the bare number. Returns the trace ids."""
    import mlflow
    from mlflow.tracking import fluent

    from gepa_graph.tracking import registry

    # Restore what was set, not the resolved default: None keeps later tests on their cwd.
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    # The active experiment too: prompts registered later would be linked to this one's id.
    previous_experiment = (fluent._active_experiment_id, os.environ.get("MLFLOW_EXPERIMENT_ID"))
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    mlflow.langchain.autolog(silent=True)
    trace_ids = []
    try:
        production = registry.with_registry_prompts(graph, f"{name}@production", tracking_uri)
        for question in asked:
            output = production.invoke({"question": question})
            trace_id = mlflow.get_last_active_trace_id()
            mlflow.flush_trace_async_logging()
            mlflow.log_expectation(
                trace_id=trace_id, name="expected_answer", value=expected(question)
            )
            good = output["answer"] == expected(question)
            mlflow.log_feedback(
                trace_id=trace_id,
                name="thumbs_up",
                value=good,
                rationale="" if good else "Give the bare number; no sentence around it.",
            )
            trace_ids.append(trace_id)
    finally:
        mlflow.langchain.autolog(disable=True)
        mlflow.set_tracking_uri(previous)
        fluent._active_experiment_id = previous_experiment[0]
        if previous_experiment[1] is None:
            os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        else:
            os.environ["MLFLOW_EXPERIMENT_ID"] = previous_experiment[1]
    return trace_ids
