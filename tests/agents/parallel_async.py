"""Translator fan-out inside one node: the async node sends one request per language with
``asyncio.gather(*(chain.ainvoke(...)))``, and the sync path (``graph.invoke``) runs a
``RunnableParallel`` of the same chains; a reviewer then checks all translations at once.
"""

from __future__ import annotations

import asyncio

from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says

PATTERN = "asyncio.gather of chain.ainvoke calls in one node (RunnableParallel when sync)"
TRANSLATE_FIX, REVIEW_FIX = "KEEP THE EXCLAMATION MARK", "FLAG MISSING PUNCTUATION"
LANGUAGES = ["French", "Spanish", "German"]
WORDS = {
    "hello": {"French": "Bonjour", "Spanish": "Hola", "German": "Hallo"},
    "thanks": {"French": "Merci", "Spanish": "Gracias", "German": "Danke"},
    "welcome": {"French": "Bienvenue", "Spanish": "Bienvenido", "German": "Willkommen"},
    "goodbye": {"French": "Au revoir", "Spanish": "Adiós", "German": "Tschüss"},
}


def translate_reply(messages) -> str:
    language = messages[0].text.split("into ", 1)[1].split(".", 1)[0]
    word = last_human(messages).strip("!").lower()
    text = WORDS[word][language]
    return text + "!" if says(messages, TRANSLATE_FIX) else text


def review_reply(messages) -> str:
    lines = last_human(messages).split("\n")[1:]
    if says(messages, REVIEW_FIX) and any(not line.endswith("!") for line in lines):
        return "FIX PUNCTUATION"
    return "APPROVED"


class State(TypedDict, total=False):
    word: str
    translations: dict[str, str]
    verdict: str


def build() -> AgentCase:
    translator = ScriptedChatModel(script=translate_reply)
    reviewer = ScriptedChatModel(script=review_reply)
    prompt = ChatPromptTemplate.from_messages(
        [
            (
                "system",
                "Translate the user's greeting into {language}. Reply with the translation.",
            ),
            ("human", "{word}"),
        ]
    )
    chains = {language: prompt.partial(language=language) | translator for language in LANGUAGES}
    review_prompt = ChatPromptTemplate.from_messages(
        [("system", "You review translations of a greeting."), ("human", "Translations:\n{lines}")]
    )

    def fan_out(state: State) -> dict:
        replies = RunnableParallel(chains).invoke({"word": f"{state['word']}!"})
        return {"translations": {k: v.text for k, v in replies.items()}}

    async def afan_out(state: State) -> dict:
        replies = await asyncio.gather(
            *(c.ainvoke({"word": f"{state['word']}!"}) for c in chains.values())
        )
        return {"translations": {k: r.text for k, r in zip(chains, replies, strict=True)}}

    def review(state: State) -> dict:
        lines = "\n".join(state["translations"].values())
        return {"verdict": (review_prompt | reviewer).invoke({"lines": lines}).text}

    builder = StateGraph(State)
    builder.add_node("translate", RunnableLambda(fan_out, afunc=afan_out))
    builder.add_node("review", review)
    builder.add_edge(START, "translate")
    builder.add_edge("translate", "review")
    builder.add_edge("review", END)
    graph = builder.compile()

    def metric(example, state):
        complete = all(t.endswith("!") for t in state["translations"].values())
        return graded(
            [
                (
                    "translate",
                    complete,
                    f'Greetings keep their exclamation mark: the translation prompt should say "{TRANSLATE_FIX}".',
                ),
                (
                    "review.system",
                    (state["verdict"] == "APPROVED") == complete,
                    f'The reviewer approved translations without punctuation: the review prompt should say "{REVIEW_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"translator": translator, "reviewer": reviewer},
        examples=[{"id": word, "word": word, "answer": WORDS[word]["French"]} for word in WORDS],
        metric=metric,
        expected={
            "translate": "Translate the user's greeting into",
            "review.system": "You review translations of a greeting.",
            "review.human": "Translations:",
        },
        fixes={"translate": TRANSLATE_FIX, "review.system": REVIEW_FIX},
    )
