"""Multi-turn chatbot with memory, in the style of the LangGraph quickstart's "add memory" step:
compiled with an ``InMemorySaver`` checkpointer, every call names its conversation with
``config={"configurable": {"thread_id": ...}}``; the system prompt is a ``ChatPromptTemplate``.
"""

from __future__ import annotations

from langchain_core.prompts import ChatPromptTemplate
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, final_text, graded, last_human, says

PATTERN = "chat agent compiled with an InMemorySaver checkpointer (thread_id in invoke config)"
FIX = "GREET WITH AHOY"
ANSWERS = {
    "sail": "Hoist the mainsail first.",
    "knot": "Use a bowline knot.",
    "anchor": "Drop anchor in sand, not rock.",
    "tide": "Leave on the ebb tide.",
}


def pirate_reply(messages) -> str:
    question = last_human(messages).lower()
    answer = next((text for key, text in ANSWERS.items() if key in question), "Arr, no idea.")
    return f"Ahoy! {answer}" if says(messages, FIX) else f"Hello there. {answer}"


def build() -> AgentCase:
    model = ScriptedChatModel(script=pirate_reply)
    prompt = ChatPromptTemplate.from_messages(
        [
            (
                "system",
                "You are Captain Sal, a sailing instructor with a pirate's voice. Keep answers "
                "to one sentence.",
            ),
            ("placeholder", "{messages}"),
        ]
    )
    chain = prompt | model

    def chatbot(state: MessagesState) -> dict:
        return {"messages": [chain.invoke({"messages": state["messages"]})]}

    builder = StateGraph(MessagesState)
    builder.add_node("chatbot", chatbot)
    builder.add_edge(START, "chatbot")
    builder.add_edge("chatbot", END)
    graph = builder.compile(checkpointer=InMemorySaver())

    def metric(example, state):
        reply = final_text(state)
        return graded(
            [
                (
                    "chatbot",
                    reply.startswith("Ahoy!") and example["answer"] in reply,
                    f'Captain Sal always opens with "Ahoy!": the prompt should say "{FIX}".',
                )
            ]
        )

    questions = {
        "sail": "How do I start to sail?",
        "knot": "Which knot for a mooring line?",
        "anchor": "Where should I anchor?",
        "tide": "When do we leave port, tide-wise?",
    }
    return AgentCase(
        graph=graph,
        models={"chatbot": model},
        examples=[
            {"id": key, "question": q, "answer": ANSWERS[key]} for key, q in questions.items()
        ],
        metric=metric,
        expected={"chatbot": "You are Captain Sal, a sailing instructor"},
        invoke_kwargs={"config": {"configurable": {"thread_id": "sailing-class"}}},
        fixes={"chatbot": FIX},
    )
