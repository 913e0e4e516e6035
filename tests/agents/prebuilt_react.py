"""Weather assistant built with ``langchain.agents.create_agent(model, tools, system_prompt=...)``,
the prebuilt ReAct agent of LangChain 1.x and the first example of its quickstart.
"""

from __future__ import annotations

import re

from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, call, final_text, graded, last_human, says, tool_result

PATTERN = "prebuilt agent: langchain.agents.create_agent(model, tools, system_prompt=...)"
FIX = "GIVE TEMPERATURES IN CELSIUS"
SYSTEM_PROMPT = "You are a friendly weather assistant. Use get_weather for every city."
WEATHER = {"Boston": 77, "Denver": 59, "Miami": 86, "Seattle": 50}


@tool
def get_weather(city: str) -> str:
    """Get the current weather of a city, in Fahrenheit."""
    return f"It is sunny and {WEATHER.get(city, 68)}F in {city}."


def reply(messages) -> AIMessage | str:
    report = tool_result(messages)
    if report is None:
        return call("get_weather", city=next(c for c in WEATHER if c in last_human(messages)))
    if says(messages, FIX):
        fahrenheit = int(re.search(r"(\d+)F", report).group(1))
        return report.replace(f"{fahrenheit}F", f"{round((fahrenheit - 32) * 5 / 9)}C")
    return report


def build() -> AgentCase:
    model = ScriptedChatModel(script=reply)
    graph = create_agent(model, [get_weather], system_prompt=SYSTEM_PROMPT)

    def metric(example, state):
        answer = final_text(state)
        return graded(
            [
                (
                    "model",
                    example["answer"] in answer,
                    f"Our users read Celsius: expected {example['answer']}, got {answer!r}; "
                    f'the prompt should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=graph,
        models={"agent": model},
        examples=[
            {
                "id": city.lower(),
                "question": f"What's the weather in {city}?",
                "answer": f"{round((f - 32) * 5 / 9)}C",
            }
            for city, f in WEATHER.items()
        ],
        metric=metric,
        expected={"model": "You are a friendly weather assistant."},
        fixes={"model": FIX},
    )
