"""Booking agent with a human approval step, in the style of the LangGraph "human-in-the-loop"
how-to: compiled with ``interrupt_before=["tools"]`` and a checkpointer, so a plain ``invoke``
stops before the booking tool runs; the agent's second turn and the ``confirm`` node's prompt only
run after the user resumes with ``graph.invoke(None, config)``.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, call, final_text, graded, last_human, says, tool_result

PATTERN = "interrupt_before=['tools'] + checkpointer; prompts used after the interrupt point"
CODE_FIX, SMS_FIX = "QUOTE THE CONFIRMATION CODE", "START WITH CONFIRMED"
AGENT_PROMPT = "You are a restaurant booking assistant. Book tables with the book_table tool."
CONFIRM_PROMPT = "Rewrite the assistant's last message as a short text message for the guest."
RESTAURANTS = {"Luigi's": "LUI", "Sakura": "SAK", "El Toro": "ELT", "Bistro 9": "BIS"}


@tool
def book_table(restaurant: str, people: int, time: str) -> str:
    """Book a table and return the confirmation code."""
    return f"Booked. Confirmation code {RESTAURANTS[restaurant]}-{people}-{time.replace(':', '')}."


def agent_reply(messages) -> AIMessage | str:
    booked = tool_result(messages)
    if booked is None:
        request = last_human(messages)
        restaurant = next(r for r in RESTAURANTS if r in request)
        people, time = request.split(" for ")[1].split()[0], request.split(" at ")[-1].rstrip(".")
        return call("book_table", restaurant=restaurant, people=int(people), time=time)
    return (
        f"Your table is booked ({booked.split('code ')[1].rstrip('.')})."
        if says(messages, CODE_FIX)
        else "Your table is booked. See you soon!"
    )


def confirm_reply(messages) -> str:
    text = messages[-1].text
    return f"CONFIRMED: {text}" if says(messages, SMS_FIX) else f"Hi! {text}"


def build() -> AgentCase:
    agent_model = ScriptedChatModel(script=agent_reply)
    confirm_model = ScriptedChatModel(script=confirm_reply)

    def agent(state: MessagesState) -> dict:
        response = agent_model.bind_tools([book_table]).invoke(
            [SystemMessage(AGENT_PROMPT), *state["messages"]]
        )
        return {"messages": [response]}

    def confirm(state: MessagesState) -> dict:
        last = state["messages"][-1].text
        reply = confirm_model.invoke([SystemMessage(CONFIRM_PROMPT), HumanMessage(last)])
        return {"messages": [reply]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([book_table]))
    builder.add_node("confirm", confirm)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: "confirm"})
    builder.add_edge("tools", "agent")
    builder.add_edge("confirm", END)
    graph = builder.compile(checkpointer=InMemorySaver(), interrupt_before=["tools"])

    def metric(example, state):
        sms = final_text(state)
        return graded(
            [
                (
                    "agent",
                    example["answer"] in sms,
                    f"The guest needs the code {example['answer']}: the agent prompt should say "
                    f'"{CODE_FIX}".',
                ),
                (
                    "confirm",
                    sms.startswith("CONFIRMED"),
                    f'Texts must start with "CONFIRMED": the confirmation prompt should say '
                    f'"{SMS_FIX}".',
                ),
            ]
        )

    requests = {
        "luigi": ("Book Luigi's for 4 at 19:00.", "LUI-4-1900"),
        "sakura": ("Book Sakura for 2 at 20:30.", "SAK-2-2030"),
        "toro": ("Book El Toro for 6 at 18:15.", "ELT-6-1815"),
        "bistro": ("Book Bistro 9 for 3 at 12:45.", "BIS-3-1245"),
    }
    return AgentCase(
        graph=graph,
        models={"agent": agent_model, "confirm": confirm_model},
        examples=[
            {"id": key, "question": q, "answer": code} for key, (q, code) in requests.items()
        ],
        metric=metric,
        expected={
            "agent": "You are a restaurant booking assistant.",
            "confirm": "Rewrite the assistant's last message as a short text message",
        },
        invoke_kwargs={"config": {"configurable": {"thread_id": "booking"}}},
        fixes={"agent": CODE_FIX, "confirm": SMS_FIX},
    )
