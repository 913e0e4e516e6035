"""Order-status agent built with ``langchain.agents.create_agent`` and a custom middleware that
implements only the sync hook (``wrap_model_call``, no ``awrap_model_call``), as the LangChain 1.x
middleware guide's class-based examples do. ``graph.invoke`` works; ``graph.ainvoke`` fails with
``NotImplementedError`` at the first model call, so rollouts must run it with ``invoke``.
"""

from __future__ import annotations

import re

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, call, final_text, graded, last_human, says, tool_result

PATTERN = "create_agent with a sync-only middleware (wrap_model_call without awrap_model_call)"
FIX = "GIVE THE DELIVERY DATE"
SYSTEM_PROMPT = "You are an order-status assistant. Look every order up with lookup_order."
ORDERS = {"A100": "2025-03-02", "B200": "2025-03-05", "C300": "2025-04-11", "D400": "2025-05-20"}


class CallLog(AgentMiddleware):
    """Logs every model call (sync only: it writes to a plain list, as a logger would)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def wrap_model_call(self, request, handler):
        self.calls.append(len(request.messages))
        return handler(request)


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order's status by its id."""
    return f"Order {order_id} shipped; delivery on {ORDERS.get(order_id, 'an unknown date')}."


def reply(messages) -> AIMessage | str:
    report = tool_result(messages)
    if report is None:
        order = re.search(r"[A-D]\d00", last_human(messages)).group(0)
        return call("lookup_order", order_id=order)
    if says(messages, FIX):
        date = re.search(r"\d{4}-\d\d-\d\d", report).group(0)
        return f"It has shipped and arrives on {date}."
    return "Your order has shipped."


def build() -> AgentCase:
    model = ScriptedChatModel(script=reply)
    log = CallLog()
    graph = create_agent(model, [lookup_order], system_prompt=SYSTEM_PROMPT, middleware=[log])

    def metric(example, state):
        answer = final_text(state)
        return graded(
            [
                (
                    "model",
                    example["answer"] in answer,
                    f"Customers ask when it arrives: expected {example['answer']}, got "
                    f'{answer!r}; the prompt should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=graph,
        models={"agent": model},
        examples=[
            {"id": order.lower(), "question": f"Where is my order {order}?", "answer": date}
            for order, date in ORDERS.items()
        ],
        metric=metric,
        expected={"model": "You are an order-status assistant."},
        fixes={"model": FIX},
    )
