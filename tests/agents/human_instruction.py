"""Research agent whose findings are cleaned up by an instruction sent as a *human* message:
``compress`` appends the constant ``CLEANUP_REQUEST`` after the researcher's conversation, the way
open deep-research agents ask for a compressed summary of what a researcher found.
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, graded, last_human, says

PATTERN = "an instruction sent as a constant human message after the conversation"
RESEARCH_FIX, CLEANUP_FIX = "GIVE EXACT FIGURES", "KEEP EVERY NUMBER"
CLEANUP_REQUEST = (
    "Everything above comes from a research assistant's session. Please clean up these findings: "
    "drop the chatter and keep the facts in a short list."
)
FACTS = {
    "everest": ("How tall is Mount Everest?", "8849 m"),
    "nile": ("How long is the Nile?", "6650 km"),
    "amazon": ("How much of the world's oxygen-producing forest is the Amazon?", "40 percent"),
    "sahara": ("How large is the Sahara?", "9200000 km2"),
}


def research_reply(messages) -> str:
    figure = next(a for q, a in FACTS.values() if q == last_human(messages))
    if says(messages, RESEARCH_FIX):
        return f"Well, I looked into it. Sources agree: {figure}. Interesting topic!"
    return "Well, I looked into it. It is quite big. Interesting topic!"


def cleanup_reply(messages) -> str:
    findings = messages[-2].text
    facts = [s.strip() for s in findings.split(".") if "Sources" in s or "big" in s]
    if not says(messages, CLEANUP_FIX):
        facts = [" ".join(w for w in f.split() if not any(c.isdigit() for c in w)) for f in facts]
    return "\n".join(f"- {fact}" for fact in facts)


def build() -> AgentCase:
    researcher = ScriptedChatModel(script=research_reply)
    compressor = ScriptedChatModel(script=cleanup_reply)

    def research(state: MessagesState) -> dict:
        system = SystemMessage("You are a research assistant. Look up the user's question.")
        return {"messages": [researcher.invoke([system, *state["messages"]])]}

    def compress(state: MessagesState) -> dict:
        return {
            "messages": [compressor.invoke([*state["messages"], HumanMessage(CLEANUP_REQUEST)])]
        }

    builder = StateGraph(MessagesState)
    builder.add_node("research", research)
    builder.add_node("compress", compress)
    builder.add_edge(START, "research")
    builder.add_edge("research", "compress")
    builder.add_edge("compress", END)
    graph = builder.compile()

    def metric(example, state):
        research_text, summary = state["messages"][1].text, state["messages"][-1].text
        return graded(
            [
                (
                    "research",
                    example["answer"] in research_text,
                    f"The research never found the figure {example['answer']}: the research "
                    f'prompt should say "{RESEARCH_FIX}".',
                ),
                (
                    "compress",
                    example["answer"] in summary,
                    f"The clean-up dropped the figure {example['answer']}: the clean-up request "
                    f'should say "{CLEANUP_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"researcher": researcher, "compressor": compressor},
        examples=[{"id": key, "question": q, "answer": a} for key, (q, a) in FACTS.items()],
        metric=metric,
        expected={
            "research": "You are a research assistant.",
            "compress": "Please clean up these findings",
        },
        fixes={"research": RESEARCH_FIX, "compress": CLEANUP_FIX},
    )
