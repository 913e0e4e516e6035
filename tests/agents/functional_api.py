"""Postcard writer in LangGraph's Functional API: an ``@entrypoint`` calls two ``@task`` functions,
each sending its own system message as a dict (``{"role": "system", ...}``), as the Functional
API tutorials write workflows without a StateGraph.
"""

from __future__ import annotations

from langchain_core.messages import SystemMessage
from langgraph.func import entrypoint, task

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import CAPITALS, AgentCase, country_in, graded, last_human, says

PATTERN = "Functional API: @entrypoint calling @task functions with their own system messages"
DRAFT_FIX, POLISH_FIX = "NAME THE CAPITAL CITY", "SIGN IT FROM THE TRAVEL DESK"


def draft_reply(messages) -> str:
    country = country_in(last_human(messages))
    if says(messages, DRAFT_FIX):
        return f"Greetings from {CAPITALS[country]}, the capital of {country}."
    return f"Greetings from lovely {country}."


def polish_reply(messages) -> str:
    text = last_human(messages).strip()
    return text + (" -- the Travel Desk" if says(messages, POLISH_FIX) else "")


def build() -> AgentCase:
    writer = ScriptedChatModel(script=draft_reply)
    editor = ScriptedChatModel(script=polish_reply)

    @task
    def draft_postcard(country: str) -> str:
        return writer.invoke(
            [
                {
                    "role": "system",
                    "content": "You write one-line postcards for travellers. Mention the place "
                    "the traveller is visiting in the country they name.",
                },
                {"role": "user", "content": f"Country: {country}"},
            ]
        ).text

    @task
    def polish_postcard(text: str) -> str:
        return editor.invoke(
            [
                SystemMessage(
                    "You are a copy editor. Fix the grammar of the postcard and keep it short."
                ),
                {"role": "user", "content": text},
            ]
        ).text

    @entrypoint()
    def postcard_workflow(inputs: dict) -> dict:
        text = draft_postcard(inputs["country"]).result()
        return {"postcard": polish_postcard(text).result()}

    def metric(example, output):
        postcard = output["postcard"]
        return graded(
            [
                (
                    "postcard_workflow/draft_postcard",
                    example["answer"] in postcard,
                    f"The postcard must name the capital, {example['answer']}: the drafting "
                    f'prompt should say "{DRAFT_FIX}".',
                ),
                (
                    "postcard_workflow/polish_postcard",
                    postcard.endswith("the Travel Desk"),
                    f'Every postcard ends with our signature: the editing prompt should say "'
                    f'{POLISH_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=postcard_workflow,
        models={"writer": writer, "editor": editor},
        examples=[
            {"id": country.lower(), "country": country, "answer": capital}
            for country, capital in list(CAPITALS.items())[:4]
        ],
        metric=metric,
        expected={
            "postcard_workflow/draft_postcard": "You write one-line postcards for travellers.",
            "postcard_workflow/polish_postcard": "You are a copy editor.",
        },
        fixes={
            "postcard_workflow/draft_postcard": DRAFT_FIX,
            "postcard_workflow/polish_postcard": POLISH_FIX,
        },
    )
