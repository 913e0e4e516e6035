"""Recipe-tagging agent configured by a module-level settings object:
``SETTINGS = AgentSettings()`` (a pydantic model with prompt fields) is read as
``SETTINGS.tagger_instructions`` in one node and ``SETTINGS.title_instructions`` in another,
as apps built around one settings object do.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says

PATTERN = "prompts as fields of a module-level settings object (pydantic), read as SETTINGS.x"
TAG_FIX, TITLE_FIX = "TAG VEGETARIAN DISHES", "USE TITLE CASE"


class AgentSettings(BaseModel):
    """What the recipe agent reads at run time."""

    tagger_instructions: str = "Tag the recipe with its main ingredient, one lowercase word."
    title_instructions: str = "Give the recipe a short name."
    max_tags: int = 3


SETTINGS = AgentSettings()
RECIPES = {
    "dal": ("lentils, onion, cumin", "vegetarian"),
    "ragu": ("beef, tomato, wine", "beef"),
    "risotto": ("rice, mushrooms, parmesan", "vegetarian"),
    "curry": ("chicken, coconut, curry paste", "chicken"),
}


def tag_reply(messages) -> str:
    ingredients = last_human(messages)
    meat = next((m for m in ("beef", "chicken") if m in ingredients), None)
    if meat is None and says(messages, TAG_FIX):
        return "vegetarian"
    return meat or ingredients.split(",")[0]


def title_reply(messages) -> str:
    name = last_human(messages).split("Dish: ", 1)[1]
    return name.title() if says(messages, TITLE_FIX) else name


class State(TypedDict, total=False):
    dish: str
    ingredients: str
    tag: str
    title: str


def build() -> AgentCase:
    tagger = ScriptedChatModel(script=tag_reply)
    namer = ScriptedChatModel(script=title_reply)

    def tag(state: State) -> dict:
        messages = [SystemMessage(SETTINGS.tagger_instructions), HumanMessage(state["ingredients"])]
        return {"tag": tagger.invoke(messages).text}

    def title(state: State) -> dict:
        messages = [
            SystemMessage(SETTINGS.title_instructions),
            HumanMessage(f"Dish: {state['dish']}"),
        ]
        return {"title": namer.invoke(messages).text}

    builder = StateGraph(State)
    builder.add_node("tag", tag)
    builder.add_node("title", title)
    builder.add_edge(START, "tag")
    builder.add_edge("tag", "title")
    builder.add_edge("title", END)
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "tag",
                    state["tag"] == example["answer"],
                    f"Expected the tag {example['answer']!r}, got {state['tag']!r}: the tagging "
                    f'prompt should say "{TAG_FIX}".',
                ),
                (
                    "title",
                    state["title"][:1].isupper(),
                    f'Titles are capitalised: the naming prompt should say "{TITLE_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"tagger": tagger, "namer": namer},
        examples=[
            {"id": dish, "dish": f"{dish} of the day", "ingredients": ing, "answer": tag}
            for dish, (ing, tag) in RECIPES.items()
        ],
        metric=metric,
        expected={
            "tag": "Tag the recipe with its main ingredient",
            "title": "Give the recipe a short name.",
        },
        fixes={"tag": TAG_FIX, "title": TITLE_FIX},
    )
