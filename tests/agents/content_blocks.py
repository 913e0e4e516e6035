"""Support bot written for prompt caching: the system prompt is a list of content blocks, the long
policy block marked ``cache_control`` (how Anthropic-style production code sends it), and the
human turn comes from a mustache ``ChatPromptTemplate`` (``template_format="mustache"``).
"""

from __future__ import annotations

from langchain_core.messages import SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import END, START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, final_text, graded, last_human, says

PATTERN = "system prompt as content blocks with cache_control + a mustache human template"
POLICY_FIX, ASK_FIX = "QUOTE THE RETURN WINDOW", "STATE THE ORDER NUMBER"
POLICY_PROMPT = (
    "You answer questions about the store's return policy. Items can be returned within 30 "
    "days with a receipt; sale items only within 14 days."
)
ORDERS = {"A100": "a jacket", "B220": "a sale lamp", "C310": "boots", "D400": "a sale rug"}


def reply(messages) -> str:
    request = last_human(messages)
    order = next(o for o in ORDERS if o in request)
    days = "14" if "sale" in ORDERS[order] else "30"
    text = "Yes, you can return it."
    if says(messages, POLICY_FIX):
        text += f" You have {days} days."
    if says(messages, ASK_FIX):
        text = f"Order {order}: {text}"
    return text


def build() -> AgentCase:
    model = ScriptedChatModel(script=reply)
    ask = ChatPromptTemplate.from_messages(
        [("human", "Customer question about order {{order}}:\n{{question}}")],
        template_format="mustache",
    )

    def support(state: MessagesState) -> dict:
        question = state["messages"][-1].text
        order = next(o for o in ORDERS if o in question)
        system = SystemMessage(
            content=[
                {"type": "text", "text": POLICY_PROMPT, "cache_control": {"type": "ephemeral"}}
            ]
        )
        human = ask.invoke({"order": order, "question": question}).to_messages()
        return {"messages": [model.invoke([system, *human])]}

    builder = StateGraph(MessagesState)
    builder.add_node("support", support)
    builder.add_edge(START, "support")
    builder.add_edge("support", END)
    graph = builder.compile()

    def metric(example, state):
        answer = final_text(state)
        return graded(
            [
                (
                    "support.policy_prompt",
                    f"{example['answer']} days" in answer,
                    f"The customer needs the return window ({example['answer']} days): the policy "
                    f'prompt should say "{POLICY_FIX}".',
                ),
                (
                    "support.human",
                    answer.startswith("Order "),
                    f'Replies open with the order number: the question template should say "{ASK_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"support": model},
        examples=[
            {
                "id": order.lower(),
                "question": f"Can I still return {item} from order {order}?",
                "answer": "14" if "sale" in item else "30",
            }
            for order, item in ORDERS.items()
        ],
        metric=metric,
        expected={
            "support.policy_prompt": "You answer questions about the store's return policy.",
            "support.human": "Customer question about order",
        },
        fixes={"support.policy_prompt": POLICY_FIX, "support.human": ASK_FIX},
    )
