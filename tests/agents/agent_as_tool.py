"""Orchestrator whose tool runs a whole sub-agent: ``ask_researcher`` (a ``@tool`` run by the
orchestrator's ``create_agent``) invokes another ``create_agent`` graph with its own system
prompt and returns its last message, the way deepagents' ``task`` tool hands work to sub-agents.
"""

from __future__ import annotations

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, call, final_text, graded, last_human, says, tool_result

PATTERN = "a tool that invokes a whole sub-agent (create_agent inside a @tool)"
LEAD_FIX, RESEARCH_FIX = "RELAY THE FINDING VERBATIM", "INCLUDE THE HEIGHT IN METRES"
LEAD_PROMPT = "You coordinate research. Delegate every factual question with ask_researcher."
RESEARCHER_PROMPT = "You are a meticulous researcher. Answer the question you are given."
TOWERS = {
    "eiffel": ("Eiffel Tower", 330),
    "cn": ("CN Tower", 553),
    "tokyo": ("Tokyo Skytree", 634),
    "burj": ("Burj Khalifa", 828),
}


def lead_reply(messages) -> AIMessage | str:
    finding = tool_result(messages)
    if finding is None:
        return call("ask_researcher", question=last_human(messages))
    return finding if says(messages, LEAD_FIX) else "The researcher looked into it."


def research_reply(messages) -> str:
    name, height = next(v for v in TOWERS.values() if v[0] in last_human(messages))
    return (
        f"The {name} is {height} m tall."
        if says(messages, RESEARCH_FIX)
        else f"The {name} is very tall."
    )


def build() -> AgentCase:
    lead_model = ScriptedChatModel(script=lead_reply)
    research_model = ScriptedChatModel(script=research_reply)
    researcher = create_agent(research_model, [], system_prompt=RESEARCHER_PROMPT)

    @tool
    def ask_researcher(question: str) -> str:
        """Hand a factual question to the research sub-agent and return its answer."""
        result = researcher.invoke({"messages": [HumanMessage(question)]})
        return result["messages"][-1].text

    graph = create_agent(lead_model, [ask_researcher], system_prompt=LEAD_PROMPT)

    def metric(example, state):
        answer = final_text(state)
        finding = next(m.text for m in state["messages"] if m.type == "tool")
        return graded(
            [
                (
                    "model",
                    answer == finding,
                    f'The user never saw the finding: the lead prompt should say "{LEAD_FIX}".',
                ),
                (
                    "tools/model",
                    f"{example['answer']} m" in finding,
                    f"The finding must give the height ({example['answer']} m): the researcher "
                    f'prompt should say "{RESEARCH_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"lead": lead_model, "researcher": research_model},
        examples=[
            {"id": key, "question": f"How tall is the {name}?", "answer": str(height)}
            for key, (name, height) in TOWERS.items()
        ],
        metric=metric,
        expected={
            "model": "You coordinate research.",
            "tools/model": "You are a meticulous researcher.",
        },
        fixes={"model": LEAD_FIX, "tools/model": RESEARCH_FIX},
    )
