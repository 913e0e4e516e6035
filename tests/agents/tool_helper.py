"""Recipe assistant whose tool delegates to a module-level helper that calls its own model:
``scale_recipe`` (run by the ``ToolNode``) calls ``extract_quantities(model, text)``, which sends
``EXTRACTION_SYSTEM`` -- the prompt is one call away from the tool, in a plain function.
"""

from __future__ import annotations

import re

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, call, final_text, graded, last_human, says, tool_result

PATTERN = "a prompt in a helper function that a tool calls"
AGENT_FIX, EXTRACT_FIX = "QUOTE THE TOOL OUTPUT VERBATIM", "INCLUDE THE UNITS"
AGENT_SYSTEM = "You are a kitchen assistant. Use scale_recipe to scale recipes for the user."
EXTRACTION_SYSTEM = "Extract the flour quantity from the recipe text and double it."
RECIPES = {
    "pancakes": "Pancakes: 200 g flour, 2 eggs, 300 ml milk.",
    "bread": "Bread: 500 g flour, 7 g yeast, 350 ml water.",
    "scones": "Scones: 350 g flour, 85 g butter, 175 ml milk.",
    "pizza": "Pizza: 400 g flour, 250 ml water, 1 tsp salt.",
}


def flour_grams(text: str) -> int:
    return int(re.search(r"(\d+) g flour", text).group(1))


def extract_quantities(model, text: str) -> str:
    """Ask the extraction model for the doubled flour quantity of a recipe."""
    return model.invoke([SystemMessage(EXTRACTION_SYSTEM), HumanMessage(text)]).text


def extract_reply(messages) -> str:
    grams = flour_grams(last_human(messages)) * 2
    return f"{grams} g flour" if says(messages, EXTRACT_FIX) else str(grams)


def agent_reply(messages) -> AIMessage | str:
    output = tool_result(messages)
    if output is None:
        dish = next(d for d in RECIPES if d in last_human(messages).lower())
        return call("scale_recipe", dish=dish)
    return output if says(messages, AGENT_FIX) else "Here you go, double the flour."


def build() -> AgentCase:
    agent_model = ScriptedChatModel(script=agent_reply)
    extractor = ScriptedChatModel(script=extract_reply)

    @tool
    def scale_recipe(dish: str) -> str:
        """Double a recipe's flour and return the new quantity."""
        return extract_quantities(extractor, RECIPES[dish])

    def agent(state: MessagesState) -> dict:
        model = agent_model.bind_tools([scale_recipe])
        return {"messages": [model.invoke([SystemMessage(AGENT_SYSTEM), *state["messages"]])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([scale_recipe]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    graph = builder.compile()

    def metric(example, state):
        reply = final_text(state)
        tool_output = next(m.text for m in state["messages"] if m.type == "tool")
        return graded(
            [
                (
                    "agent",
                    any(c.isdigit() for c in reply),
                    f'The user never saw the quantity: the agent prompt should say "{AGENT_FIX}".',
                ),
                (
                    "tools",
                    example["answer"] in tool_output,
                    f"Quantities need units, like {example['answer']!r}: the extraction prompt "
                    f'should say "{EXTRACT_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"agent": agent_model, "extractor": extractor},
        examples=[
            {
                "id": dish,
                "question": f"Please double my {dish} recipe.",
                "answer": f"{flour_grams(text) * 2} g flour",
            }
            for dish, text in RECIPES.items()
        ],
        metric=metric,
        expected={"agent": "You are a kitchen assistant.", "tools": "Extract the flour quantity"},
        fixes={"agent": AGENT_FIX, "tools": EXTRACT_FIX},
    )
