"""Concierge built with ``create_agent`` whose system prompt is written by a ``@dynamic_prompt``
middleware function on every model call: the user's expertise level (from the runtime context)
picks one of two prompt constants, as LangChain 1.x's dynamic-prompt guide shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, dynamic_prompt
from langchain_core.messages import AIMessage

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, final_text, graded, last_human, says

PATTERN = "create_agent + @dynamic_prompt middleware choosing the system prompt per call"
EXPERT_FIX, NOVICE_FIX = "GIVE THE LATIN NAME", "SUGGEST A BEGINNER PLANT"
EXPERT_PROMPT = "You advise experienced gardeners. Answer tersely."
NOVICE_PROMPT = "You advise people who have never gardened. Answer kindly."
PLANTS = {
    "tomato": ("Solanum lycopersicum", "expert"),
    "basil": ("Ocimum basilicum", "expert"),
    "fern": ("Nephrolepis exaltata", "novice"),
    "cactus": ("Cactaceae", "novice"),
}


@dataclass
class Context:
    """Who is asking."""

    level: str = "novice"


def reply(messages) -> AIMessage | str:
    plant = next(p for p in PLANTS if p in last_human(messages).lower())
    text = f"Water your {plant} weekly."
    if says(messages, EXPERT_FIX):
        text += f" ({PLANTS[plant][0]})"
    if says(messages, NOVICE_FIX):
        text += " A pothos is a great first plant."
    return text


def build() -> AgentCase:
    model = ScriptedChatModel(script=reply)

    @dynamic_prompt
    def gardener_prompt(request: ModelRequest) -> str:
        return EXPERT_PROMPT if request.runtime.context.level == "expert" else NOVICE_PROMPT

    graph = create_agent(model, [], middleware=[gardener_prompt], context_schema=Context)

    def metric(example, state):
        answer = final_text(state)
        latin, level = PLANTS[example["id"]]
        if level == "expert":
            check = (
                "model.expert_prompt",
                latin in answer,
                f'Experts want the Latin name: the expert prompt should say "{EXPERT_FIX}".',
            )
        else:
            check = (
                "model.novice_prompt",
                "pothos" in answer,
                f'Beginners need a first plant: the novice prompt should say "{NOVICE_FIX}".',
            )
        return graded([check])

    return AgentCase(
        graph=graph,
        models={"gardener": model},
        examples=[
            {
                "id": plant,
                "question": f"How do I care for my {plant}?",
                "context": {"level": level},
                "answer": latin,
            }
            for plant, (latin, level) in PLANTS.items()
        ],
        metric=metric,
        expected={
            "model.expert_prompt": "You advise experienced gardeners.",
            "model.novice_prompt": "You advise people who have never gardened.",
        },
        fixes={"model.expert_prompt": EXPERT_FIX, "model.novice_prompt": NOVICE_FIX},
        system_kwargs={"context": Context()},
        invoke_kwargs={"context": Context()},
    )
