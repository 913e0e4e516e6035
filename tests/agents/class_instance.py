"""Customer-support bot in the style of the LangGraph "customer support" tutorial.

The node is an instance of the user's own ``Assistant`` class holding
``primary_assistant_prompt | llm.bind_tools(tools)``; its ``__call__`` invokes the runnable, and
``tools_condition`` routes tool calls to a ``ToolNode``.
"""

from __future__ import annotations

from datetime import datetime

from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, call, final_text, graded, last_human, says, tool_result

PATTERN = "node is an Assistant class instance holding prompt | llm.bind_tools(tools)"
FIX = "ALWAYS MENTION THE GATE"
FLIGHTS = {
    "LX38": ("10:05", "B12"),
    "LX112": ("13:40", "A3"),
    "LX76": ("07:15", "C7"),
    "LX250": ("21:30", "D1"),
}


@tool
def fetch_flight_info(flight_no: str) -> str:
    """Fetch the departure time and gate of a flight."""
    time, gate = FLIGHTS.get(flight_no.upper(), ("unknown", "unknown"))
    return f"Flight {flight_no.upper()} departs at {time} from gate {gate}."


class Assistant:
    def __init__(self, runnable: Runnable):
        self.runnable = runnable

    def __call__(self, state: MessagesState, config: RunnableConfig):
        while True:
            result = self.runnable.invoke(state, config)
            if result.tool_calls or result.content:
                break
            retry = ("user", "Respond with a real output.")
            state = {**state, "messages": [*state["messages"], retry]}
        return {"messages": result}


def reply(messages) -> AIMessage | str:
    found = tool_result(messages)
    if found is None:
        words = last_human(messages).replace("?", "").split()
        flight = next(w for w in words if w.startswith("LX"))
        return call("fetch_flight_info", flight_no=flight)
    sentence = found.split(" from gate")[0]
    return found if says(messages, FIX) else sentence + ". Have a pleasant trip!"


def build() -> AgentCase:
    llm = ScriptedChatModel(script=reply)
    tools = [fetch_flight_info]
    primary_assistant_prompt = ChatPromptTemplate.from_messages(
        [
            (
                "system",
                "You are a helpful customer support assistant for Swiss Airlines. Use the "
                "provided tools to search for flights and other information to assist the "
                "user's queries.\nCurrent time: {time}.",
            ),
            ("placeholder", "{messages}"),
        ]
    ).partial(time=datetime.now)

    builder = StateGraph(MessagesState)
    builder.add_node("assistant", Assistant(primary_assistant_prompt | llm.bind_tools(tools)))
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "assistant")
    builder.add_conditional_edges("assistant", tools_condition)
    builder.add_edge("tools", "assistant")
    graph = builder.compile()

    def metric(example, state):
        answer = final_text(state)
        return graded(
            [
                (
                    "assistant",
                    f"gate {example['answer']}" in answer,
                    f"The passenger needs the gate ({example['answer']}) and the reply "
                    f'omitted it: the prompt should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=graph,
        models={"assistant": llm},
        examples=[
            {"id": no.lower(), "question": f"When does my flight {no} leave?", "answer": gate}
            for no, (_, gate) in FLIGHTS.items()
        ],
        metric=metric,
        expected={"assistant": "customer support assistant for Swiss Airlines"},
        fixes={"assistant": FIX},
    )
