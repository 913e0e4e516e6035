"""Travel-weather agent built with ``create_agent(..., middleware=[...])`` (LangChain 1.x):
``TodoListMiddleware`` appends the library's own to-do instructions to our system prompt on every
call, and ``SummarizationMiddleware`` sends the library's summary prompt to a second model only
when a conversation grows past five messages (multi-city questions). The library prompts are
the library's, listed as such; only ``system_prompt`` is ours.
"""

from __future__ import annotations

import re

from langchain.agents import create_agent
from langchain.agents.middleware import SummarizationMiddleware, TodoListMiddleware
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, final_text, graded, says

PATTERN = "create_agent with TodoList + Summarization middleware (library prompts, one conditional)"
FIX = "GIVE TEMPERATURES IN CELSIUS"
SYSTEM_PROMPT = (
    "You are a travel weather assistant. Check the weather of every city the user names."
)
WEATHER = {"Oslo": 41, "Rome": 77, "Cairo": 95, "Lima": 68, "Quito": 59}
REPORT = re.compile(r"It is (\d+)F in (\w+)\.")
QUESTIONS = {
    "oslo": ["Oslo"],
    "rome-cairo-lima": ["Rome", "Cairo", "Lima"],
    "quito": ["Quito"],
    "oslo-rome-quito": ["Oslo", "Rome", "Quito"],
}


@tool
def get_weather(city: str) -> str:
    """Get the current temperature of a city, in Fahrenheit."""
    return f"It is {WEATHER[city]}F in {city}."


def celsius(fahrenheit: int) -> int:
    return round((fahrenheit - 32) * 5 / 9)


def agent_reply(messages) -> AIMessage | str:
    reports = dict((city, int(f)) for m in messages for f, city in REPORT.findall(m.text))
    if not reports:
        cities = [c for c in WEATHER if c in messages[-1].text]
        calls = [{"name": "get_weather", "args": {"city": c}, "id": None} for c in cities]
        return AIMessage("", tool_calls=calls)
    if says(messages, FIX):
        return " ".join(f"{city}: {celsius(f)}C." for city, f in reports.items())
    return " ".join(f"{city}: {f}F." for city, f in reports.items())


def summary_reply(messages) -> str:
    return " ".join(f"It is {f}F in {city}." for f, city in REPORT.findall(messages[-1].text))


def build() -> AgentCase:
    model = ScriptedChatModel(script=agent_reply)
    summarizer = ScriptedChatModel(script=summary_reply)
    graph = create_agent(
        model,
        [get_weather],
        system_prompt=SYSTEM_PROMPT,
        middleware=[
            TodoListMiddleware(),
            SummarizationMiddleware(
                model=summarizer, trigger=("messages", 5), keep=("messages", 1)
            ),
        ],
    )

    def metric(example, state):
        answer = final_text(state)
        expected = [f"{city}: {celsius(WEATHER[city])}C" for city in QUESTIONS[example["id"]]]
        return graded(
            [
                (
                    "model",
                    all(e in answer for e in expected),
                    f"Expected {'; '.join(expected)}, got {answer!r}; our travellers read Celsius: "
                    f'the prompt should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=graph,
        models={"agent": model, "summarizer": summarizer},
        examples=[
            {
                "id": key,
                "question": f"What is the weather in {' and '.join(cities)}?",
                "answer": ", ".join(cities),
            }
            for key, cities in QUESTIONS.items()
        ],
        metric=metric,
        expected={"model": "You are a travel weather assistant."},
        fixes={"model": FIX},
        library=["## `write_todos`", "Context Extraction Assistant"],
    )
