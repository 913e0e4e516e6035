"""Tree search in the style of LATS: ``expand`` asks for several candidate answers in one
``llm.generate([...])`` call (passing the node's callbacks, as the tutorial does), and the async
``score`` node grades them all with one ``await grader.agenerate([...])`` call (``generate``
when the graph runs sync; neither passes callbacks); the best candidate
is kept and a low grade expands the tree again.
"""

from __future__ import annotations

import re

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says

PATTERN = "llm.generate([...]) and await llm.agenerate([...]) in a tree-search loop"
EXPAND_FIX, SCORE_FIX = "TRY DIFFERENT SPLITS", "SCORE 0 UNLESS THE PRODUCT MATCHES"
EXPAND_PROMPT = "You propose candidate solutions to number puzzles. Give two numbers as 'a, b'."
GRADE_PROMPT = (
    "You grade a candidate solution of a number puzzle from 0 to 10. Reply with the grade."
)
PUZZLES = {"p9": (9, 20), "p11": (11, 30), "p13": (13, 42), "p15": (15, 56)}
SPLITS = {
    total: next(f"{a}, {total - a}" for a in range(1, total) if a * (total - a) == p)
    for total, p in PUZZLES.values()
}


class State(TypedDict, total=False):
    question: str
    candidates: list[str]
    answer: str
    grade: int
    depth: int


def numbers(text: str) -> tuple[int, int]:
    total, product = re.search(r"sum is (\d+) and whose product is (\d+)", text).groups()
    return int(total), int(product)


def expand_reply(messages) -> str:
    request = last_human(messages)
    total, _ = numbers(request)
    attempt = int(request.rsplit("Attempt ", 1)[1])
    if attempt == 3 and says(messages, EXPAND_FIX):
        return SPLITS[total]
    return f"{attempt}, {total - attempt}"


def grade_reply(messages) -> str:
    request = last_human(messages)
    total, product = numbers(request)
    a, b = (int(n) for n in request.rsplit("Candidate: ", 1)[1].split(","))
    if a + b != total or (says(messages, SCORE_FIX) and a * b != product):
        return "0"
    return "10"


def build() -> AgentCase:
    proposer = ScriptedChatModel(script=expand_reply)
    grader = ScriptedChatModel(script=grade_reply)

    def expand(state: State, config: RunnableConfig) -> dict:
        batches = [
            [SystemMessage(EXPAND_PROMPT), HumanMessage(f"{state['question']}\nAttempt {k}")]
            for k in (1, 2, 3)
        ]
        result = proposer.generate(batches, callbacks=config.get("callbacks"))
        return {"candidates": [generations[0].text for generations in result.generations]}

    def grading_batches(state: State) -> list:
        return [
            [SystemMessage(GRADE_PROMPT), HumanMessage(f"{state['question']}\nCandidate: {c}")]
            for c in state["candidates"]
        ]

    def keep_best(state: State, result) -> dict:
        grades = [int(generations[0].text) for generations in result.generations]
        best = grades.index(max(grades))
        depth = state.get("depth", 0) + 1
        return {"answer": state["candidates"][best], "grade": grades[best], "depth": depth}

    def score(state: State) -> dict:
        return keep_best(state, grader.generate(grading_batches(state)))

    async def ascore(state: State) -> dict:
        return keep_best(state, await grader.agenerate(grading_batches(state)))

    def search_again(state: State) -> str:
        return "expand" if state["grade"] < 10 and state["depth"] < 2 else END

    builder = StateGraph(State)
    builder.add_node("expand", expand)
    builder.add_node("score", RunnableLambda(score, afunc=ascore))
    builder.add_edge(START, "expand")
    builder.add_edge("expand", "score")
    builder.add_conditional_edges("score", search_again, ["expand", END])
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "expand",
                    example["answer"] in state["candidates"],
                    f"No candidate was the solution {example['answer']}: the proposal prompt "
                    f'should say "{EXPAND_FIX}".',
                ),
                (
                    "score",
                    state["answer"] == example["answer"],
                    f"The search kept {state['answer']!r} instead of {example['answer']!r}: the "
                    f'grading prompt should say "{SCORE_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"proposer": proposer, "grader": grader},
        examples=[
            {
                "id": key,
                "question": f"Find two whole numbers whose sum is {s} and whose product is {p}.",
                "answer": SPLITS[s],
            }
            for key, (s, p) in PUZZLES.items()
        ],
        metric=metric,
        expected={
            "expand": "You propose candidate solutions to number puzzles.",
            "score": "You grade a candidate solution of a number puzzle",
        },
        fixes={"expand": EXPAND_FIX, "score": SCORE_FIX},
    )
