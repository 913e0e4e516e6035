"""Plan-and-execute where the replanner's template begins with the planner's whole prompt, as
in the plan-and-execute tutorial (``REPLANNER_TEMPLATE = PLANNER_PROMPT + ...``): one prompt's
text contains another's, and each must be rewritten only where it is itself the prompt.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, says

PATTERN = "replanner template = the planner's whole prompt + more (identity, not substring)"
PLAN_FIX, REPLAN_FIX = "ONE STEP PER INGREDIENT", "END WITH SERVE"
PLANNER_PROMPT = (
    "For the given objective, come up with a simple step by step plan. Each step is one line "
    "starting with '- '."
)
REPLANNER_TEMPLATE = (
    PLANNER_PROMPT + "\n\nYour objective was: {objective}\nSteps done so far:\n{done}\n\n"
    "Update the plan: list only the steps still to do, or reply DONE."
)
DISHES = {
    "salad": ["lettuce", "tomato"],
    "soup": ["leek", "potato", "stock"],
    "omelette": ["eggs", "cheese"],
    "smoothie": ["banana", "milk", "honey"],
}


class State(TypedDict, total=False):
    objective: str
    plan: list[str]
    done: list[str]
    result: str


def ingredients(text: str) -> list[str]:
    return next(items for dish, items in DISHES.items() if dish in text.lower())


def plan_reply(messages) -> str:
    items = ingredients(messages[-1].text)
    if says(messages, PLAN_FIX):
        return "\n".join(f"- add {item}" for item in items)
    return "- add everything"


def replan_reply(messages) -> str:
    system = messages[0].text
    if "Steps done so far:\n- " not in system:
        return "DONE"
    return "- serve" if says(messages, REPLAN_FIX) and "serve" not in system else "DONE"


def build() -> AgentCase:
    planner = ScriptedChatModel(script=plan_reply)
    replanner = ScriptedChatModel(script=replan_reply)
    replan_prompt = ChatPromptTemplate.from_messages([("system", REPLANNER_TEMPLATE)])

    def plan(state: State) -> dict:
        reply = planner.invoke([SystemMessage(PLANNER_PROMPT), HumanMessage(state["objective"])])
        return {
            "plan": [line[2:] for line in reply.text.splitlines() if line.startswith("- ")],
            "done": [],
        }

    def execute(state: State) -> dict:
        return {"done": [*state["done"], state["plan"][0]], "plan": state["plan"][1:]}

    def replan(state: State) -> dict:
        if state["plan"]:
            return {}
        value = replan_prompt.invoke(
            {"objective": state["objective"], "done": "\n".join(f"- {s}" for s in state["done"])}
        )
        reply = replanner.invoke(value).text
        steps = [line[2:] for line in reply.splitlines() if line.startswith("- ")]
        return {"plan": steps} if steps else {"result": "; ".join(state["done"])}

    def should_end(state: State) -> str:
        return END if state.get("result") else "execute"

    builder = StateGraph(State)
    builder.add_node("plan", plan)
    builder.add_node("execute", execute)
    builder.add_node("replan", replan)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "execute")
    builder.add_edge("execute", "replan")
    builder.add_conditional_edges("replan", should_end, ["execute", END])
    graph = builder.compile()

    def metric(example, state):
        steps = state["result"].split("; ")
        return graded(
            [
                (
                    "plan",
                    all(f"add {item}" in steps for item in DISHES[example["id"]]),
                    f"The plan must name each ingredient ({example['answer']}): the planner prompt "
                    f'should say "{PLAN_FIX}".',
                ),
                (
                    "replan",
                    steps[-1] == "serve",
                    f'The last step must be serving the dish: the replanner prompt should say "{REPLAN_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"planner": planner, "replanner": replanner},
        examples=[
            {"id": dish, "objective": f"Make a {dish}.", "answer": ", ".join(items)}
            for dish, items in DISHES.items()
        ],
        metric=metric,
        expected={
            "plan": "come up with a simple step by step plan",
            "replan": "Update the plan: list only the steps still to do",
        },
        fixes={"plan": PLAN_FIX, "replan": REPLAN_FIX},
        owners={"plan": "planner", "replan": "replanner"},
    )
