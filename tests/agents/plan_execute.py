"""Plan-and-execute agent in the style of the LangGraph "plan-and-execute" tutorial.

``planner_prompt | llm.with_structured_output(Plan)`` writes the steps, a
``create_react_agent`` executor runs each step with its own prompt, and
``replanner_prompt | llm.with_structured_output(Act)`` returns the remaining steps or the response.
"""

from __future__ import annotations

import ast
import operator
import warnings
from typing import Annotated

from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import create_react_agent
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import CAPITALS, AgentCase, call, graded, last_human, says

PATTERN = "plan-and-execute: structured-output planner and replanner, create_react_agent executor"
PLAN_FIX, ANSWER_FIX = "ONE STEP PER COUNTRY", "LIST THE CITIES COMMA-SEPARATED"


class PlanExecute(TypedDict, total=False):
    input: str
    plan: list[str]
    past_steps: Annotated[list[tuple], operator.add]
    response: str


class Plan(BaseModel):
    """Plan to follow in future."""

    steps: list[str] = Field(description="different steps to follow, in sorted order")


class Response(BaseModel):
    """Response to user."""

    response: str


class Act(BaseModel):
    """Action to perform."""

    action: Response | Plan


@tool
def lookup_capital(country: str) -> str:
    """Look up the capital city of one country."""
    return CAPITALS.get(country, "unknown")


def plan_reply(messages) -> AIMessage:
    countries = [c for c in CAPITALS if c in last_human(messages)]
    steps = (
        [f"Find the capital of {c}" for c in countries]
        if says(messages, PLAN_FIX)
        else [f"Find the capitals of {' and '.join(countries)}"]
    )
    return call("Plan", steps=steps)


def execute_reply(messages) -> AIMessage | str:
    if messages[-1].type == "tool":
        return messages[-1].text
    return call("lookup_capital", country=next(c for c in CAPITALS if c in last_human(messages)))


def replan_reply(messages) -> AIMessage:
    sections = last_human(messages).split("\n\n")
    plan = ast.literal_eval(next(s for s in sections if s.startswith("['")))
    past = ast.literal_eval(next((s for s in sections if s.startswith("[(")), "[]"))
    remaining = [step for step in plan if step not in {task for task, _ in past}]
    if remaining:
        return call("Act", action={"steps": remaining})
    cities = [result for _, result in past]
    text = ", ".join(cities) if says(messages, ANSWER_FIX) else f"Here is what I found: {cities}."
    return call("Act", action={"response": text})


def build() -> AgentCase:
    models = {
        name: ScriptedChatModel(script=script)
        for name, script in (
            ("planner", plan_reply),
            ("executor", execute_reply),
            ("replanner", replan_reply),
        )
    }
    planner_prompt = ChatPromptTemplate.from_messages(
        [
            (
                "system",
                "For the given objective, come up with a simple step by step plan. This plan "
                "should involve individual tasks that yield the correct answer.",
            ),
            ("placeholder", "{messages}"),
        ]
    )
    planner = planner_prompt | models["planner"].with_structured_output(Plan)
    replanner_prompt = ChatPromptTemplate.from_template(
        "For the given objective, update the step by step plan.\n\nYour objective was this:"
        "\n\n{input}\n\nYour original plan was this:\n\n{plan}\n\nYou have currently done the "
        "following steps:\n\n{past_steps}\n\nIf no more steps are needed, respond to the user."
    )
    replanner = replanner_prompt | models["replanner"].with_structured_output(Act)
    with warnings.catch_warnings():  # moved to langchain.agents in LangGraph 1.0; still common
        warnings.simplefilter("ignore", DeprecationWarning)
        agent_executor = create_react_agent(
            models["executor"],
            [lookup_capital],
            prompt="You are a helpful assistant who executes one step of a plan with the tools.",
        )

    def plan_step(state: PlanExecute) -> dict:
        return {"plan": planner.invoke({"messages": [("user", state["input"])]}).steps}

    def execute_step(state: PlanExecute) -> dict:
        task = state["plan"][0]
        agent_response = agent_executor.invoke({"messages": [("user", task)]})
        return {"past_steps": [(task, agent_response["messages"][-1].content)]}

    def replan_step(state: PlanExecute) -> dict:
        output = replanner.invoke(state)
        if isinstance(output.action, Response):
            return {"response": output.action.response}
        return {"plan": output.action.steps}

    workflow = StateGraph(PlanExecute)
    workflow.add_node("planner", plan_step)
    workflow.add_node("agent", execute_step)
    workflow.add_node("replan", replan_step)
    workflow.add_edge(START, "planner")
    workflow.add_edge("planner", "agent")
    workflow.add_edge("agent", "replan")
    workflow.add_conditional_edges(
        "replan", lambda state: END if state.get("response") else "agent", ["agent", END]
    )
    graph = workflow.compile()

    def metric(example, state):
        response = state.get("response", "")
        return graded(
            [
                (
                    "planner",
                    all(c in response for c in example["answer"].split(", ")),
                    f"Expected every capital of {example['answer']!r}, got {response!r}: the lookup "
                    f'takes one country at a time; the planner prompt should say "{PLAN_FIX}".',
                ),
                (
                    "replan",
                    "[" not in response and ":" not in response,
                    f'The response must be a bare list like "Paris, Tokyo": the replanner prompt should '
                    f'say "{ANSWER_FIX}".',
                ),
            ]
        )

    pairs = [("France", "Japan"), ("Kenya", "Peru"), ("Canada", "Egypt"), ("Japan", "Kenya")]
    return AgentCase(
        graph=graph,
        models=models,
        examples=[
            {
                "id": f"{a}-{b}".lower(),
                "input": f"What are the capitals of {a} and {b}?",
                "answer": f"{CAPITALS[a]}, {CAPITALS[b]}",
            }
            for a, b in pairs
        ],
        metric=metric,
        expected={
            "planner": "come up with a simple step by step plan. This plan",
            "agent/agent": "You are a helpful assistant who executes one step",
            "replan": "For the given objective, update the step by step plan.",
        },
        fixes={"planner": PLAN_FIX, "replan": ANSWER_FIX},
    )
