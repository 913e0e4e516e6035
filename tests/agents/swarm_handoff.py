"""Swarm of two agents that hand off with ``Command``, in the style of the LangGraph multi-agent
"handoffs" guide and ``langgraph-swarm``: a ``transfer_to_<agent>`` tool returns
``Command(goto=<agent>, graph=Command.PARENT, ...)``; both agents are ``create_agent`` graphs added
as nodes of the parent graph.
"""

from __future__ import annotations

from typing import Annotated

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import InjectedState
from langgraph.types import Command

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, call, final_text, graded, last_human, says

PATTERN = "swarm: create_agent agents as nodes handing off with Command(goto=..., graph=PARENT)"
HANDOFF_FIX, RATE_FIX = "ROOMS AND STAYS ARE HOTEL QUESTIONS", "ALWAYS QUOTE THE NIGHTLY RATE"
FLIGHTS = {"Rome": "AZ 611", "Oslo": "SK 4412", "Lisbon": "TP 1351"}
HOTELS = {
    "Rome": ("Hotel Miramar", "EUR 120"),
    "Lisbon": ("Casa Azul", "EUR 95"),
    "Oslo": ("Fjord Inn", "NOK 1400"),
}


def create_handoff_tool(*, agent_name: str, description: str):
    name = f"transfer_to_{agent_name}"

    @tool(name, description=description)
    def handoff_tool(
        state: Annotated[MessagesState, InjectedState],
        tool_call_id: Annotated[str, InjectedToolCallId],
    ) -> Command:
        message = ToolMessage(
            f"Successfully transferred to {agent_name}", name=name, tool_call_id=tool_call_id
        )
        return Command(
            goto=agent_name,
            graph=Command.PARENT,
            update={"messages": [*state["messages"], message]},
        )

    return handoff_tool


@tool
def find_flight(city: str) -> str:
    """Find the next flight to a city."""
    return f"Next flight to {city}: {FLIGHTS.get(city, 'none')}."


@tool
def find_hotel(city: str) -> str:
    """Find a hotel with free rooms in a city."""
    name, rate = HOTELS.get(city, ("none", "?"))
    return f"{name} in {city} has rooms at {rate} per night."


def city_of(messages) -> str:
    return next(c for c in FLIGHTS if c in last_human(messages))


def flights_reply(messages) -> AIMessage | str:
    if messages[-1].type == "tool":
        return messages[-1].text
    question = last_human(messages).lower()
    if "hotel" in question or ("room" in question and says(messages, HANDOFF_FIX)):
        return call("transfer_to_hotels")
    if "flight" in question:
        return call("find_flight", city=city_of(messages))
    return "Sorry, I can only help with flights."


def hotels_reply(messages) -> AIMessage | str:
    if messages[-1].text.startswith("Successfully transferred"):
        return call("find_hotel", city=city_of(messages))
    found = messages[-1].text
    return found if says(messages, RATE_FIX) else found.split(" has rooms")[0] + " has rooms."


def build() -> AgentCase:
    models = {
        "flights": ScriptedChatModel(script=flights_reply),
        "hotels": ScriptedChatModel(script=hotels_reply),
    }
    flights = create_agent(
        models["flights"],
        [find_flight, create_handoff_tool(agent_name="hotels", description="Transfer to hotels")],
        system_prompt="You are Alice, a flight booking assistant.",
        name="flights",
    )
    hotels = create_agent(
        models["hotels"],
        [find_hotel, create_handoff_tool(agent_name="flights", description="Transfer to flights")],
        system_prompt="You are Bob, a hotel booking assistant.",
        name="hotels",
    )

    builder = StateGraph(MessagesState)
    builder.add_node(flights, destinations=("hotels",))
    builder.add_node(hotels, destinations=("flights",))
    builder.add_edge(START, "flights")
    graph = builder.compile()

    def metric(example, state):
        answer, (hotel, rate) = final_text(state), HOTELS[example["answer"]]
        if "flight" in example["question"]:
            return graded(
                [
                    (
                        "flights/model",
                        FLIGHTS[example["answer"]] in answer,
                        "The reply must give the flight number.",
                    )
                ]
            )
        return graded(
            [
                (
                    "flights/model",
                    hotel in answer,
                    f"The guest got no hotel: Alice kept a room "
                    f'question instead of handing it to Bob; her prompt should say "{HANDOFF_FIX}".',
                ),
                (
                    "hotels/model",
                    rate in answer,
                    f'The reply lacks the rate {rate}: Bob\'s prompt should say "{RATE_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models=models,
        examples=[
            {"id": "f-rome", "question": "Is there a flight to Rome?", "answer": "Rome"},
            {"id": "h-lisbon", "question": "Find me a hotel in Lisbon.", "answer": "Lisbon"},
            {"id": "r-oslo", "question": "I need a room in Oslo for two nights.", "answer": "Oslo"},
            {"id": "r-rome", "question": "Any room free in Rome tonight?", "answer": "Rome"},
        ],
        metric=metric,
        expected={
            "flights/model": "You are Alice, a flight booking assistant.",
            "hotels/model": "You are Bob, a hotel booking assistant.",
        },
        fixes={"flights/model": HANDOFF_FIX, "hotels/model": RATE_FIX},
    )
