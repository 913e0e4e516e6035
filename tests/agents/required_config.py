"""Memory assistant in the style of the retrieval/memory agent templates: a ``Configuration``
dataclass read from ``config["configurable"]`` with ``from_runnable_config``, whose ``user_id``
field is REQUIRED (no default: every caller passes it in ``config``); the system prompt is a field
with a default, formatted with the user's stored memories.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from langchain_core.messages import SystemMessage
from langchain_core.runnables import RunnableConfig, ensure_config
from langgraph.graph import END, START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, final_text, graded, says

PATTERN = "Configuration dataclass from config['configurable'] with a required user_id field"
FIX = "USE THE USER'S NAME"
SYSTEM_PROMPT = (
    "You are a personal assistant with memory.\n\nWhat you remember about the user:\n{memories}"
)
MEMORIES = {"u-17": "Name: Grace. Likes hiking.", "u-42": "Name: Alan. Plays chess."}
QUESTIONS = {
    "plans": "Any plans for the weekend?",
    "gift": "What gift should I buy myself?",
    "book": "Recommend me a book.",
    "hello": "Hello there!",
}


@dataclass(kw_only=True)
class Configuration:
    """The assistant's configuration; ``user_id`` has no default."""

    user_id: str
    system_prompt: str = field(default=SYSTEM_PROMPT)

    @classmethod
    def from_runnable_config(cls, config: RunnableConfig | None = None) -> Configuration:
        configurable = ensure_config(config).get("configurable") or {}
        names = {f.name for f in fields(cls) if f.init}
        return cls(**{k: v for k, v in configurable.items() if k in names})


def assistant_reply(messages) -> str:
    memory = messages[0].text.split("about the user:\n", 1)[-1]
    name = memory.split("Name: ", 1)[1].split(".")[0]
    return f"Sure, {name}! Happy to help." if says(messages, FIX) else "Sure! Happy to help."


def build() -> AgentCase:
    model = ScriptedChatModel(script=assistant_reply)

    def call_model(state: MessagesState, config: RunnableConfig) -> dict:
        configuration = Configuration.from_runnable_config(config)
        system = configuration.system_prompt.format(memories=MEMORIES[configuration.user_id])
        return {"messages": [model.invoke([SystemMessage(system), *state["messages"]])]}

    builder = StateGraph(MessagesState, config_schema=Configuration)
    builder.add_node("call_model", call_model)
    builder.add_edge(START, "call_model")
    builder.add_edge("call_model", END)
    graph = builder.compile()
    config = {"configurable": {"user_id": "u-17"}}

    def metric(example, state):
        answer = final_text(state)
        return graded(
            [
                (
                    "context.system_prompt",
                    "Grace" in answer,
                    f'Greet the user by name (Grace), got {answer!r}: the prompt should say "{FIX}".',
                )
            ]
        )

    return AgentCase(
        graph=graph,
        models={"assistant": model},
        examples=[{"id": key, "question": q, "answer": "Grace"} for key, q in QUESTIONS.items()],
        metric=metric,
        expected={"context.system_prompt": "You are a personal assistant with memory."},
        fixes={"context.system_prompt": FIX},
        system_kwargs={"config": config},
        invoke_kwargs={"config": config},
    )
