"""Reflexion-style self-critique: ``draft`` answers, ``critique`` reviews the answer against the
question and lists what is missing (or says ``NO ISSUES``), and ``revise`` rewrites the answer from
the critique, looping until the critic is satisfied or three rounds have passed.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says

PATTERN = "Reflexion: draft -> critique -> revise loop until the critic is satisfied"
CRITIC_FIX, REVISE_FIX = "CHECK THE UNITS", "APPLY EVERY CRITIQUE POINT"
DRAFT_SYSTEM_PROMPT = "You are a science tutor. Answer the student's question in one sentence."
CRITIC_SYSTEM_PROMPT = (
    "You are a strict reviewer. List what the answer gets wrong or leaves out, or reply NO ISSUES."
)
REVISE_SYSTEM_PROMPT = "Revise the answer using the reviewer's critique. Keep it to one sentence."
FACTS = {
    "light": ("How fast does light travel?", "300000", "km/s"),
    "sound": ("How fast does sound travel in air?", "343", "m/s"),
    "boil": ("At what temperature does water boil at sea level?", "100", "degrees Celsius"),
    "gravity": ("What is the acceleration due to gravity on Earth?", "9.8", "m/s2"),
}


class State(TypedDict, total=False):
    question: str
    answer: str
    critique: str
    rounds: int


def fact_for(text: str) -> tuple[str, str, str]:
    return next(v for v in FACTS.values() if v[0] in text)


def draft_reply(messages) -> str:
    _, number, _ = fact_for(last_human(messages))
    return f"It is {number}."


def critique_reply(messages) -> str:
    _, number, unit = fact_for(last_human(messages))
    answer = last_human(messages).split("Answer: ", 1)[1]
    issues = ["Answer in a full sentence."] if answer.startswith("It is") else []
    if says(messages, CRITIC_FIX) and unit not in answer:
        issues.append(f"The answer lacks its unit: {unit}.")
    return " ".join(issues) or "NO ISSUES"


def revise_reply(messages) -> str:
    request = last_human(messages)
    answer = request.split("Answer: ", 1)[1].split("\n", 1)[0].replace("It is", "The value is")
    unit = request.split("unit: ", 1)[1].rstrip(".") if "unit: " in request else None
    if unit and says(messages, REVISE_FIX):
        return answer.rstrip(".") + f" {unit}."
    return answer


def build() -> AgentCase:
    drafter = ScriptedChatModel(script=draft_reply)
    critic = ScriptedChatModel(script=critique_reply)
    reviser = ScriptedChatModel(script=revise_reply)

    def draft(state: State) -> dict:
        reply = drafter.invoke(
            [SystemMessage(DRAFT_SYSTEM_PROMPT), HumanMessage(state["question"])]
        )
        return {"answer": reply.text, "rounds": 0}

    def critique(state: State) -> dict:
        request = HumanMessage(f"Question: {state['question']}\nAnswer: {state['answer']}")
        reply = critic.invoke([SystemMessage(CRITIC_SYSTEM_PROMPT), request])
        return {"critique": reply.text, "rounds": state["rounds"] + 1}

    def revise(state: State) -> dict:
        request = HumanMessage(f"Answer: {state['answer']}\nCritique: {state['critique']}")
        return {"answer": reviser.invoke([SystemMessage(REVISE_SYSTEM_PROMPT), request]).text}

    def satisfied(state: State) -> str:
        return END if "NO ISSUES" in state["critique"] or state["rounds"] >= 3 else "revise"

    builder = StateGraph(State)
    builder.add_node("draft", draft)
    builder.add_node("critique", critique)
    builder.add_node("revise", revise)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "critique")
    builder.add_conditional_edges("critique", satisfied, ["revise", END])
    builder.add_edge("revise", "critique")
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "critique",
                    example["answer"] in state["answer"] or "unit" in state["critique"],
                    f"The answer {state['answer']!r} has no unit and the reviewer let it pass: the "
                    f'review prompt should say "{CRITIC_FIX}".',
                ),
                (
                    "revise",
                    state["answer"].endswith(f"{example['answer']}."),
                    f"The final answer must end with its unit ({example['answer']}): the revision "
                    f'prompt should say "{REVISE_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"drafter": drafter, "critic": critic, "reviser": reviser},
        examples=[
            {"id": key, "question": q, "answer": unit} for key, (q, _, unit) in FACTS.items()
        ],
        metric=metric,
        expected={
            "draft": "You are a science tutor.",
            "critique": "You are a strict reviewer.",
            "revise": "Revise the answer using the reviewer's critique.",
        },
        fixes={"critique": CRITIC_FIX, "revise": REVISE_FIX},
    )
