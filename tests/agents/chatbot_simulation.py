"""Chatbot simulation (the LangGraph tutorial's evaluation setup): a support agent talks with a
model that plays the customer from a persona template; the conversation ends when the simulated
customer's reply equals the literal ``STOP_PHRASE`` -- code compares it with the model's output,
it is no prompt.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, says

PATTERN = "chatbot simulation: agent vs simulated user, loop ends on a literal stop phrase"
AGENT_FIX, USER_FIX = "OFFER A VOUCHER", "SAY THE BOOKING CODE"
STOP_PHRASE = "FINISHED"
AGENT_SYSTEM_PROMPT = "You are a customer support agent for an airline. Help the customer politely."
SIMULATED_USER_TEMPLATE = (
    "You are a customer of an airline talking to its support agent.\n\n{instructions}\n\n"
    f"When you are done with the conversation, reply with the single word {STOP_PHRASE}."
)
PERSONAS = {
    "ava": ("Your flight was cancelled; your booking code is AVA123.", "AVA123"),
    "ben": ("Your bag was lost; your booking code is BEN456.", "BEN456"),
    "cho": ("You were charged twice; your booking code is CHO789.", "CHO789"),
    "dev": ("Your seat was changed; your booking code is DEV321.", "DEV321"),
}


def agent_reply(messages) -> str:
    said = " ".join(m.text for m in messages if m.type == "human")
    code = next((c for _, c in PERSONAS.values() if c in said), None)
    offer = " Here is a voucher for your trouble." if says(messages, AGENT_FIX) else ""
    if code is None:
        return f"I'm sorry to hear that. Could you tell me more?{offer}"
    return f"Thank you, I have fixed booking {code}.{offer}"


def customer_reply(messages) -> str:
    system = messages[0].text
    complaint, code = next(v for v in PERSONAS.values() if v[1] in system)
    if any("fixed booking" in m.text for m in messages[1:]):
        return STOP_PHRASE
    if says(messages, USER_FIX) and len(messages) > 1:
        return f"My booking code is {code}."
    return complaint.split(";")[0].replace("Your", "My") + "."


def build() -> AgentCase:
    agent_model = ScriptedChatModel(script=agent_reply)
    customer_model = ScriptedChatModel(script=customer_reply)

    def support_agent(state: MessagesState) -> dict:
        reply = agent_model.invoke([SystemMessage(AGENT_SYSTEM_PROMPT), *state["messages"][1:]])
        return {"messages": [AIMessage(reply.text)]}

    def simulated_user(state: MessagesState) -> dict:
        persona = state["messages"][0].text
        # Roles swap for the simulated customer: the agent's turns are what it "hears".
        flipped = [
            HumanMessage(m.text) if m.type == "ai" else AIMessage(m.text)
            for m in state["messages"][1:]
        ]
        system = SystemMessage(SIMULATED_USER_TEMPLATE.format(instructions=persona))
        reply = customer_model.invoke([system, *flipped])
        return {"messages": [HumanMessage(reply.text)]}

    def conversation_over(state: MessagesState) -> str:
        if state["messages"][-1].text.strip() == STOP_PHRASE or len(state["messages"]) > 8:
            return END
        return "support_agent"

    builder = StateGraph(MessagesState)
    builder.add_node("simulated_user", simulated_user)
    builder.add_node("support_agent", support_agent)
    builder.add_edge(START, "simulated_user")
    builder.add_conditional_edges("simulated_user", conversation_over, ["support_agent", END])
    builder.add_edge("support_agent", "simulated_user")
    graph = builder.compile()

    def metric(example, state):
        agent_turns = [m.text for m in state["messages"] if m.type == "ai"]
        resolved = any(example["answer"] in t for t in agent_turns)
        return graded(
            [
                (
                    "simulated_user",
                    resolved,
                    f"The customer never gave the booking code {example['answer']}: the simulated "
                    f'user prompt should say "{USER_FIX}".',
                ),
                (
                    "support_agent",
                    any("voucher" in t for t in agent_turns),
                    f'Customers whose trip went wrong get a voucher: the agent prompt should say "{AGENT_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"agent": agent_model, "customer": customer_model},
        examples=[
            {"id": key, "question": persona, "answer": code}
            for key, (persona, code) in PERSONAS.items()
        ],
        metric=metric,
        expected={
            "support_agent": "You are a customer support agent for an airline.",
            "simulated_user": "You are a customer of an airline talking to its support agent.",
        },
        fixes={"support_agent": AGENT_FIX, "simulated_user": USER_FIX},
        not_modules=[STOP_PHRASE],
    )
