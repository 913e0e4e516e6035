"""Math word problems (GSM-Symbolic, from reasoning-gym's ``gsm_symbolic`` generator).

A two-node LangGraph agent: ``solve`` works the problem step by step under its prompt, and
``answer`` (plain code, no prompt) pulls the final number out of the working. The metric
compares that number with the generator's answer; its feedback gives the right answer and what
the working ended with, so reflection can teach the prompt to reason carefully and to finish
with a clear ``Answer: <number>`` line.

    python examples/math_word_problems/agent.py                   # the local model
    python examples/math_word_problems/agent.py --model ollama/llama3.1
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, TypedDict

HERE = Path(__file__).resolve().parent

SOLVER_PROMPT = "Solve the math problem."

_ANSWER = re.compile(r"answer\s*(?:is)?\s*[:=]?\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def load_data() -> list[dict[str, Any]]:
    lines = (HERE / "data.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def extract_number(text: str) -> str | None:
    """The number after the last 'Answer:', else the last number in the text."""
    found = _ANSWER.findall(text) or _NUMBER.findall(text)
    if not found:
        return None
    value = found[-1].replace(",", "")
    return value.removesuffix(".0")


def _same(got: str | None, expected: str) -> bool:
    try:
        return got is not None and abs(float(got) - float(expected)) < 1e-6
    except ValueError:
        return False


def metric(example: Any, prediction: Any):
    import gepa_graph as gg

    prediction = prediction or {}
    got = prediction.get("answer")
    expected = str(example["answer"])
    if _same(got, expected):
        return gg.Score(value=1.0, feedback=f"Correct: {expected}.")
    working = str(prediction.get("working") or "")
    tail = working.strip()[-200:]
    return gg.Score(
        value=0.0,
        feedback=(
            f"Wrong: the final answer read from the working was {got!r}, the correct answer is "
            f"{expected}. The working ended with: {tail!r}. Work through each quantity in the "
            "problem step by step, check the arithmetic, and end with a line 'Answer: <number>'."
        ),
    )


class State(TypedDict, total=False):
    question: str
    working: str
    answer: str


def build_graph(model: Any) -> Any:
    from langchain_core.prompts import ChatPromptTemplate
    from langgraph.graph import END, START, StateGraph

    chain = (
        ChatPromptTemplate.from_messages([("system", SOLVER_PROMPT), ("human", "{question}")])
        | model
    )

    def solve(state: State) -> dict[str, str]:
        reply = chain.invoke({"question": state["question"]})
        return {"working": reply.text}

    def answer(state: State) -> dict[str, str]:
        return {"answer": extract_number(state.get("working", "")) or ""}

    builder = StateGraph(State)
    builder.add_node("solve", solve)
    builder.add_node("answer", answer)
    builder.add_edge(START, "solve")
    builder.add_edge("solve", "answer")
    builder.add_edge("answer", END)
    return builder.compile(name="math_solver")


def main(argv: list[str] | None = None) -> None:
    import gepa_graph as gg
    from gepa_graph import local

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=local.DEFAULT_MODEL, help="LiteLLM model")
    parser.add_argument("--reflection-lm", default=None, help="LiteLLM model (default: --model)")
    parser.add_argument("--max-rollouts", type=int, default=40)
    args = parser.parse_args(argv)
    data = load_data()
    graph = build_graph(local.chat_model(args.model, max_tokens=350))
    result = gg.optimize(
        graph,
        data[:10],
        data[10:18],
        metric=metric,
        reflection_lm=local.resolve(args.reflection_lm or args.model),
        max_rollouts=args.max_rollouts,
        tracking="gepa-graph-examples",
        progress=True,
        config=gg.OptimizeConfig(concurrency=4, reflection_max_tokens=600),
    )
    print(f"validation: seed {result.seed_score:.3f} -> best {result.best_score:.3f}")
    print(result.best_candidate["solve"])


if __name__ == "__main__":
    main()
