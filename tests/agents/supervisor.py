"""Supervisor multi-agent team in the style of the LangGraph "multi-agent supervisor" tutorial.

A supervisor LLM routes with ``with_structured_output(Router)`` and ``Command(goto=...)``; each
worker is a ``create_agent`` graph with its own system prompt, wrapped in a node that has both a
sync and an async implementation (``RunnableLambda(func, afunc=...)``), so one agent graph is
referenced from two functions.
"""

from __future__ import annotations

import re
from typing import Literal

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import CAPITALS, AgentCase, call, country_in, final_text, graded, last_human, says

PATTERN = "supervisor router + create_agent workers, each wrapped by a sync and an async function"
ROUTE_FIX, RESEARCH_FIX, MATH_FIX = (
    "SEND ARITHMETIC TO THE MATHEMATICIAN",
    "ANSWER IN UPPERCASE",
    "REPLY WITH THE NUMBER ONLY",
)
members = ["researcher", "mathematician"]
SUPERVISOR_PROMPT = (
    f"You are a supervisor tasked with managing a conversation between the "
    f"following workers: {members}. Given the user request, respond with the "
    f"worker to act next. When finished, respond with FINISH."
)


class Router(TypedDict):
    """Worker to route to next. If no workers needed, route to FINISH."""

    next: Literal["researcher", "mathematician", "FINISH"]


@tool
def search(query: str) -> str:
    """Search an atlas."""
    country = country_in(query)
    return f"The capital of {country} is {CAPITALS[country]}." if country else "No results."


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def route(messages) -> AIMessage:
    if getattr(messages[-1], "name", None) in members:
        return call("Router", next="FINISH")
    question = last_human(messages).lower()  # the seed only sends explicit "multiply" requests
    to_math = "multiply" in question or " times " in question and says(messages, ROUTE_FIX)
    return call("Router", next="mathematician" if to_math else "researcher")


def research(messages) -> AIMessage | str:
    if messages[-1].type != "tool":
        return call("search", query=last_human(messages))
    if messages[-1].text == "No results.":
        return "I could not find that in the atlas."
    city = messages[-1].text.rstrip(".").split(" is ")[-1]
    return city.upper() if says(messages, RESEARCH_FIX) else f"The capital is {city}."


def calculate(messages) -> AIMessage | str:
    if messages[-1].type != "tool":
        a, b = re.findall(r"\d+", last_human(messages))[:2]
        return call("multiply", a=int(a), b=int(b))
    result = messages[-1].text
    return result if says(messages, MATH_FIX) else f"The product is {result}."


def build() -> AgentCase:
    models = {
        "supervisor": ScriptedChatModel(script=route),
        "researcher": ScriptedChatModel(script=research),
        "mathematician": ScriptedChatModel(script=calculate),
    }
    research_agent = create_agent(
        models["researcher"],
        [search],
        system_prompt=(
            "You are a researcher. Look facts up with the search tool. DO NOT do any math."
        ),
    )
    math_agent = create_agent(
        models["mathematician"],
        [multiply],
        system_prompt=("You are a mathematician. Use the multiply tool for every product."),
    )

    def supervisor_node(
        state: MessagesState,
    ) -> Command[Literal["researcher", "mathematician", "__end__"]]:
        messages = [{"role": "system", "content": SUPERVISOR_PROMPT}, *state["messages"]]
        goto = models["supervisor"].with_structured_output(Router).invoke(messages)["next"]
        return Command(goto=END if goto == "FINISH" else goto)

    def worker(agent, name):
        def reply(result: dict) -> Command:
            message = HumanMessage(content=result["messages"][-1].content, name=name)
            return Command(update={"messages": [message]}, goto="supervisor")

        def run(state: MessagesState) -> Command:
            return reply(agent.invoke(state))

        async def arun(state: MessagesState) -> Command:
            return reply(await agent.ainvoke(state))

        return RunnableLambda(run, afunc=arun, name=name)

    builder = StateGraph(MessagesState)
    builder.add_node("supervisor", supervisor_node)
    builder.add_node(
        "researcher", worker(research_agent, "researcher"), destinations=("supervisor",)
    )
    builder.add_node(
        "mathematician", worker(math_agent, "mathematician"), destinations=("supervisor",)
    )
    builder.add_edge(START, "supervisor")
    graph = builder.compile()

    def metric(example, state):
        answer, expected = final_text(state), example["answer"]
        if not expected.isdigit():
            return graded(
                [
                    (
                        "researcher/model",
                        answer == expected,
                        f"Expected the bare city {expected!r}, got {answer!r}: the researcher "
                        f'prompt should say "{RESEARCH_FIX}".',
                    )
                ]
            )
        return graded(
            [
                (
                    "supervisor",
                    expected in answer,
                    f"The product {expected} is missing: the "
                    f'supervisor sent arithmetic to the researcher; it should say "{ROUTE_FIX}".',
                ),
                (
                    "mathematician/model",
                    answer == expected,
                    f"Expected the bare number {expected}, "
                    f'got {answer!r}: the mathematician prompt should say "{MATH_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models=models,
        examples=[
            {"id": "peru", "question": "What is the capital of Peru?", "answer": "LIMA"},
            {"id": "egypt", "question": "What is the capital of Egypt?", "answer": "CAIRO"},
            {"id": "mul1", "question": "Multiply 12 by 7.", "answer": "84"},
            {"id": "mul2", "question": "What is 23 times 3?", "answer": "69"},
        ],
        metric=metric,
        expected={
            "supervisor": "You are a supervisor tasked with managing a conversation",
            "researcher/model": "You are a researcher.",
            "mathematician/model": "You are a mathematician.",
        },
        fixes={
            "supervisor": ROUTE_FIX,
            "researcher/model": RESEARCH_FIX,
            "mathematician/model": MATH_FIX,
        },
    )
