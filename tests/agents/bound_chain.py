"""Support triage whose nodes receive their chains as bound keyword arguments:
``RunnableLambda(classify).bind(chain=prompt | llm)``, a way to reuse one node function with
different chains (the chain lives only in the binding's ``kwargs``).
"""

from __future__ import annotations

from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says

PATTERN = "node = RunnableLambda(f).bind(chain=prompt | llm): the chain is a binding kwarg"
TRIAGE_FIX, REPLY_FIX = "BILLING MEANS MONEY WORDS", "GIVE THE TICKET PREFIX"
TICKETS = {
    "refund": ("I was charged twice, I want a refund.", "billing"),
    "invoice": ("Where can I download my invoice?", "billing"),
    "crash": ("The app crashes when I open settings.", "technical"),
    "login": ("I cannot log in since the update.", "technical"),
}


class State(MessagesState):
    team: str


def triage_reply(messages) -> str:
    text = last_human(messages).lower()
    money = any(w in text for w in ("charged", "refund", "invoice", "price"))
    if says(messages, TRIAGE_FIX):
        return "billing" if money else "technical"
    return "billing" if "refund" in text else "technical"


def reply_reply(messages) -> str:
    team = messages[0].text.rsplit("team: ", 1)[-1].split()[0]
    text = f"Thanks for reaching out, the {team} team will contact you."
    return f"[{team.upper()[:4]}] {text}" if says(messages, REPLY_FIX) else text


def classify(state: State, chain) -> dict:
    return {"team": chain.invoke({"messages": state["messages"]}).text.strip()}


def respond(state: State, chain) -> dict:
    return {"messages": [chain.invoke({"messages": state["messages"], "team": state["team"]})]}


def build() -> AgentCase:
    triage_model = ScriptedChatModel(script=triage_reply)
    reply_model = ScriptedChatModel(script=reply_reply)
    triage_chain = (
        ChatPromptTemplate.from_messages(
            [
                ("system", "Sort the customer's ticket: answer 'billing' or 'technical'."),
                ("placeholder", "{messages}"),
            ]
        )
        | triage_model
    )
    reply_chain = (
        ChatPromptTemplate.from_messages(
            [
                ("system", "Acknowledge the customer's ticket politely.\nAssigned team: {team}"),
                ("placeholder", "{messages}"),
            ]
        )
        | reply_model
    )

    builder = StateGraph(State)
    builder.add_node("triage", RunnableLambda(classify).bind(chain=triage_chain))
    builder.add_node("reply", RunnableLambda(respond).bind(chain=reply_chain))
    builder.add_edge(START, "triage")
    builder.add_edge("triage", "reply")
    builder.add_edge("reply", END)
    graph = builder.compile()

    def metric(example, state):
        reply = state["messages"][-1].text
        return graded(
            [
                (
                    "triage",
                    state["team"] == example["answer"],
                    f"The ticket belongs to {example['answer']}, not {state['team']}: the triage "
                    f'prompt should say "{TRIAGE_FIX}".',
                ),
                (
                    "reply",
                    reply.startswith("["),
                    f'Replies start with the ticket prefix like [BILL]: the reply prompt should say "{REPLY_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"triage": triage_model, "reply": reply_model},
        examples=[{"id": key, "question": q, "answer": team} for key, (q, team) in TICKETS.items()],
        metric=metric,
        expected={
            "triage": "Sort the customer's ticket",
            "reply": "Acknowledge the customer's ticket politely.",
        },
        fixes={"triage": TRIAGE_FIX, "reply": REPLY_FIX},
    )
