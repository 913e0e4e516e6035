"""Translator whose node calls ``litellm.completion`` directly with OpenAI-style message dicts,
no LangChain model in between (many apps call the provider router straight from a node).
The provider is a LiteLLM custom provider registered by ``build()``: no network.
"""

from __future__ import annotations

import litellm
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from ._case import AgentCase, graded, says
from ._providers import LiteLLMScript

PATTERN = "a node calling litellm.completion(model=..., messages=[...]) directly"
FIX = "KEEP THE CAPITALISATION"
TRANSLATOR_PROMPT = "You translate English words into French. Reply with the translation only."
WORDS = {
    "paris": ("Paris", "Paris"),
    "monday": ("Monday", "lundi"),
    "london": ("London", "Londres"),
    "english": ("English", "anglais"),
}
FRENCH = {english: french for english, french in WORDS.values()}


def translate_reply(messages) -> str:
    word = messages[-1].text.strip()
    french = FRENCH[word]
    return french if says(messages, FIX) else french.lower()


class State(TypedDict, total=False):
    word: str
    translation: str


def build() -> AgentCase:
    provider = LiteLLMScript(translate_reply, provider="corpus-litellm").register()

    def translate(state: State) -> dict:
        response = litellm.completion(
            model=provider.model,
            messages=[
                {"role": "system", "content": TRANSLATOR_PROMPT},
                {"role": "user", "content": state["word"]},
            ],
        )
        return {"translation": response.choices[0].message.content}

    builder = StateGraph(State)
    builder.add_node("translate", translate)
    builder.add_edge(START, "translate")
    builder.add_edge("translate", END)
    graph = builder.compile()

    def metric(example, state):
        return graded(
            [
                (
                    "translate",
                    state["translation"] == example["answer"],
                    f"Expected {example['answer']!r}, got {state['translation']!r}: proper nouns "
                    f'stay capitalised, the prompt should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=graph,
        models={"translator": provider},
        examples=[
            {"id": key, "word": word, "answer": french} for key, (word, french) in WORDS.items()
        ],
        metric=metric,
        expected={"translate": "You translate English words into French."},
        fixes={"translate": FIX},
    )
