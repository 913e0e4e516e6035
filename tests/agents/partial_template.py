"""Hotel front desk whose two nodes share one ``ChatPromptTemplate`` and differ by
``.partial(instructions=...)``; each node's instructions are module constants assembled at import
time from smaller constants (a common way to keep one base prompt for several roles).
"""

from __future__ import annotations

from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import END, START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says

PATTERN = "ChatPromptTemplate.partial(instructions=...) with node instructions built at import time"
CHECKIN_FIX, CHECKOUT_FIX = "QUOTE THE ROOM NUMBER", "MENTION THE LATE FEE"
BREAKFAST_HOURS = "7 to 10"
DESK_TEMPLATE = "You work at the front desk of the Harbour View Hotel.\n\n{instructions}"
CHECKIN_STEPS = [
    "Welcome the guest and confirm the name on the booking.",
    f"Tell them breakfast is served from {BREAKFAST_HOURS}.",
]
CHECKIN_INSTRUCTIONS = "Check-in duty:\n" + "\n".join(f"- {step}" for step in CHECKIN_STEPS)
CHECKOUT_INSTRUCTIONS = "Check-out duty:\n- Thank the guest and ask how the stay was."
GUESTS = {
    "ito": ("Ms Ito", 204),
    "diaz": ("Mr Diaz", 317),
    "khan": ("Dr Khan", 512),
    "berg": ("Mr Berg", 108),
}


def desk_reply(messages) -> str:
    guest = last_human(messages)
    name, room = next(v for v in GUESTS.values() if v[0] in guest)
    if "Check-in duty" in messages[0].text:
        text = f"Welcome, {name}! Breakfast is 7 to 10."
        return text + (f" Your room is {room}." if says(messages, CHECKIN_FIX) else "")
    text = f"Thank you for staying with us, {name}."
    return text + (" Checkout after 11 costs a late fee." if says(messages, CHECKOUT_FIX) else "")


def build() -> AgentCase:
    model = ScriptedChatModel(script=desk_reply)
    desk = ChatPromptTemplate.from_messages(
        [("system", DESK_TEMPLATE), ("placeholder", "{messages}")]
    )
    checkin_chain = desk.partial(instructions=CHECKIN_INSTRUCTIONS) | model
    checkout_chain = desk.partial(instructions=CHECKOUT_INSTRUCTIONS) | model

    def check_in(state: MessagesState) -> dict:
        return {"messages": [checkin_chain.invoke({"messages": state["messages"]})]}

    def check_out(state: MessagesState) -> dict:
        return {"messages": [checkout_chain.invoke({"messages": state["messages"][:1]})]}

    builder = StateGraph(MessagesState)
    builder.add_node("check_in", check_in)
    builder.add_node("check_out", check_out)
    builder.add_edge(START, "check_in")
    builder.add_edge("check_in", "check_out")
    builder.add_edge("check_out", END)
    graph = builder.compile()

    def metric(example, state):
        welcome, goodbye = (m.text for m in state["messages"][1:3])
        return graded(
            [
                (
                    "check_in.instructions",
                    example["answer"] in welcome,
                    f"The guest never heard the room number {example['answer']}: the check-in "
                    f'instructions should say "{CHECKIN_FIX}".',
                ),
                (
                    "check_out",
                    "late fee" in goodbye,
                    f'Guests must hear about the late fee: the check-out instructions should say "{CHECKOUT_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"desk": model},
        examples=[
            {"id": key, "question": f"Hello, I am {name}.", "answer": str(room)}
            for key, (name, room) in GUESTS.items()
        ],
        metric=metric,
        expected={
            "check_in.system": "You work at the front desk of the Harbour View Hotel.",
            "check_in.instructions": "Welcome the guest and confirm the name",
            "check_out": "Thank the guest and ask how the stay was.",
        },
        fixes={"check_in.instructions": CHECKIN_FIX, "check_out": CHECKOUT_FIX},
    )
