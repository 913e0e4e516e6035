"""Fact checker that checks claims in parallel with a plain ``concurrent.futures`` thread pool
inside the node (``pool.map(check_claim, claims)``), as scripts speed up many LLM calls; the worker
threads are the pool's own, not LangChain's.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says

PATTERN = "model calls from a ThreadPoolExecutor's own threads inside a node"
FIX = "NUMBERS MUST MATCH EXACTLY"
CHECKER_PROMPT = "You check one claim against common knowledge. Reply TRUE or FALSE."
FACTS = {"legs": 8, "planets": 8, "continents": 7, "bones": 206}
CLAIMS = {
    "spider": ["A spider has 8 legs.", "A spider has 6 legs."],
    "solar": ["There are 8 planets.", "There are 9 planets."],
    "earth": ["There are 7 continents.", "There are 5 continents."],
    "body": ["Adults have 206 bones.", "Adults have 300 bones."],
}


def check_reply(messages) -> str:
    claim = last_human(messages)
    if not says(messages, FIX):
        return "TRUE"
    number = int(next(w for w in claim.split() if w.isdigit()))
    return (
        "TRUE"
        if number in FACTS.values() and any(k in claim for k, v in FACTS.items() if v == number)
        else "FALSE"
    )


class State(TypedDict, total=False):
    topic: str
    claims: list[str]
    verdicts: list[str]


def build() -> AgentCase:
    checker = ScriptedChatModel(script=check_reply)

    def check_claim(claim: str) -> str:
        return checker.invoke([SystemMessage(CHECKER_PROMPT), HumanMessage(claim)]).text

    def check_all(state: State) -> dict:
        with ThreadPoolExecutor(max_workers=2) as pool:
            return {"verdicts": list(pool.map(check_claim, state["claims"]))}

    builder = StateGraph(State)
    builder.add_node("check_all", check_all)
    builder.add_edge(START, "check_all")
    builder.add_edge("check_all", END)
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "check_all",
                    state["verdicts"] == ["TRUE", "FALSE"],
                    f"The second claim is false, got {state['verdicts']}: the checker prompt "
                    f'should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=graph,
        models={"checker": checker},
        examples=[
            {"id": key, "topic": key, "claims": claims, "answer": "TRUE, FALSE"}
            for key, claims in CLAIMS.items()
        ],
        metric=metric,
        expected={"check_all": "You check one claim against common knowledge."},
        fixes={"check_all": FIX},
    )
